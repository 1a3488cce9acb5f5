/**
 * The participant library's public contract with the service that embeds
 * it: the callbacks the service supplies, the options a node is opened
 * with, and the operator's view of one logged transaction.
 */
import type { Clock } from '../lib/clock.js';
import type { Random } from '../lib/random.js';
import type { Failpoints } from '../lib/failpoints.js';
import type { Logger } from '../lib/logger.js';
import type { Decision, JsonValue, VoteValue } from '../coordinator/protocol/index.js';
import type { BackoffPolicy } from '../lib/retry.js';
import type { TxStore } from '../coordinator/txstore/index.js';
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

export interface ParticipantNodeOptions {
  /** This participant's name, as enlisted with the coordinator: its vote and ack keys. */
  readonly name: string;
  readonly store: TxStore;
  readonly logPath: string;
  readonly service: ParticipantService;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  readonly failpoints?: Failpoints;
  /** Open (unacknowledged) transactions at once; new work past it is refused with 503. */
  readonly maxOpenTxs?: number;
  /** Serialized size of one transaction's work, in UTF-16 code units. */
  readonly maxWorkChars?: number;
  /** How long a prepare call waits for the vote to be in the store. */
  readonly requestTimeoutMs?: number;
  /** Backoff of store writes and service callbacks; each round has `maxAttempts`, and rounds repeat until done. */
  readonly retry?: BackoffPolicy;
  /** Acknowledged log records are kept this long (for the operator view), then compacted. */
  readonly retentionMs?: number;
  readonly compactIntervalMs?: number;
  /**
   * How long after the deadline an undecided "yes" starts helping decide
   * (jittered up to +50%): the coordinator acts at the deadline itself, so
   * waiting a little saves duplicate writes when it is alive.
   */
  readonly helpGraceMs?: number;
  /**
   * How long a frozen record seen on the watch waits before it is taken as
   * a prepare request (the coordinator's prepare call comes first for a
   * commit; see watch.ts). Default 250 ms.
   */
  readonly watchPrepareDelayMs?: number;
  /** A failed log write: the log is unusable until restart. Default: log and exit(1). */
  readonly onFatal?: (e: unknown) => void;
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
