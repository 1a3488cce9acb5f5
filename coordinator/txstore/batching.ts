/**
 * Group commit for a process's store writes: `BatchingTxStore` sends the
 * writes its callers make while earlier rounds are in flight as ONE batch
 * (TxBatchWriter, the built-in store's POST /v1/batch), each with its own
 * outcome. Under load a coordinator's records, freezes, fills, decisions and
 * collections, or a participant's votes and acks, of many transactions share
 * one HTTP round and one Raft append, as Seata's Raft store and
 * TigerBeetle's batches do; alone, a write goes at once by itself, so a
 * quiet system waits for nothing.
 *
 * Policy: at most `maxInflight` rounds at a time. A write that finds a free
 * round goes on the next event-loop turn (with whatever else was written in
 * this one); otherwise it waits for a round to finish and goes in the next
 * batch, at most `maxItems` per batch. Past `maxQueued` waiting writes a
 * write fails `busy` (503, retryable), so a stalled store cannot grow the
 * queue without bound. Reads, watches and leases pass straight through.
 */
import type { MetricsRegistry } from '../../lib/metrics.js';
import type { Timers } from '../../lib/timers.js';
import { TxStoreError, type RangeOptions, type TxBatchOutcome, type TxBatchWrite, type TxBatchWriter, type TxCasResult, type TxGuard, type TxKeyValue, type TxLeaseId, type TxStore, type TxWatchEvent, type TxWrite, type WatchOptions, type WriteOptions } from './txstore.js';

export interface BatchLimits {
  /** Writes in one batch at most (the built-in store takes 256). */
  readonly maxItems: number;
  /** Batches in flight at once. */
  readonly maxInflight: number;
  /** Writes waiting for a batch at most; past it a write fails `busy`. */
  readonly maxQueued: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxItems: 128, maxInflight: 2, maxQueued: 16_384 };

interface Queued {
  readonly write: TxBatchWrite;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** What the wrapper counts, for metrics and the benchmark. */
export interface BatchStats {
  batches: number;
  writes: number;
}

export class BatchingTxStore implements TxStore {
  private queue: Queued[] = [];
  private inflight = 0;
  private scheduled = false;
  readonly stats: BatchStats = { batches: 0, writes: 0 };

  constructor(
    private readonly inner: TxStore & TxBatchWriter,
    private readonly timers: Pick<Timers, 'soon'>,
    private readonly limits: BatchLimits = DEFAULT_BATCH_LIMITS,
  ) {}

  casCreate(key: string, value: string, opts?: WriteOptions): Promise<TxCasResult> {
    return this.enqueue({ kind: 'cas', key, expected: null, value, ...(opts === undefined ? {} : { opts }) }) as Promise<TxCasResult>;
  }

  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<TxCasResult> {
    return this.enqueue({ kind: 'cas', key, expected, value, ...(opts === undefined ? {} : { opts }) }) as Promise<TxCasResult>;
  }

  put(key: string, value: string, opts?: WriteOptions): Promise<{ revision: number; previous: string | null }> {
    return this.enqueue({ kind: 'put', key, value, ...(opts === undefined ? {} : { opts }) }) as Promise<{ revision: number; previous: string | null }>;
  }

  delete(key: string): Promise<{ deleted: boolean; previous: string | null; revision: number }> {
    return this.enqueue({ kind: 'delete', key }) as Promise<{ deleted: boolean; previous: string | null; revision: number }>;
  }

  txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ succeeded: boolean; revision: number }> {
    return this.enqueue({ kind: 'txn', guards, writes }) as Promise<{ succeeded: boolean; revision: number }>;
  }

  get(key: string): Promise<TxKeyValue | null> {
    return this.inner.get(key);
  }

  range(prefix: string, opts?: RangeOptions): Promise<{ kvs: readonly TxKeyValue[]; more: boolean; revision: number }> {
    return this.inner.range(prefix, opts);
  }

  watch(prefix: string, opts?: WatchOptions): AsyncIterable<TxWatchEvent> {
    return this.inner.watch(prefix, opts);
  }

  grantLease(ttlMs: number): Promise<{ id: TxLeaseId; ttlMs: number }> {
    return this.inner.grantLease(ttlMs);
  }

  keepAlive(id: TxLeaseId): Promise<{ id: TxLeaseId; ttlMs: number }> {
    return this.inner.keepAlive(id);
  }

  revokeLease(id: TxLeaseId): Promise<{ revoked: boolean }> {
    return this.inner.revokeLease(id);
  }

  private enqueue(write: TxBatchWrite): Promise<unknown> {
    if (this.queue.length >= this.limits.maxQueued) {
      return Promise.reject(new TxStoreError('busy', 503, `more than ${this.limits.maxQueued} store writes are waiting for a batch`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inflight >= this.limits.maxInflight || this.queue.length === 0) return;
    this.scheduled = true;
    // The next turn: writes made in this one join the batch.
    this.timers.soon(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inflight < this.limits.maxInflight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.limits.maxItems);
      this.inflight++;
      this.stats.batches++;
      this.stats.writes += batch.length;
      void this.send(batch).finally(() => {
        this.inflight--;
        this.schedule();
      });
    }
  }

  private async send(batch: readonly Queued[]): Promise<void> {
    let outcomes: TxBatchOutcome[];
    try {
      // One write alone takes its own route: the same request it would be without batching.
      outcomes = batch.length === 1 ? [await this.single(batch[0]!.write)] : await this.inner.writeBatch(batch.map((q) => q.write));
    } catch (e) {
      const bad = refusedItem(e, batch.length);
      if (bad === undefined) for (const q of batch) q.reject(e);
      else {
        // One caller's bad write refused the batch (nothing was written): it fails alone, the others go again.
        batch[bad]!.reject(e);
        await this.send(batch.filter((_, i) => i !== bad));
      }
      return;
    }
    batch.forEach((q, i) => {
      const o = outcomes[i];
      if (o === undefined) q.reject(new TxStoreError('unavailable', 503, 'the batch answered fewer writes than it was sent'));
      else if (o.ok) q.resolve(o.value);
      else q.reject(o.error);
    });
  }

  private async single(w: TxBatchWrite): Promise<TxBatchOutcome> {
    const run = (): Promise<unknown> => {
      switch (w.kind) {
        case 'cas':
          return w.expected === null ? this.inner.casCreate(w.key, w.value, w.opts) : this.inner.casValue(w.key, w.expected, w.value, w.opts);
        case 'put':
          return this.inner.put(w.key, w.value, w.opts);
        case 'delete':
          return this.inner.delete(w.key);
        case 'txn':
          return this.inner.txn(w.guards, w.writes);
      }
    };
    try {
      return { ok: true, value: await run() };
    } catch (error) {
      return { ok: false, error };
    }
  }
}

/** The item a batch refusal names (the store checks every item before writing any), if it names one. */
function refusedItem(e: unknown, size: number): number | undefined {
  if (!(e instanceof TxStoreError) || e.status < 400 || e.status >= 500) return undefined;
  const item = e.details['item'];
  return typeof item === 'number' && Number.isInteger(item) && item >= 0 && item < size ? item : undefined;
}

/** True when `store` can take batches (the built-in store's backend); etcd batches proposals on its own side. */
export function canBatch(store: TxStore): store is TxStore & TxBatchWriter {
  return typeof (store as Partial<TxBatchWriter>).writeBatch === 'function';
}

/** The group commit's counters in a process's metrics, when its store batches (`prefix`: twopc or twopc_participant). */
export function registerBatchMetrics(r: MetricsRegistry, store: TxStore, prefix = 'twopc'): void {
  if (!(store instanceof BatchingTxStore)) return;
  r.counterFrom(`${prefix}_store_batches_total`, 'Rounds of store writes sent (a batch, or one write alone).', () => store.stats.batches);
  r.counterFrom(`${prefix}_store_batched_writes_total`, 'Store writes sent in those rounds; over the rounds, the mean batch size.', () => store.stats.writes);
}
