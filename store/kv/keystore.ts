/**
 * The keyspace contract the KV engine (engine.ts) works against: the live
 * keys with their sizes, point reads and writes, ordered prefix scans, and
 * atomic write batches. Two implementations pass the same contract
 * (test/kv/keystore.case.ts): the in-memory `Keyspace` (keyspace.ts), the
 * default and the simulation's, and `LmdbKeyStore` (store/engine/), which
 * keeps the keys on disk.
 *
 * Key order is compareKeys (code point order, the UTF-8 byte order etcd
 * uses). Every method is synchronous: the state machine is applied
 * synchronously, in log order.
 */
import type { StateStore } from './durable-state.js';
import type { KeyValue } from './types.js';

/** A live key with its sizes, kept so quota and history accounting never rescan values. */
export interface StoredKey {
  readonly kv: KeyValue;
  /** UTF-8 bytes of `kv.key` (> 0). */
  readonly keyBytes: number;
  /** UTF-8 bytes of `kv.value`. */
  readonly valueBytes: number;
}

/** Up to a range's limit of keys, and whether more keys match after them. */
export interface KeyRange {
  readonly kvs: KeyValue[];
  readonly more: boolean;
}

export interface KeyStore {
  /** Number of live keys. */
  readonly size: number;
  /** Key and value UTF-8 bytes of all live keys (what maxStoreBytes limits). */
  readonly totalBytes: number;
  /**
   * The applied index recorded with the last write batch that committed
   * (`batch`), 0 when none has; `clear` resets it to 0.
   */
  readonly appliedIndex: number;
  /**
   * Where an on-disk store keeps the rest of the state machine with each
   * batch (durable-state.ts), so a restart resumes at `appliedIndex`
   * instead of rebuilding; undefined for the in-memory Keyspace.
   */
  readonly state?: StateStore;

  get(key: string): StoredKey | undefined;
  /** Inserts or replaces the key `stored.kv.key`. */
  set(stored: StoredKey): void;
  /** Removes a key; returns what it held, or undefined if it was absent. */
  delete(key: string): StoredKey | undefined;
  /**
   * Up to `limit` (>= 1) keys starting with `prefix`, in key order, after
   * `after` (exclusive) when given; `more` says whether further keys match.
   */
  range(prefix: string, after: string | undefined, limit: number): KeyRange;
  /** Every live key in key order (for snapshots). */
  inOrder(): IterableIterator<StoredKey>;
  /** Removes every key and resets the applied index to 0. */
  clear(): void;
  /**
   * Runs `apply` as one atomic write batch: every set and delete inside it,
   * and then `appliedIndex()` as the batch's applied index, commit together
   * or not at all. Reads inside see the batch's own writes. A batch inside a
   * batch joins the outer one. A set or delete outside any batch is a batch
   * of its own that keeps the applied index.
   */
  batch<T>(apply: () => T, appliedIndex: () => number): T;
  /**
   * Makes every committed batch durable (an on-disk store may commit without
   * fsync, as the Raft WAL is the durability point; call this before
   * dropping WAL entries the store's state covers). In memory: nothing.
   */
  flush(): Promise<void>;
  /** Releases the store's resources; no call may follow. */
  close(): Promise<void>;
  /**
   * A consistent read view of the keys as of now, unchanged by later
   * batches, paged in key order (an on-disk store's read transaction, sent
   * to a lagging follower as a snapshot stream); undefined in memory.
   */
  openView?(): KeyStoreView;
}

/** A frozen view of a key store's keys; `close` releases it (an LMDB read transaction pins pages until then). */
export interface KeyStoreView {
  /** Keys after `after` (exclusive; from the first when undefined), at most `maxKeys` and about `maxBytes` of keys and values. */
  page(after: string | undefined, maxKeys: number, maxBytes: number): { readonly keys: StoredKey[]; readonly more: boolean };
  close(): void;
}
