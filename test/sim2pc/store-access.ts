/**
 * How a simulated process reaches the store: the real StoreClient (any
 * node, leader discovery, failover, retries under one Request-Id per write
 * lane, resumable watches) under the real BuiltinTxStore, over http.ts's
 * simulated HTTP, on the process's simulated timers.
 */
import { BatchingTxStore, DEFAULT_BATCH_LIMITS } from '../../coordinator/txstore/batching.js';
import { BuiltinTxStore, type TxStore } from '../../coordinator/txstore/index.js';
import type { SeededRandom } from '../../lib/random.js';
import { parseSse, StoreClient } from '../../store/client/index.js';
import type { SimHttpClient } from './http.js';
import type { Proc } from './world.js';

export interface StoreAccessOptions {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  readonly deadlineMs: number;
  readonly maxAttempts: number;
  /** Batches in flight of the process's group commit (BatchingTxStore); 0: none, every write alone. */
  readonly batchInflight: number;
}

export function simTxStore(proc: Proc, http: SimHttpClient, random: SeededRandom, opts: StoreAccessOptions): TxStore {
  const client = new StoreClient({
    endpoints: opts.endpoints.map((id) => `http://${id}`),
    clientId: `${proc.name}-${proc.incarnation}`,
    requestTimeoutMs: opts.requestTimeoutMs,
    deadlineMs: opts.deadlineMs,
    maxAttempts: opts.maxAttempts,
    http,
    openStream: async (url, signal) => {
      const r = await http.openStream(url, {}, signal);
      return 'body' in r ? { status: 200, messages: parseSse(r.body) } : r;
    },
    timers: proc.timers,
    random,
  });
  const store = new BuiltinTxStore(client);
  return opts.batchInflight === 0 ? store : new BatchingTxStore(store, proc.timers, { ...DEFAULT_BATCH_LIMITS, maxInflight: opts.batchInflight });
}
