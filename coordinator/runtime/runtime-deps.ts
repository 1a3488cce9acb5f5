/**
 * What the coordinator's runtime is built from (its dependencies and
 * metrics), and how its failures look to a client: a store that does not
 * answer is a 503 the client may retry; a begin that finds only the
 * compacted record of its id is `tx_collected`.
 */
import { AppError } from '../../lib/errors.js';
import type { Random } from '../../lib/random.js';
import type { CoordinatorConfig } from './config.js';
import type { FailpointHook } from '../../lib/failpoints.js';
import type { Timers } from '../../lib/timers.js';
import type { Collector } from './gc.js';
import type { HintSender } from './hints.js';
import type { Logger } from '../../lib/logger.js';
import type { Counter, Histogram } from '../../lib/metrics.js';
import { TxStoreError, type TxStore } from '../txstore/index.js';

export interface RuntimeMetrics {
  readonly begun: Counter;
  readonly committed: Counter;
  readonly aborted: Counter;
  readonly storeRetries: Counter;
  readonly hintFailures: Counter;
  /** Prepare calls not sent: enough were in flight to that participant (its watch prepares). */
  readonly preparesSkipped: Counter;
  readonly collected: Counter;
  /** Vote fills or decisions refused because another coordinator had collected the transaction. */
  readonly collectedMeanwhile: Counter;
  readonly evicted: Counter;
  readonly commitLatency: Histogram;
}

export interface RuntimeDeps {
  readonly store: TxStore;
  readonly config: CoordinatorConfig;
  /** Every timer, sleep and reading of the time goes through here (a simulation injects its own). */
  readonly timers: Timers;
  readonly random: Random;
  readonly hints: HintSender;
  readonly collector: Collector;
  readonly failpoints: FailpointHook;
  readonly log: Logger;
  readonly metrics: RuntimeMetrics;
}

/** A begin found only the compacted record of this id: the transaction ran and was collected. */
export class TxCollectedError extends AppError {
  constructor(id: string) {
    super('tx_collected', 409, `transaction ${id} is finished and collected`);
  }
}

/** Store failures become 503s for clients; other AppErrors pass as they are. */
export function toServiceError(e: unknown): unknown {
  if (e instanceof TxStoreError && (e.status >= 500 || e.status === 429)) return new AppError('store_unavailable', 503, `the store did not answer: ${e.message}`, { retryAfterSeconds: 1 }, { cause: e });
  return e;
}
