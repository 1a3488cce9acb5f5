/**
 * The participant library's public contract with the service that embeds
 * it: the callbacks the service supplies, the options a node is opened
 * with (every outside-world effect is an injected dependency, so the
 * deterministic simulation runs the same code on simulated time, network
 * and disk), the typed results of its calls, and the operator's view of one
 * logged transaction.
 */
import { systemTimers, type Timers } from '../lib/timers.js';
import { systemRandom, type Random } from '../lib/random.js';
import type { BackoffPolicy } from '../lib/retry.js';
import type { FailpointHook } from '../lib/failpoints.js';
import { createLogger, type Logger } from '../lib/logger.js';
import type { Decision, JsonValue, VoteValue } from '../coordinator/protocol/index.js';
import type { TxStore } from '../coordinator/txstore/index.js';
import { makeParticipantConfig, type ParticipantConfig } from './config.js';
import type { ClaimProcess } from './claim.js';
import type { LogFs } from './durable-json-file.js';
import type { ParticipantPhase } from './machine.js';

export interface PrepareAnswer {
  readonly vote: VoteValue;
  readonly reason?: string;
}

/** What the embedding service supplies. */
export interface ParticipantService {
  /** Validate the work and take its locks; "no" (or a throw) refuses. Called at most once per transaction and process. */
  prepare(txId: string, work: JsonValue): Promise<PrepareAnswer> | PrepareAnswer;
  /** Apply the prepared work and release its locks. Idempotent. */
  commit(txId: string): Promise<void> | void;
  /** Release whatever `prepare` took (nothing, if it never ran). Idempotent. */
  abort(txId: string): Promise<void> | void;
  /**
   * After a restart, take back the locks of a transaction that voted "yes"
   * and is not decided yet, before anything else is served. Default: call
   * `prepare` again and ignore its answer.
   */
  restore?(txId: string, work: JsonValue): Promise<void> | void;
}

/** A failure after which this participant must not go on (a failed log write, a broken invariant). */
export type FatalHandler = (error: unknown) => void;

export interface ParticipantNodeOptions {
  /** This participant's name, as enlisted with the coordinator: its vote and ack keys. */
  readonly name: string;
  /** The coordination store: the watch of `tx/`, reads of decisions, the vote and ack CAS writes, helping decide. */
  readonly store: TxStore;
  /** The participant log's file (its directory is created if missing). */
  readonly logPath: string;
  readonly service: ParticipantService;
  /**
   * Time: every delay and timeout (request timeouts, the watch's prepare
   * delay, the deadline timer, retries' backoff, compaction), and the wall
   * clock stamped into log records and compared with deadlines. Default
   * `systemTimers`.
   */
  readonly timers?: Timers;
  /** Jitter of backoff, of helping decide past a deadline, and of the watch's reconnects. Default `systemRandom`. */
  readonly random?: Random;
  /** Every file operation of the log (read, append, fdatasync, rewrite by temp file and rename, directory fsync, mkdir). Default `nodeLogFs`. */
  readonly logFs?: LogFs;
  /** Crash points for crash tests. Default: none. */
  readonly failpoints?: FailpointHook;
  /** This process as its name claim names it (host, pid, liveness probe). Default: the real one (claim.ts `thisProcess`); a simulation gives its own. */
  readonly claimProcess?: ClaimProcess;
  /** Where the node reports what it does and what went wrong. Default: stderr. */
  readonly logger?: Logger;
  /**
   * Called once when the participant cannot safely go on: a log write
   * (fdatasync, rewrite) failed, so memory may be ahead of the disk; an
   * invariant broke; or its name claim was lost (`participant_claim_lost`,
   * claim.ts), so another instance may act under its name. The node has
   * already stopped serving (every call answers 503 `participant_failed`);
   * only a restart, recovering from disk, brings it back. A process should
   * exit here (a supervisor restarts it); a simulation crashes the
   * simulated process. The library itself never exits the process.
   * Default: log the error at level `error` and leave the node stopped
   * (the host keeps running; its `/readyz` answers 503).
   */
  readonly onFatal?: FatalHandler;
  /** Limits and timings, and `authTokensFile` (bearer tokens on the routes); unknown fields and out-of-range values are refused (config.ts). */
  readonly config?: Partial<ParticipantConfig>;
}

/** The answer to work (`POST /2pc/work`): durable before it is given. */
export interface WorkResult {
  readonly txId: string;
  readonly accepted: true;
}

/** The answer to a prepare (`POST /2pc/prepare`): the vote the store holds. */
export interface PrepareResult {
  readonly txId: string;
  readonly vote: VoteValue;
}

/** The answer to a decision hint (`POST /2pc/decision`) the store confirmed, with this participant's phase now. */
export interface DecisionResult {
  readonly txId: string;
  readonly decision: Decision;
  readonly phase: ParticipantPhase;
}

export interface ParticipantTxView {
  readonly txId: string;
  readonly phase: ParticipantPhase;
  readonly inDoubt: boolean;
  readonly work: JsonValue | null;
  readonly vote: VoteValue | null;
  readonly decision: Decision | null;
  readonly receivedAt: number;
  readonly appliedAt: number | null;
  readonly ackedAt: number | null;
}

/** What `open` resolves from the options, once, and builds the node with. */
export interface NodeDefaults {
  readonly config: ParticipantConfig;
  readonly timers: Timers;
  readonly random: Random;
  readonly logger: Logger;
  readonly retry: BackoffPolicy;
}

export function nodeDefaults(opts: ParticipantNodeOptions): NodeDefaults {
  const config = makeParticipantConfig(opts.config);
  return {
    config,
    timers: opts.timers ?? systemTimers,
    random: opts.random ?? systemRandom,
    logger: opts.logger ?? createLogger({ component: 'participant', fields: { participant: opts.name } }),
    retry: { maxAttempts: config.storeWriteMaxAttempts, baseMs: config.storeBackoffBaseMs, maxMs: config.storeBackoffMaxMs },
  };
}
