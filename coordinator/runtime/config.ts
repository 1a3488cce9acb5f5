/**
 * The coordinator's configuration: every limit named with its unit, with
 * defaults, validated at start (a bad value is refused before anything runs).
 */
import { PROTOCOL_LIMITS } from '../protocol/index.js';
import { registryProblem } from './registry.js';

export interface CoordinatorConfig {
  /** This coordinator's id: `by` in the "no" votes it fills, and the store client's id prefix. */
  readonly id: string;
  /** Transaction timeout when begin gives none; the deadline is begin time plus this. */
  readonly defaultTimeoutMs: number;
  readonly minTimeoutMs: number;
  readonly maxTimeoutMs: number;
  /** Participants per transaction. */
  readonly maxParticipants: number;
  /** Transactions driven by this process at once (begun here, loaded for a request, or adopted by recovery). */
  readonly maxLiveTxs: number;
  /** Request body cap. */
  readonly maxBodyBytes: number;
  /** Store writes: attempts (each a CAS or txn, so repeats are safe) and backoff. */
  readonly storeWriteMaxAttempts: number;
  readonly storeBackoffBaseMs: number;
  readonly storeBackoffMaxMs: number;
  /** Timeout of one prepare or decision call to a participant (they are hints). */
  readonly hintTimeoutMs: number;
  /** Prepare hint attempts per participant, the first included. */
  readonly prepareHintAttempts: number;
  /** Hint calls in flight at once; past it hints are skipped (participants also watch the store). */
  readonly maxInflightHints: number;
  /**
   * Prepare calls in flight to one participant; past it a prepare is not
   * sent, and the participant prepares from its watch of the frozen record.
   * Alone, a transaction's prepare goes with its freeze and saves the watch's
   * delay; under load the watch carries the prepares, and the calls (an HTTP
   * request each way, the participant's answer waiting for its vote) would
   * only cost CPU (docs/BENCHMARKS.md, bench:2pc).
   */
  readonly maxPrepareHintsPerParticipant: number;
  /** How long a request other than commit waits for its answer. */
  readonly requestTimeoutMs: number;
  /** How long past the deadline a commit request waits for the outcome. */
  readonly commitGraceMs: number;
  /** Mean time between recovery scans; each interval is jittered to 50%..150%. */
  readonly recoveryIntervalMs: number;
  /** Keys one recovery pass reads at most; the next pass continues where it stopped. */
  readonly recoveryScanMaxKeys: number;
  /**
   * How long after the decision a participant that has not acked gets a
   * decision hint. Participants learn the decision from their watch at about
   * the moment the coordinator learns its CAS landed, so the hint matters
   * only to one whose watch is stuck, or that has no record of the
   * transaction; sent at once, it cost two HTTP calls and a store read per
   * participant and transaction for nothing (docs/BENCHMARKS.md, bench:2pc).
   * Below `ackWaitMs`, so a loaded transaction sends its hints before it is
   * dropped.
   */
  readonly decisionHintDelayMs: number;
  /** How long a decided transaction stays loaded waiting for acks before recovery takes it back. */
  readonly ackWaitMs: number;
  /** How long the compacted record of a collected transaction stays for GET; 0: none is kept. */
  readonly retentionMs: number;
  /**
   * The compacted records' budget, in UTF-8 bytes of keys and values, per
   * coordinator process: past it the oldest are deleted first (gc.ts).
   */
  readonly retentionMaxBytes: number;
  /**
   * Back-pressure: new begins get 429 store_nearly_full (with Retry-After)
   * while the store holds more than this percentage of its quota, or its
   * NOSPACE alarm is raised. Transactions already begun are never refused.
   */
  readonly storeHighWaterPercent: number;
  /**
   * The store's quota, for a store that does not report one (etcd: its
   * --quota-backend-bytes, which its endpoint status does not tell). The
   * built-in store reports its own in /v1/status.
   */
  readonly storeQuotaBytes: number;
  /** How often the store's usage is read for back-pressure; also the Retry-After of a 429 (rounded up to seconds). */
  readonly storeUsageCheckMs: number;
  /** Listing: default and most transactions per page, and most keys read per request. */
  readonly listDefaultLimit: number;
  readonly listMaxLimit: number;
  readonly listScanMaxKeys: number;
  /**
   * Elect one coordinator to run the periodic recovery sweep (a recipes/
   * Election on a session lease, sweep-election.ts); null: every coordinator
   * sweeps, as before.
   */
  readonly sweepElection: SweepElectionConfig | null;
  /**
   * Participants registered by name, name to URL (coordinator/service/registry.ts):
   * with it, begin and enlist accept only these names and call only these URLs.
   * null: clients give each participant's URL (a trusted network).
   */
  readonly participantRegistry: Readonly<Record<string, string>> | null;
}

export interface SweepElectionConfig {
  /** The election's name (recipes/election/{name}/): coordinators sharing it elect one sweeper. */
  readonly name: string;
  /** The session lease's TTL: a dead leader is replaced about this long after it stops renewing. */
  readonly ttlMs: number;
}

/** The sweep election's TTL when none is given. */
export const DEFAULT_SWEEP_ELECTION_TTL_MS = 5_000;
/** A recipe name (recipes/keys.ts). */
const ELECTION_NAME = /^[A-Za-z0-9._:@-]{1,200}$/;

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export const DEFAULT_COORDINATOR_CONFIG: Omit<CoordinatorConfig, 'id'> = Object.freeze({
  defaultTimeoutMs: 10_000,
  minTimeoutMs: 100,
  maxTimeoutMs: 600_000,
  maxParticipants: 32,
  maxLiveTxs: 4_096,
  maxBodyBytes: 64 * 1024,
  storeWriteMaxAttempts: 6,
  storeBackoffBaseMs: 25,
  storeBackoffMaxMs: 1_000,
  hintTimeoutMs: 2_000,
  prepareHintAttempts: 2,
  maxInflightHints: 512,
  maxPrepareHintsPerParticipant: 2,
  requestTimeoutMs: 20_000,
  commitGraceMs: 10_000,
  recoveryIntervalMs: 2_000,
  recoveryScanMaxKeys: 20_000,
  decisionHintDelayMs: 1_000,
  ackWaitMs: 30_000,
  retentionMs: 3_600_000,
  retentionMaxBytes: 16 * MIB, // a small share of the store's quota per coordinator process (2 GiB by default; 128 MiB with the memory engine)
  storeHighWaterPercent: 90,
  storeQuotaBytes: 2 * GIB,
  storeUsageCheckMs: 1_000,
  listDefaultLimit: 100,
  listMaxLimit: 1_000,
  listScanMaxKeys: 20_000,
  sweepElection: null,
  participantRegistry: null,
});

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export function makeCoordinatorConfig(overrides: Partial<CoordinatorConfig> & { readonly id: string }): CoordinatorConfig {
  const merged: CoordinatorConfig = { ...DEFAULT_COORDINATOR_CONFIG, ...overrides };
  const se = merged.sweepElection;
  // A copy: the caller's object stays theirs, and the frozen config holds a frozen election.
  const c: CoordinatorConfig = se === null || typeof se !== 'object' ? merged : { ...merged, sweepElection: Object.freeze({ name: se.name, ttlMs: se.ttlMs }) };
  const problems: string[] = [];
  if (!ID.test(c.id)) problems.push(`id must match ${ID.source}`);
  const int = (name: keyof CoordinatorConfig, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) problems.push(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  };
  int('minTimeoutMs', 1);
  int('maxTimeoutMs', c.minTimeoutMs, 2 ** 31 - 1);
  int('defaultTimeoutMs', c.minTimeoutMs, c.maxTimeoutMs);
  int('maxParticipants', 1, PROTOCOL_LIMITS.maxParticipants);
  int('maxLiveTxs', 1, 1_000_000);
  int('maxBodyBytes', 1_024, 16 * 1024 * 1024);
  int('storeWriteMaxAttempts', 1, 100);
  int('storeBackoffBaseMs', 1, 60_000);
  int('storeBackoffMaxMs', c.storeBackoffBaseMs, 600_000);
  int('hintTimeoutMs', 1, 600_000);
  int('prepareHintAttempts', 1, 10);
  int('maxInflightHints', 1, 100_000);
  int('maxPrepareHintsPerParticipant', 0, 100_000);
  int('requestTimeoutMs', 1, 600_000);
  int('commitGraceMs', 0, 600_000);
  int('recoveryIntervalMs', 10, 3_600_000);
  int('recoveryScanMaxKeys', 1, 10_000_000);
  int('ackWaitMs', 0, 86_400_000);
  int('decisionHintDelayMs', 0, Math.max(0, c.ackWaitMs - 1));
  int('retentionMs', 0, 30 * 86_400_000);
  int('retentionMaxBytes', 64 * 1024, 8 * GIB);
  int('storeHighWaterPercent', 1, 100);
  int('storeQuotaBytes', MIB, 8 * GIB);
  int('storeUsageCheckMs', 10, 600_000);
  int('listMaxLimit', 1, 10_000);
  int('listDefaultLimit', 1, c.listMaxLimit);
  int('listScanMaxKeys', 1, 10_000_000);
  const e = c.sweepElection;
  if (e !== null && (typeof e !== 'object' || !ELECTION_NAME.test(String(e.name)) || !Number.isSafeInteger(e.ttlMs) || e.ttlMs < 500 || e.ttlMs > 600_000)) {
    problems.push('sweepElection must be null or { name: 1 to 200 of A-Z a-z 0-9 . _ : @ -, ttlMs: an integer in [500, 600000] }');
  }
  const registry = registryProblem(c.participantRegistry);
  if (registry !== null) problems.push(registry);
  if (problems.length > 0) throw new Error(`invalid coordinator config: ${problems.join('; ')}`);
  return Object.freeze(c);
}
