/**
 * Planted bugs, to show the checks have teeth. Each is planted at a seam the
 * real runtimes are built on, never in a copy of their logic:
 *
 *   decision-without-cas  a TxStore wrapper (under every coordinator) that writes a decision
 *                         key with a blind put: no create-if-absent, no guard
 *   vote-overwrites       a TxStore wrapper (under every process) that writes vote keys
 *                         with a blind put: the first writer no longer wins
 *   fsync-lies            the participants' disks answer an fsync at once and make the data
 *                         durable only later (a disk cache that lies)
 */
import { parseKey } from '../../coordinator/protocol/index.js';
import type { CasResult, LeaseId, RangeOptions, TxGuard, TxKeyValue, TxStore, TxWatchEvent, TxWrite, WatchOptions, WriteOptions } from '../../coordinator/txstore/index.js';

export const MUTATIONS = ['decision-without-cas', 'vote-overwrites', 'fsync-lies'] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** Which kind of key a mutation turns into blind puts. */
type BlindKind = 'decision' | 'vote';

/** A TxStore whose creates of one kind of 2PC key are blind puts. */
export class BlindPutStore implements TxStore {
  constructor(
    private readonly inner: TxStore,
    private readonly kind: BlindKind,
  ) {}

  private blind(key: string): boolean {
    return parseKey(key)?.kind === this.kind;
  }

  async casCreate(key: string, value: string, opts?: WriteOptions): Promise<CasResult> {
    if (!this.blind(key)) return this.inner.casCreate(key, value, opts);
    const r = await this.inner.put(key, value, opts);
    return { succeeded: true, previous: r.previous, revision: r.revision };
  }

  async txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ readonly succeeded: boolean; readonly revision: number }> {
    const blindWrites = writes.filter((w) => w.type === 'put' && this.blind(w.key));
    if (blindWrites.length === 0) return this.inner.txn(guards, writes);
    // Every guard dropped: the write lands whatever the store holds.
    return this.inner.txn([], writes);
  }

  get(key: string): Promise<TxKeyValue | null> {
    return this.inner.get(key);
  }

  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<CasResult> {
    return this.inner.casValue(key, expected, value, opts);
  }

  put(key: string, value: string, opts?: WriteOptions): Promise<{ readonly revision: number; readonly previous: string | null }> {
    return this.inner.put(key, value, opts);
  }

  delete(key: string): Promise<{ readonly deleted: boolean; readonly previous: string | null; readonly revision: number }> {
    return this.inner.delete(key);
  }

  range(prefix: string, opts?: RangeOptions): Promise<{ readonly kvs: readonly TxKeyValue[]; readonly more: boolean; readonly revision: number }> {
    return this.inner.range(prefix, opts);
  }

  watch(prefix: string, opts?: WatchOptions): AsyncIterable<TxWatchEvent> {
    return this.inner.watch(prefix, opts);
  }

  grantLease(ttlMs: number): Promise<{ readonly id: LeaseId; readonly ttlMs: number }> {
    return this.inner.grantLease(ttlMs);
  }

  keepAlive(id: LeaseId): Promise<{ readonly id: LeaseId; readonly ttlMs: number }> {
    return this.inner.keepAlive(id);
  }

  revokeLease(id: LeaseId): Promise<{ readonly revoked: boolean }> {
    return this.inner.revokeLease(id);
  }
}

/** The store a process of `role` is given under `mutation`. */
export function mutatedStore(store: TxStore, role: 'coordinator' | 'participant', mutation: Mutation | undefined): TxStore {
  if (mutation === 'decision-without-cas' && role === 'coordinator') return new BlindPutStore(store, 'decision');
  if (mutation === 'vote-overwrites') return new BlindPutStore(store, 'vote');
  return store;
}
