/**
 * `MemoryTxStore`: the TxStore contract as a single-process model, for pure
 * unit tests ONLY (txstore.ts has the contract; builtin.ts and etcd/ the real implementations).
 * It has the same semantics (revisions, CAS, ordered watch with history,
 * leases), but no replication and no durability: never use it for anything
 * that claims a transaction is safe. It passes the shared contract suite in
 * test/coordinator/txstore.case.ts.
 */
import { keyPatternsRegExp } from '../../store/kv/key-pattern.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import { isCreateRevisionGuard, TxStoreError, type TxCasResult, type TxLeaseId, type RangeOptions, type TxGuard, type TxKeyValue, type TxStore, type TxWatchEvent, type TxWrite, type WatchOptions, type WriteOptions } from './txstore.js';
export interface MemoryTxStoreOptions {
  /** Lease expiry reads `monotonicMs()`; pass a ManualClock to drive it. */
  readonly clock?: Clock;
  /** Most events kept for watchers to resume from; older starts get `compacted`. */
  readonly maxHistoryEvents?: number;
  /** Most keys one range returns. */
  readonly maxRangeLimit?: number;
}

interface Entry {
  value: string;
  version: number;
  createRevision: number;
  modRevision: number;
  lease: TxLeaseId | undefined;
}

interface MemoryLease {
  readonly ttlMs: number;
  expiresAtMs: number;
  readonly keys: Set<string>;
}

interface MemoryWatcher {
  readonly prefix: string;
  readonly match: RegExp | undefined;
  readonly queue: TxWatchEvent[];
  wake: (() => void) | undefined;
}

/**
 * NOT durable, NOT replicated: a model of the store's semantics in one
 * process, so the pure 2PC tests run without servers. Operations are applied
 * synchronously inside each call, so tests are deterministic.
 */
export class MemoryTxStore implements TxStore {
  private readonly clock: Clock;
  private readonly maxHistoryEvents: number;
  private readonly maxRangeLimit: number;
  private readonly entries = new Map<string, Entry>();
  private readonly leases = new Map<TxLeaseId, MemoryLease>();
  private readonly watchers = new Set<MemoryWatcher>();
  /** Invariant: revisions strictly increase along the array, and history is contiguous up to `revision`. */
  private readonly history: TxWatchEvent[] = [];
  private revision = 0;
  private nextLeaseId = 1;
  /** Counts successful writes, so tests can assert the cost of a transaction. */
  writes = 0;

  constructor(opts: MemoryTxStoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.maxHistoryEvents = opts.maxHistoryEvents ?? 10_000;
    this.maxRangeLimit = opts.maxRangeLimit ?? 10_000;
  }

  get currentRevision(): number {
    this.expire();
    return this.revision;
  }

  /** Every live key and value, for assertions. */
  dump(): Map<string, string> {
    this.expire();
    return new Map([...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, e]) => [k, e.value]));
  }

  async get(key: string): Promise<TxKeyValue | null> {
    this.expire();
    const e = this.entries.get(key);
    return e === undefined ? null : this.toKv(key, e);
  }

  async casCreate(key: string, value: string, opts: WriteOptions = {}): Promise<TxCasResult> {
    this.expire();
    const current = this.entries.get(key);
    if (current !== undefined) return { succeeded: false, previous: current.value, revision: this.revision };
    const revision = this.write(key, value, opts.lease);
    return { succeeded: true, previous: null, revision };
  }

  async casValue(key: string, expected: string, value: string, opts: WriteOptions = {}): Promise<TxCasResult> {
    this.expire();
    const current = this.entries.get(key);
    if (current === undefined || current.value !== expected) return { succeeded: false, previous: current?.value ?? null, revision: this.revision };
    const revision = this.write(key, value, opts.lease);
    return { succeeded: true, previous: expected, revision };
  }

  async put(key: string, value: string, opts: WriteOptions = {}): Promise<{ revision: number; previous: string | null }> {
    this.expire();
    const previous = this.entries.get(key)?.value ?? null;
    return { revision: this.write(key, value, opts.lease), previous };
  }

  async delete(key: string): Promise<{ deleted: boolean; previous: string | null; revision: number }> {
    this.expire();
    const current = this.entries.get(key);
    if (current === undefined) return { deleted: false, previous: null, revision: this.revision };
    this.remove(key, current);
    return { deleted: true, previous: current.value, revision: this.revision };
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: TxKeyValue[]; more: boolean; revision: number }> {
    this.expire();
    const limit = opts.limit ?? this.maxRangeLimit;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.maxRangeLimit) {
      throw new TxStoreError('limit_too_large', 400, `range limit is 1 to ${this.maxRangeLimit}`);
    }
    const keys = [...this.entries.keys()]
      .filter((k) => k.startsWith(prefix) && (opts.after === undefined || k > opts.after))
      .sort();
    const page = keys.slice(0, limit);
    return { kvs: page.map((k) => this.toKv(k, this.entries.get(k) as Entry)), more: keys.length > limit, revision: this.revision };
  }

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<TxWatchEvent> {
    this.expire();
    const from = opts.fromRevision ?? this.revision + 1;
    const oldest = this.history[0]?.revision ?? this.revision + 1;
    if (from < oldest && from <= this.revision) {
      throw new TxStoreError('compacted', 410, `revision ${from} is compacted; oldest kept is ${oldest}`, { oldestRevision: oldest });
    }
    // Replay and registration happen in one synchronous step: no write can fall between them.
    const match = opts.match === undefined ? undefined : keyPatternsRegExp(opts.match);
    const watcher: MemoryWatcher = { prefix, match, queue: this.history.filter((e) => e.revision >= from && e.key.startsWith(prefix) && (match?.test(e.key) ?? true)), wake: undefined };
    this.watchers.add(watcher);
    const onAbort = (): void => watcher.wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      while (opts.signal?.aborted !== true) {
        const next = watcher.queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (watcher.wake = resolve));
        watcher.wake = undefined;
      }
    } finally {
      this.watchers.delete(watcher);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ succeeded: boolean; revision: number }> {
    this.expire();
    const keys = new Set(writes.map((w) => w.key));
    if (keys.size !== writes.length) throw new TxStoreError('duplicate_key_in_txn', 400, 'a txn writes each key at most once');
    const holds = guards.every((g) => (isCreateRevisionGuard(g) ? (this.entries.get(g.key)?.createRevision ?? 0) === g.createRevision : (this.entries.get(g.key)?.value ?? null) === g.value));
    if (!holds) return { succeeded: false, revision: this.revision };
    for (const w of writes) if (w.type === 'put' && w.lease !== undefined && !this.leases.has(w.lease)) throw new TxStoreError('lease_not_found', 404, `no lease ${w.lease}`);
    const changes = writes.some((w) => w.type === 'put' || this.entries.has(w.key));
    if (!changes) return { succeeded: true, revision: this.revision };
    // One revision for the whole txn, as in the real store: every event carries it.
    const revision = ++this.revision;
    for (const w of writes) {
      if (w.type === 'put') this.write(w.key, w.value, w.lease, revision);
      else {
        const e = this.entries.get(w.key);
        if (e !== undefined) this.remove(w.key, e, revision);
      }
    }
    return { succeeded: true, revision };
  }

  async grantLease(ttlMs: number): Promise<{ id: TxLeaseId; ttlMs: number }> {
    this.expire();
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new TxStoreError('invalid_ttl', 400, 'ttlMs must be a positive integer');
    const id = String(this.nextLeaseId++);
    this.leases.set(id, { ttlMs, expiresAtMs: this.clock.monotonicMs() + ttlMs, keys: new Set() });
    return { id, ttlMs };
  }

  async keepAlive(id: TxLeaseId): Promise<{ id: TxLeaseId; ttlMs: number }> {
    this.expire();
    const lease = this.leases.get(id);
    if (lease === undefined) throw new TxStoreError('lease_not_found', 404, `no lease ${id}`);
    lease.expiresAtMs = this.clock.monotonicMs() + lease.ttlMs;
    return { id, ttlMs: lease.ttlMs };
  }

  async revokeLease(id: TxLeaseId): Promise<{ revoked: boolean }> {
    this.expire();
    const lease = this.leases.get(id);
    if (lease === undefined) return { revoked: false };
    this.dropLease(id, lease);
    return { revoked: true };
  }

  private toKv(key: string, e: Entry): TxKeyValue {
    const base = { key, value: e.value, version: e.version, createRevision: e.createRevision, modRevision: e.modRevision };
    return e.lease === undefined ? base : { ...base, lease: e.lease };
  }

  /** Writes at a new revision, or at `atRevision` (a txn's shared revision, already taken). */
  private write(key: string, value: string, lease: TxLeaseId | undefined, atRevision?: number): number {
    const holder = lease === undefined ? undefined : this.leases.get(lease);
    if (lease !== undefined && holder === undefined) throw new TxStoreError('lease_not_found', 404, `no lease ${lease}`);
    const revision = atRevision ?? ++this.revision;
    const old = this.entries.get(key);
    if (old?.lease !== undefined) this.leases.get(old.lease)?.keys.delete(key);
    this.entries.set(key, { value, version: (old?.version ?? 0) + 1, createRevision: old?.createRevision ?? revision, modRevision: revision, lease });
    holder?.keys.add(key);
    this.writes++;
    this.publish({ type: 'put', key, value, revision });
    return revision;
  }

  private remove(key: string, e: Entry, atRevision?: number): void {
    if (e.lease !== undefined) this.leases.get(e.lease)?.keys.delete(key);
    this.entries.delete(key);
    this.writes++;
    this.publish({ type: 'delete', key, value: null, revision: atRevision ?? ++this.revision });
  }

  private publish(event: TxWatchEvent): void {
    this.history.push(event);
    if (this.history.length > this.maxHistoryEvents) this.history.splice(0, this.history.length - this.maxHistoryEvents);
    for (const w of this.watchers) {
      if (!event.key.startsWith(w.prefix) || w.match?.test(event.key) === false) continue;
      w.queue.push(event);
      w.wake?.();
    }
  }

  private dropLease(id: TxLeaseId, lease: MemoryLease): void {
    this.leases.delete(id);
    for (const key of [...lease.keys].sort()) {
      const e = this.entries.get(key);
      if (e !== undefined) this.remove(key, e);
    }
  }

  /** Expires due leases before every operation, deleting their keys (each delete its own revision). */
  private expire(): void {
    const now = this.clock.monotonicMs();
    for (const [id, lease] of [...this.leases]) if (lease.expiresAtMs <= now) this.dropLease(id, lease);
  }
}
