/**
 * The participant's configuration: every limit named with its unit, with
 * defaults, validated when a node opens (a bad value is refused before
 * anything runs), frozen afterwards. As coordinator/runtime/config.ts.
 */
import { AppError } from '../lib/errors.js';

export interface ParticipantConfig {
  /** Open (unacknowledged) transactions at once; new work past it is refused with 503. */
  readonly maxOpenTxs: number;
  /** Serialized size of one transaction's work, in UTF-16 code units. */
  readonly maxWorkChars: number;
  /** Request body cap of the participant's routes (work included). */
  readonly maxBodyBytes: number;
  /** How long a work or prepare call waits for its answer (for prepare: the vote in the store). */
  readonly requestTimeoutMs: number;
  /** Store writes and service callbacks: attempts per round (rounds repeat until done) and backoff. */
  readonly storeWriteMaxAttempts: number;
  readonly storeBackoffBaseMs: number;
  readonly storeBackoffMaxMs: number;
  /** Acknowledged log records are kept this long (for the operator view), then compacted. */
  readonly logRetentionMs: number;
  /** How often acknowledged records past the retention are compacted out of the log. */
  readonly logCompactIntervalMs: number;
  /** Most records in the log; past it the oldest acknowledged go, and new work is refused only if none is acknowledged. */
  readonly logMaxRecords: number;
  /** The log is rewritten without superseded lines once larger than twice its live records plus this. */
  readonly logRewriteFloorBytes: number;
  /**
   * Most bytes of acknowledged records' lines kept (in memory and in the
   * file) for the operator's view; each compaction drops the oldest past it,
   * so a high transaction rate does not grow memory or the rewrite.
   */
  readonly logMaxRetainedBytes: number;
  /**
   * How long after the deadline an undecided "yes" starts helping decide
   * (jittered up to +50%): the coordinator acts at the deadline itself, so
   * waiting a little saves duplicate writes when it is alive.
   */
  readonly helpGraceMs: number;
  /** Mean wait before helping decide again when the store could not decide yet; jittered to 50%..150%. */
  readonly helpRetryIntervalMs: number;
  /**
   * How long a frozen record seen on the watch waits before it is taken as
   * a prepare request (0: at once; under load most prepares come this way,
   * and a delay only saves an abort's useless prepare; see watch.ts).
   */
  readonly watchPrepareDelayMs: number;
  /** Prepares held while start-up recovery runs; past it one is dropped (the deadline fills our vote with "no"). */
  readonly maxHeldPrepares: number;
  /**
   * How long work may wait with no vote before the participant checks that
   * its transaction still exists in the store, and again at this interval.
   * Work that arrives after its transaction was decided and collected (a
   * slow client) would otherwise hold its locks forever; found gone, it is
   * aborted locally.
   */
  readonly workCheckMs: number;
  /** Log records recovered at once at start. */
  readonly recoveryConcurrency: number;
  /**
   * TTL of the lease behind this node's name claim (claim.ts): how long a
   * crashed instance keeps its name from another instance (a restart over
   * the same log re-takes it at once), and how long the store may be out of
   * reach before the node must assume the claim lost and stop. Kept alive
   * every third of it.
   */
  readonly claimTtlMs: number;
  /**
   * A token file (lib/token-auth.ts): with it the participant's routes take
   * bearer tokens, prepare and decision only from the `coordinator` role,
   * work from `client`, the listing from `admin` (routes.ts
   * PARTICIPANT_ROUTE_POLICIES). Read when the routes are built, then again
   * on SIGHUP and change. Undefined: no auth.
   */
  readonly authTokensFile?: string;
}

/** Fields with no default: absent unless given. */
const OPTIONAL_FIELDS: ReadonlySet<string> = new Set(['authTokensFile']);
/** The longest file path taken. */
const MAX_PATH_CHARS = 4_096;

export const DEFAULT_PARTICIPANT_CONFIG: ParticipantConfig = Object.freeze({
  maxOpenTxs: 10_000,
  maxWorkChars: 64 * 1024,
  maxBodyBytes: 256 * 1024,
  requestTimeoutMs: 20_000,
  storeWriteMaxAttempts: 6,
  storeBackoffBaseMs: 25,
  storeBackoffMaxMs: 1_000,
  logRetentionMs: 600_000,
  logCompactIntervalMs: 60_000,
  logMaxRecords: 100_000,
  logRewriteFloorBytes: 1 << 20,
  logMaxRetainedBytes: 8 << 20,
  helpGraceMs: 1_000,
  helpRetryIntervalMs: 1_000,
  watchPrepareDelayMs: 0,
  maxHeldPrepares: 10_000,
  workCheckMs: 120_000,
  recoveryConcurrency: 16,
  claimTtlMs: 10_000,
});

const DAY_MS = 86_400_000;

export class ParticipantConfigError extends AppError {
  constructor(readonly problems: readonly string[]) {
    super('invalid_config', 400, `invalid participant config: ${problems.join('; ')}`, { problems });
    this.name = 'ParticipantConfigError';
  }
}

/**
 * The defaults with `overrides`, every value range-checked; unknown fields
 * are refused (a misspelt limit would otherwise silently keep its default).
 * Throws a ParticipantConfigError naming every bad field.
 */
export function makeParticipantConfig(overrides: Partial<ParticipantConfig> = {}): ParticipantConfig {
  const problems: string[] = [];
  for (const key of Object.keys(overrides)) {
    if (!Object.hasOwn(DEFAULT_PARTICIPANT_CONFIG, key) && !OPTIONAL_FIELDS.has(key)) problems.push(`unknown field ${key}`);
  }
  const c: ParticipantConfig = { ...DEFAULT_PARTICIPANT_CONFIG, ...overrides };
  const int = (name: keyof ParticipantConfig, min: number, max: number): void => {
    const v: unknown = c[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) problems.push(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  };
  int('maxOpenTxs', 1, 1_000_000);
  int('maxWorkChars', 2, 16 * 1024 * 1024);
  int('maxBodyBytes', 1_024, 64 * 1024 * 1024);
  int('requestTimeoutMs', 1, 600_000);
  int('storeWriteMaxAttempts', 1, 100);
  int('storeBackoffBaseMs', 1, 60_000);
  int('storeBackoffMaxMs', Number.isSafeInteger(c.storeBackoffBaseMs) ? Math.max(1, c.storeBackoffBaseMs) : 1, 600_000);
  int('logRetentionMs', 0, 30 * DAY_MS);
  int('logCompactIntervalMs', 10, DAY_MS);
  int('logMaxRecords', 1, 10_000_000);
  int('logRewriteFloorBytes', 0, 1 << 30);
  int('logMaxRetainedBytes', 0, 1 << 30);
  int('helpGraceMs', 0, 600_000);
  int('helpRetryIntervalMs', 10, 600_000);
  int('watchPrepareDelayMs', 0, 60_000);
  int('maxHeldPrepares', 0, 1_000_000);
  int('workCheckMs', 10, DAY_MS);
  int('recoveryConcurrency', 1, 1_024);
  // At least a second: a keepalive (a third of it) must fit a store round trip with a retry.
  int('claimTtlMs', 1_000, 300_000);
  const file: unknown = c.authTokensFile;
  if (file !== undefined && (typeof file !== 'string' || file === '' || file.length > MAX_PATH_CHARS)) problems.push(`authTokensFile must be a file path of 1 to ${MAX_PATH_CHARS} characters`);
  if (problems.length > 0) throw new ParticipantConfigError(problems);
  return Object.freeze(c);
}
