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
import type { TxCasResult, TxGuard, TxStore, TxWrite, WriteOptions } from '../../coordinator/txstore/index.js';

export const MUTATIONS = ['decision-without-cas', 'vote-overwrites', 'fsync-lies'] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** Which kind of key a mutation turns into blind puts. */
type BlindKind = 'decision' | 'vote';

/** A TxStore whose creates of one kind of 2PC key are blind puts; every other call goes through. */
export function blindPutStore(inner: TxStore, kind: BlindKind): TxStore {
  const blind = (key: string): boolean => parseKey(key)?.kind === kind;
  const overrides: Partial<TxStore> = {
    casCreate: async (key: string, value: string, opts?: WriteOptions): Promise<TxCasResult> => {
      if (!blind(key)) return inner.casCreate(key, value, opts);
      const r = await inner.put(key, value, opts);
      return { succeeded: true, previous: r.previous, revision: r.revision };
    },
    // Every guard dropped: the write lands whatever the store holds.
    txn: (guards: readonly TxGuard[], writes: readonly TxWrite[]) => inner.txn(writes.some((w) => w.type === 'put' && blind(w.key)) ? [] : guards, writes),
  };
  return new Proxy(inner, {
    get: (target, prop, receiver): unknown => {
      const own = overrides[prop as keyof TxStore];
      if (own !== undefined) return own;
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The store a process of `role` is given under `mutation`. */
export function mutatedStore(store: TxStore, role: 'coordinator' | 'participant', mutation: Mutation | undefined): TxStore {
  if (mutation === 'decision-without-cas' && role === 'coordinator') return blindPutStore(store, 'decision');
  if (mutation === 'vote-overwrites') return blindPutStore(store, 'vote');
  return store;
}
