/**
 * The engines bench/store/engine-bench.ts measures, behind one small
 * interface: today's in-memory Keyspace, lmdb-js in three sync modes, and
 * classic-level with sync or batched async reads (the modes are described in
 * engine-bench.ts's header).
 */
import { ClassicLevel } from 'classic-level';
import { open as openLmdb, TransactionFlags, type Database, type RootDatabase } from 'lmdb';
import { Keyspace } from '../../store/kv/keyspace.js';
import type { KeyValue } from '../../store/kv/types.js';

export const ALL_ENGINES = ['keyspace', 'lmdb', 'lmdb-overlap', 'lmdb-sync', 'level', 'level-async'] as const;
export type EngineName = (typeof ALL_ENGINES)[number];
export const VALUE_BYTES = 512;
export const RANGE_LIMIT = 100;
export const KEY_PREFIX = 'bench/key/';
/** Above every key under KEY_PREFIX: a range is a prefix scan, as the store's. */
export const PREFIX_END = 'bench/key0';
/** The applied-index meta key; below every data key ('\u0000' < 'b'). */
export const APPLIED_KEY = '\u0000meta/applied';
/** transactionSync flags for "commit now, flush on lmdb's own thread" (what lmdb-js's putSync uses, 0x10002). */
export const LMDB_ASYNC_FLUSH = TransactionFlags.SYNCHRONOUS_COMMIT | TransactionFlags.NO_SYNC_FLUSH;

export interface Options {
  keys: number;
  batch: number;
  overwriteS: number;
  readS: number;
  rangeS: number;
  dir: string;
}

/** The record an on-disk engine keeps per key: the KeyValue without its key. */
export interface Rec {
  value: string;
  version: number;
  createRevision: number;
  modRevision: number;
}

/** One engine behind the operations the apply loop and the read API need. */
export interface Engine {
  /** Applies one Raft batch: read each key's record, write the next, write the applied index; all atomic. */
  applyBatch(keys: readonly string[], values: readonly string[], appliedIndex: number): void | Promise<void>;
  get(key: string): Rec | undefined | Promise<Rec | undefined>;
  /** Up to `limit` keys from `start` (inclusive), in order; returns how many. */
  range(start: string, limit: number): number | Promise<number>;
  close(): Promise<void>;
  /** Opens the engine again after close(); returns the applied index read back. */
  reopen(): Promise<number>;
  /** Files of the engine, for the disk size. */
  readonly dir: string | undefined;
}

export function keyOf(i: number): string {
  return KEY_PREFIX + String(i).padStart(9, '0');
}

/** A fresh, flat 512-character value (as JSON.parse of a command would give), distinct per write. */
export const valueBuf = Buffer.alloc(VALUE_BYTES);
let valueSeq = 0;
export function freshValue(): string {
  const seq = valueSeq++;
  for (let i = 0; i < VALUE_BYTES; i += 8) {
    const x = (seq * 2654435761 + i * 40503) >>> 0;
    valueBuf.writeUInt32LE(x, i);
    valueBuf.writeUInt32LE((x ^ 0x5bd1e995) >>> 0, i + 4);
  }
  for (let i = 0; i < VALUE_BYTES; i++) valueBuf[i] = 97 + ((valueBuf[i] as number) % 26);
  return valueBuf.toString('latin1');
}

/** xorshift32, seeded: the same key order for every engine. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

export function nextRec(old: Rec | undefined, value: string, revision: number): Rec {
  return old === undefined
    ? { value, version: 1, createRevision: revision, modRevision: revision }
    : { value, version: old.version + 1, createRevision: old.createRevision, modRevision: revision };
}

// ---- engines ----------------------------------------------------------------

export class KeyspaceEngine implements Engine {
  readonly dir = undefined;
  private ks = new Keyspace();
  private revision = 1;
  private applied = 0;

  applyBatch(keys: readonly string[], values: readonly string[], appliedIndex: number): void {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const value = values[i] as string;
      const prev = this.ks.get(key)?.kv;
      const rev = ++this.revision;
      const kv: KeyValue = {
        key,
        value,
        version: prev === undefined ? 1 : prev.version + 1,
        createRevision: prev === undefined ? rev : prev.createRevision,
        modRevision: rev,
      };
      this.ks.set({ kv, keyBytes: key.length, valueBytes: value.length });
    }
    this.applied = appliedIndex;
  }

  get(key: string): Rec | undefined {
    return this.ks.get(key)?.kv;
  }

  range(start: string, limit: number): number {
    return this.ks.range(KEY_PREFIX, start > KEY_PREFIX ? prevKey(start) : undefined, limit).kvs.length;
  }

  async close(): Promise<void> {}

  async reopen(): Promise<number> {
    return this.applied;
  }
}

/** A key just below `key`, so that the Keyspace's exclusive `after` starts at `key` itself. */
export function prevKey(key: string): string {
  const last = key.charCodeAt(key.length - 1);
  return key.slice(0, -1) + String.fromCharCode(last - 1) + '\uffff';
}

export type LmdbMode = 'nosync' | 'overlap' | 'sync';

export class LmdbEngine implements Engine {
  private root!: RootDatabase;
  /** Keys and their records; a named database, as the root one lists the named ones. */
  private kv!: Database<string, string>;
  private meta!: Database<number, string>;
  private revision = 1;

  constructor(
    readonly dir: string,
    private readonly mode: LmdbMode,
  ) {
    this.openNow();
  }

  private openNow(): void {
    this.root = openLmdb({ path: this.dir, ...(this.mode === 'nosync' ? { noSync: true } : {}) });
    this.kv = this.root.openDB<string, string>({ name: 'kv', encoding: 'string' });
    this.meta = this.root.openDB<number, string>({ name: 'meta', encoding: 'msgpack' });
  }

  applyBatch(keys: readonly string[], values: readonly string[], appliedIndex: number): void {
    const body = (): void => {
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const old = this.kv.get(key); // sync, and sees this transaction's own writes
        const rec = nextRec(old === undefined ? undefined : (JSON.parse(old) as Rec), values[i] as string, ++this.revision);
        void this.kv.put(key, JSON.stringify(rec));
      }
      void this.meta.put(APPLIED_KEY, appliedIndex);
    };
    if (this.mode === 'overlap') this.root.transactionSync(body, LMDB_ASYNC_FLUSH);
    else this.root.transactionSync(body);
  }

  get(key: string): Rec | undefined {
    const s = this.kv.get(key);
    return s === undefined ? undefined : (JSON.parse(s) as Rec);
  }

  range(start: string, limit: number): number {
    let n = 0;
    for (const { value } of this.kv.getRange({ start, end: PREFIX_END, limit })) {
      JSON.parse(value);
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
  }

  async reopen(): Promise<number> {
    this.openNow();
    return this.meta.get(APPLIED_KEY) ?? 0;
  }
}

export class LevelEngine implements Engine {
  private db!: ClassicLevel<string, string>;
  private revision = 1;

  constructor(
    readonly dir: string,
    private readonly asyncReads: boolean,
  ) {}

  async open(): Promise<void> {
    this.db = new ClassicLevel<string, string>(this.dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await this.db.open();
  }

  async applyBatch(keys: readonly string[], values: readonly string[], appliedIndex: number): Promise<void> {
    // LevelDB has no read inside a write batch: the batch's own writes live in an overlay until it commits.
    const overlay = new Map<string, Rec>();
    const committed = this.asyncReads ? await this.db.getMany(keys as string[]) : undefined;
    const ops: { type: 'put'; key: string; value: string }[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      let old = overlay.get(key);
      if (old === undefined) {
        const s = committed !== undefined ? committed[i] : this.db.getSync(key);
        if (s !== undefined) old = JSON.parse(s) as Rec;
      }
      const rec = nextRec(old, values[i] as string, ++this.revision);
      overlay.set(key, rec);
      ops.push({ type: 'put', key, value: JSON.stringify(rec) });
    }
    ops.push({ type: 'put', key: APPLIED_KEY, value: String(appliedIndex) });
    await this.db.batch(ops, { sync: false });
  }

  get(key: string): Rec | undefined | Promise<Rec | undefined> {
    if (this.asyncReads) return this.db.get(key).then((s) => (s === undefined ? undefined : (JSON.parse(s) as Rec)));
    const s = this.db.getSync(key);
    return s === undefined ? undefined : (JSON.parse(s) as Rec);
  }

  async range(start: string, limit: number): Promise<number> {
    const entries = await this.db.iterator({ gte: start, lt: PREFIX_END, limit }).all();
    for (const [, value] of entries) JSON.parse(value);
    return entries.length;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async reopen(): Promise<number> {
    await this.open();
    return Number((await this.db.get(APPLIED_KEY)) ?? 0);
  }
}

export async function makeEngine(name: EngineName, dir: string): Promise<Engine> {
  switch (name) {
    case 'keyspace':
      return new KeyspaceEngine();
    case 'lmdb':
      return new LmdbEngine(dir, 'nosync');
    case 'lmdb-overlap':
      return new LmdbEngine(dir, 'overlap');
    case 'lmdb-sync':
      return new LmdbEngine(dir, 'sync');
    case 'level':
    case 'level-async': {
      const e = new LevelEngine(dir, name === 'level-async');
      await e.open();
      return e;
    }
  }
}

// ---- measuring ----------------------------------------------------------------

export function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown } | undefined)?.then === 'function';
}

export const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
