/**
 * `LmdbKeyStore`: the KeyStore contract (store/kv/keystore.ts) on LMDB, a
 * memory-mapped B+tree on disk (the `lmdb` package), in the manner of etcd's
 * bbolt. The live keys are not held in the JS heap: reads are synchronous
 * LMDB gets and cursor scans, served from the OS page cache.
 *
 * Layout, in one LMDB environment (a directory, the node's `<data-dir>/kv`):
 * - database `keys`: key = the key's UTF-8 bytes (LMDB orders keys by memcmp,
 *   which for UTF-8 is code point order, the order of compareKeys; string
 *   keys are encoded as Buffers on purpose: lmdb's default ordered-binary
 *   encoding escapes some leading bytes); value = the msgpack tuple
 *   [value, createRevision, modRevision, version, valueBytes, lease (0: none)].
 * - database `meta`: one entry `state` = { appliedIndex, count, bytes }, so
 *   opening a store reads its size without a scan.
 * - the rest of the state machine (revision, clock, leases and their keys,
 *   sessions, watch history, alarms): lmdb-state.ts, written in the same
 *   transaction, so a reopened store is the whole state machine at its
 *   applied index (KvStateMachine.reopen).
 *
 * Writes: every batch (`batch`, one per applied Ready on a node) is one LMDB
 * write transaction holding its sets, deletes and the `meta` entry with the
 * applied index, so the store on disk is always the state after some whole
 * batch. The environment runs with `noSync`: a commit reaches the OS (it
 * survives a process crash, SIGKILL included) but is not fsynced; the Raft
 * WAL is the durability point, and `flush` (mdb_env_sync) makes everything
 * committed durable, to be called before dropping WAL entries that only
 * this store's state would still cover. After a power loss the store may be
 * behind its `meta` at worst to an earlier whole batch (LMDB keeps its own
 * consistency without fsync only for a process crash; after a machine crash
 * a noSync environment can be damaged, so a node must then rebuild it from
 * its snapshot and WAL, as the first step does at every start).
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { assert } from '../../lib/assert.js';
import type { KeyRange, KeyStore, KeyStoreView, StoredKey } from '../kv/keystore.js';
import type { KeyValue, LeaseId } from '../kv/types.js';
import { compareKeys } from '../kv/utf8.js';
import { leaseKeyOf, LmdbStateStore, openStateDatabases, type StateDatabases } from './lmdb-state.js';

/** [value, createRevision, modRevision, version, valueBytes, lease or 0]. */
type Row = [string, number, number, number, number, number];

interface Meta {
  readonly appliedIndex: number;
  readonly count: number;
  readonly bytes: number;
}

const META_KEY = 'state';

export class LmdbKeyStore implements KeyStore {
  /** Batches open around the current call; writes commit when the outermost ends. */
  private depth = 0;
  /**
   * Rows read or written in the open batch, by key (undefined: absent). A
   * put reads its key up to three times (the quota check, the engine's
   * putKey, and `set` for the old size and lease); this keeps it to one
   * LMDB read and decode. Empty outside a batch, and dropped when it ends,
   * committed or aborted, so it never outlives the transaction it mirrors.
   */
  private readonly rows = new Map<string, Row | undefined>();
  private count: number;
  private bytes: number;
  private applied: number;
  readonly state: LmdbStateStore;

  private constructor(
    /** The environment's directory. */
    readonly path: string,
    private readonly env: RootDatabase,
    private readonly keys: Database<Row, Buffer>,
    private readonly meta: Database<Meta, string>,
    private readonly stateDbs: StateDatabases,
    private readonly onClosed: (() => Promise<void>) | undefined,
  ) {
    this.state = new LmdbStateStore(stateDbs);
    const m = meta.get(META_KEY) ?? { appliedIndex: 0, count: 0, bytes: 0 };
    this.count = m.count;
    this.bytes = m.bytes;
    this.applied = m.appliedIndex;
    const stats = keys.getStats() as { entryCount: number };
    assert(stats.entryCount === this.count, `LMDB key store at ${path}: meta counts ${this.count} keys, the database holds ${stats.entryCount}`);
  }

  /** Opens (creating if absent) the store in directory `path`; `onClosed` runs after a clean close (flushed). */
  static open(path: string, options: { onClosed?: () => Promise<void> } = {}): LmdbKeyStore {
    mkdirSync(path, { recursive: true });
    // noSubdir false: a directory name with a dot (kv.1) would otherwise be taken for a file.
    const env = open({ path, noSync: true, maxDbs: 8, noSubdir: false });
    const keys = env.openDB<Row, Buffer>({ name: 'keys', keyEncoding: 'binary', encoding: 'msgpack' });
    const meta = env.openDB<Meta, string>({ name: 'meta', encoding: 'msgpack' });
    return new LmdbKeyStore(path, env, keys, meta, openStateDatabases(env), options.onClosed);
  }

  get size(): number {
    return this.count;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get(key: string): StoredKey | undefined {
    const row = this.row(key, encodeKey(key));
    return row === undefined ? undefined : stored(key, row);
  }

  /** The key's row, through the open batch's memo. */
  private row(key: string, encoded: Buffer): Row | undefined {
    if (this.depth === 0) return this.keys.get(encoded);
    if (this.rows.has(key)) return this.rows.get(key);
    const row = this.keys.get(encoded);
    this.rows.set(key, row);
    return row;
  }

  set(s: StoredKey): void {
    if (this.depth === 0) return this.batch(() => this.set(s), () => this.applied);
    const key = encodeKey(s.kv.key);
    assert(key.length === s.keyBytes, `key ${JSON.stringify(s.kv.key)} is not ${s.keyBytes} UTF-8 bytes`);
    const old = this.row(s.kv.key, key);
    if (old === undefined) this.count++;
    else this.bytes -= key.length + old[4];
    const { value, createRevision, modRevision, version, lease } = s.kv;
    this.moveLease(key, old?.[5] ?? 0, lease ?? 0);
    const row: Row = [value, createRevision, modRevision, version, s.valueBytes, lease ?? 0];
    this.keys.putSync(key, row);
    this.rows.set(s.kv.key, row);
    this.bytes += s.keyBytes + s.valueBytes;
  }

  delete(key: string): StoredKey | undefined {
    if (this.depth === 0) return this.batch(() => this.delete(key), () => this.applied);
    const k = encodeKey(key);
    const old = this.row(key, k);
    if (old === undefined) return undefined;
    this.moveLease(k, old[5], 0);
    this.keys.removeSync(k);
    this.rows.set(key, undefined);
    this.count--;
    this.bytes -= k.length + old[4];
    return stored(key, old);
  }

  range(prefix: string, after: string | undefined, limit: number): KeyRange {
    assert(limit >= 1, 'range limit must be positive');
    const fromAfter = after !== undefined && compareKeys(after, prefix) >= 0;
    const start = fromAfter ? after : prefix;
    const kvs: KeyValue[] = [];
    for (const { key, value } of this.keys.getRange({ start: encodeKey(start) })) {
      const k = key.toString('utf8');
      if (fromAfter && k === after) continue;
      if (!k.startsWith(prefix)) return { kvs, more: false };
      if (kvs.length === limit) return { kvs, more: true };
      kvs.push(stored(k, value).kv);
    }
    return { kvs, more: false };
  }

  *inOrder(): IterableIterator<StoredKey> {
    for (const { key, value } of this.keys.getRange({})) yield stored(key.toString('utf8'), value);
  }

  clear(): void {
    if (this.depth === 0) return this.batch(() => this.clear(), () => 0);
    this.keys.clearSync();
    this.rows.clear();
    this.state.clear();
    this.count = 0;
    this.bytes = 0;
    this.applied = 0;
  }

  /** An LMDB read transaction over the keys as committed now (KeyStore.openView). */
  openView(): KeyStoreView {
    const txn = this.env.useReadTransaction();
    const keys = this.keys;
    return {
      page(after, maxKeys, maxBytes) {
        const out: StoredKey[] = [];
        let bytes = 0;
        const start = after === undefined ? undefined : encodeKey(after);
        for (const { key, value } of keys.getRange({ ...(start === undefined ? {} : { start, exclusiveStart: true }), transaction: txn })) {
          if (out.length >= maxKeys || (out.length > 0 && bytes >= maxBytes)) return { keys: out, more: true };
          const s = stored(key.toString('utf8'), value);
          bytes += s.keyBytes + s.valueBytes;
          out.push(s);
        }
        return { keys: out, more: false };
      },
      close: () => txn.done(),
    };
  }

  /** Keeps `leasekeys` (lmdb-state.ts) in step with the key's lease (0: none). */
  private moveLease(key: Buffer, from: LeaseId, to: LeaseId): void {
    if (from === to) return;
    if (from !== 0) this.stateDbs.leaseKeys.removeSync(leaseKeyOf(from, key));
    if (to !== 0) this.stateDbs.leaseKeys.putSync(leaseKeyOf(to, key), true);
  }

  batch<T>(apply: () => T, appliedIndex: () => number): T {
    if (this.depth > 0) return apply();
    const before = { count: this.count, bytes: this.bytes, applied: this.applied };
    this.depth++;
    try {
      return this.env.transactionSync(() => {
        const result = apply();
        this.applied = appliedIndex();
        this.meta.putSync(META_KEY, { appliedIndex: this.applied, count: this.count, bytes: this.bytes });
        return result;
      });
    } catch (e) {
      // The transaction was aborted: the counters go back to what is on disk.
      ({ count: this.count, bytes: this.bytes, applied: this.applied } = before);
      throw e;
    } finally {
      this.depth--;
      this.rows.clear();
    }
  }

  /** fsyncs the environment: every batch committed so far is durable when this resolves. */
  flush(): Promise<void> {
    const env = this.env as unknown as { sync(callback: (error?: unknown) => void): void };
    return new Promise((resolve, reject) => {
      env.sync((error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()));
    });
  }

  /** Flushes, then closes: a closed store is durable as a whole. */
  async close(): Promise<void> {
    assert(this.depth === 0, 'LMDB key store closed inside a batch');
    await this.flush();
    await this.env.close();
    await this.onClosed?.();
  }
}

function encodeKey(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

function stored(key: string, row: Row): StoredKey {
  const [value, createRevision, modRevision, version, valueBytes, lease] = row;
  const kv: KeyValue = lease === 0 ? { key, value, version, createRevision, modRevision } : { key, value, version, createRevision, modRevision, lease };
  return { kv, keyBytes: Buffer.byteLength(key, 'utf8'), valueBytes };
}
