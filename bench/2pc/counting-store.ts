/**
 * A TxStore wrapper that counts every call by kind, so the 2PC benchmark can
 * say how many store round trips one transaction costs, from the caller's
 * side and for any backend (built-in or etcd). Retries made inside the
 * wrapped store's client (failover, Request-Id resends) are one call here;
 * the runtime's own retries (withRetries) are counted again, as they are new
 * calls. The store's revision, read by the driver, is the server-side check.
 */
import type { TxCasResult, TxLeaseId, RangeOptions, TxGuard, TxKeyValue, TxStore, TxWatchEvent, TxWrite, WatchOptions, WriteOptions } from '../../coordinator/txstore/index.js';

export const WRITE_CALLS = ['casCreate', 'casValue', 'put', 'delete', 'txn', 'grantLease', 'keepAlive', 'revokeLease'] as const;
export const READ_CALLS = ['get', 'range'] as const;
export type CountedCall = (typeof WRITE_CALLS)[number] | (typeof READ_CALLS)[number] | 'watch';

export type CallCounts = Record<CountedCall, number>;

export function zeroCounts(): CallCounts {
  return { casCreate: 0, casValue: 0, put: 0, delete: 0, txn: 0, grantLease: 0, keepAlive: 0, revokeLease: 0, get: 0, range: 0, watch: 0 };
}

export class CountingTxStore implements TxStore {
  readonly counts: CallCounts = zeroCounts();

  constructor(private readonly inner: TxStore) {}

  get(key: string): Promise<TxKeyValue | null> {
    this.counts.get++;
    return this.inner.get(key);
  }

  casCreate(key: string, value: string, opts?: WriteOptions): Promise<TxCasResult> {
    this.counts.casCreate++;
    return this.inner.casCreate(key, value, opts);
  }

  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<TxCasResult> {
    this.counts.casValue++;
    return this.inner.casValue(key, expected, value, opts);
  }

  put(key: string, value: string, opts?: WriteOptions): Promise<{ readonly revision: number; readonly previous: string | null }> {
    this.counts.put++;
    return this.inner.put(key, value, opts);
  }

  delete(key: string): Promise<{ readonly deleted: boolean; readonly previous: string | null; readonly revision: number }> {
    this.counts.delete++;
    return this.inner.delete(key);
  }

  range(prefix: string, opts?: RangeOptions): Promise<{ readonly kvs: readonly TxKeyValue[]; readonly more: boolean; readonly revision: number }> {
    this.counts.range++;
    return this.inner.range(prefix, opts);
  }

  watch(prefix: string, opts?: WatchOptions): AsyncIterable<TxWatchEvent> {
    this.counts.watch++;
    return this.inner.watch(prefix, opts);
  }

  txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ readonly succeeded: boolean; readonly revision: number }> {
    this.counts.txn++;
    return this.inner.txn(guards, writes);
  }

  grantLease(ttlMs: number): Promise<{ readonly id: TxLeaseId; readonly ttlMs: number }> {
    this.counts.grantLease++;
    return this.inner.grantLease(ttlMs);
  }

  keepAlive(id: TxLeaseId): Promise<{ readonly id: TxLeaseId; readonly ttlMs: number }> {
    this.counts.keepAlive++;
    return this.inner.keepAlive(id);
  }

  revokeLease(id: TxLeaseId): Promise<{ readonly revoked: boolean }> {
    this.counts.revokeLease++;
    return this.inner.revokeLease(id);
  }
}

export function writesOf(c: CallCounts): number {
  return WRITE_CALLS.reduce((n, k) => n + c[k], 0);
}

export function readsOf(c: CallCounts): number {
  return READ_CALLS.reduce((n, k) => n + c[k], 0);
}

export function diffCounts(after: CallCounts, before: CallCounts): CallCounts {
  const out = zeroCounts();
  for (const k of Object.keys(out) as CountedCall[]) out[k] = after[k] - before[k];
  return out;
}

export function addCounts(a: CallCounts, b: CallCounts): CallCounts {
  const out = zeroCounts();
  for (const k of Object.keys(out) as CountedCall[]) out[k] = a[k] + b[k];
  return out;
}
