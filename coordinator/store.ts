/**
 * The small store interface the 2PC layers use, and two implementations:
 *
 * - `BuiltinTxStore` wraps the built-in store's `StoreClient` (the first real
 *   implementation; an etcd adapter can follow with the same contract).
 * - `MemoryTxStore` is a single-process model for pure unit tests ONLY. It
 *   has the same semantics (revisions, CAS, ordered watch with history,
 *   leases), but no replication and no durability: never use it for anything
 *   that claims a transaction is safe.
 *
 * Both must pass the shared contract suite in test/coordinator/txstore.case.ts.
 *
 * Ambiguous outcomes: a write that fails with `unavailable` or
 * `request_timeout` may or may not have been applied. Every decisive 2PC
 * write is a CAS create-if-absent or a CAS on the exact previous value, so
 * the caller re-reads the key (or repeats the CAS and reads `previous`) and
 * acts on what the store holds, never on what it meant to write.
 */
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { StoreError, type StoreClient } from '../store/client/index.js';
import { snapshotFromKvs, txKey, type TxSnapshot } from './protocol.js';

/** Lease ids are strings here: etcd's are int64, beyond a JS number's safe range. */
export type LeaseId = string;

export interface TxKeyValue {
  readonly key: string;
  readonly value: string;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease?: LeaseId;
}

export interface CasResult {
  readonly succeeded: boolean;
  /** The value before the call, whether or not the CAS succeeded; null if the key was absent. */
  readonly previous: string | null;
  readonly revision: number;
}

export interface TxWatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value; null for a delete. */
  readonly value: string | null;
  readonly revision: number;
}

export interface WriteOptions {
  readonly lease?: LeaseId;
}

export interface RangeOptions {
  /** At most this many keys (the store caps it, 10,000 by default). */
  readonly limit?: number;
  /** Start strictly after this key (paging). */
  readonly after?: string;
}

export interface WatchOptions {
  /** First revision to deliver; default: the revision after the current one. */
  readonly fromRevision?: number;
  readonly signal?: AbortSignal;
}

/** A guard of `txn`: the key holds exactly `value`, or (value null) the key is absent. */
export interface TxGuard {
  readonly key: string;
  readonly value: string | null;
}

export type TxWrite =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: LeaseId }
  | { readonly type: 'delete'; readonly key: string };

export interface TxStore {
  get(key: string): Promise<TxKeyValue | null>;
  /** CAS create-if-absent: succeeds only if the key does not exist. First writer wins. */
  casCreate(key: string, value: string, opts?: WriteOptions): Promise<CasResult>;
  /** CAS on the value: succeeds only if the key exists and holds exactly `expected`. */
  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<CasResult>;
  put(key: string, value: string, opts?: WriteOptions): Promise<{ readonly revision: number; readonly previous: string | null }>;
  delete(key: string): Promise<{ readonly deleted: boolean; readonly previous: string | null; readonly revision: number }>;
  /** Keys starting with `prefix`, ordered by key, read at one revision. */
  range(prefix: string, opts?: RangeOptions): Promise<{ readonly kvs: readonly TxKeyValue[]; readonly more: boolean; readonly revision: number }>;
  /**
   * Changes under `prefix` in revision order, with no gaps and no duplicates,
   * from `fromRevision` on; throws TxStoreError `compacted` when that history
   * is gone (the caller re-reads with range and watches from its revision + 1).
   * Ends when `signal` aborts.
   */
  watch(prefix: string, opts?: WatchOptions): AsyncIterable<TxWatchEvent>;
  /**
   * Atomically: if every guard holds, apply every write at one revision
   * (etcd's Txn with value/version compares; writes touch distinct keys).
   * Used where two keys must change together: garbage collection swaps a
   * transaction's keys for its compacted record, and an idempotent begin
   * creates `tx/{id}` only if no compacted record of that id exists.
   */
  txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ readonly succeeded: boolean; readonly revision: number }>;
  grantLease(ttlMs: number): Promise<{ readonly id: LeaseId; readonly ttlMs: number }>;
  keepAlive(id: LeaseId): Promise<{ readonly id: LeaseId; readonly ttlMs: number }>;
  revokeLease(id: LeaseId): Promise<{ readonly revoked: boolean }>;
}

/** A store failure with the store's code (`compacted`, `unavailable`, `lease_not_found`, ...). */
export class TxStoreError extends AppError {
  constructor(code: string, status: number, message: string, details: Readonly<Record<string, unknown>> = {}, options?: { cause?: unknown }) {
    super(code, status, message, details, options);
    this.name = 'TxStoreError';
  }
}

/** Reads every key under `prefix`, page by page, each page at its own revision; returns the last revision. */
export async function rangeAll(store: TxStore, prefix: string, pageSize = 1_000): Promise<{ kvs: TxKeyValue[]; revision: number }> {
  const kvs: TxKeyValue[] = [];
  let after: string | undefined;
  let revision = 0;
  for (;;) {
    const page = await store.range(prefix, after === undefined ? { limit: pageSize } : { limit: pageSize, after });
    kvs.push(...page.kvs);
    revision = page.revision;
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || last === undefined) return { kvs, revision };
    after = last.key;
  }
}

/** A CAS create-if-absent's answer, or `guardFailed` when the guard no longer held (nothing written). */
export type GuardedCasResult = CasResult & { readonly guardFailed: boolean };

/** Attempts of `guardedCreate` when the reads after a failed txn cannot tell why it failed. */
const GUARDED_CREATE_ATTEMPTS = 3;

/**
 * CAS create-if-absent of `key`, only while `guard` holds (one txn). On
 * failure it reads why: the guard first (a failed guard wins, so a key
 * recreated after the guard vanished is never reported as `previous`), then
 * the key. Used for the coordinator's vote fills and decision, guarded by
 * the frozen `tx/{id}` record, so that nothing is written into a collected
 * transaction (docs/SIM2PC.md, `write-after-gc`).
 */
export async function guardedCreate(store: TxStore, key: string, value: string, guard: TxGuard): Promise<GuardedCasResult> {
  for (let attempt = 0; attempt < GUARDED_CREATE_ATTEMPTS; attempt++) {
    const r = await store.txn([guard, { key, value: null }], [{ type: 'put', key, value }]);
    if (r.succeeded) return { succeeded: true, previous: null, revision: r.revision, guardFailed: false };
    const g = await store.get(guard.key);
    if ((g?.value ?? null) !== guard.value) return { succeeded: false, previous: null, revision: r.revision, guardFailed: true };
    const kv = await store.get(key);
    if (kv !== null) return { succeeded: false, previous: kv.value, revision: r.revision, guardFailed: false };
    // Neither reason holds any more: try again.
  }
  throw new TxStoreError('unavailable', 503, `could not create ${key}: the store keeps changing under it`);
}

/**
 * CAS of `tx/{id}` on its exact value; with `vote`, one txn that also
 * creates that vote key if absent (an explicit abort's freeze, see
 * machine.ts `writeTx`). When that txn fails, a plain CAS: the record
 * changed (its `previous` says how), or the vote was there already.
 */
export async function casValueWithVote(
  store: TxStore,
  key: string,
  expected: string,
  value: string,
  vote: { readonly key: string; readonly value: string } | undefined,
): Promise<CasResult & { readonly voteCreated: boolean }> {
  if (vote !== undefined) {
    const guards = [
      { key, value: expected },
      { key: vote.key, value: null },
    ];
    const r = await store.txn(guards, [
      { type: 'put', key, value },
      { type: 'put', key: vote.key, value: vote.value },
    ]);
    if (r.succeeded) return { succeeded: true, previous: expected, revision: r.revision, voteCreated: true };
  }
  return { ...(await store.casValue(key, expected, value)), voteCreated: false };
}

/**
 * Everything the store holds about one transaction, read by ONE range over
 * `tx/{id}` so that it is a picture at one revision (keys of other
 * transactions that share the prefix are skipped by `snapshotFromKvs`).
 * A transaction has at most 2 * maxParticipants + 2 keys, so one page holds
 * it unless ids sharing the prefix crowd it out; then it pages.
 */
export async function readTxSnapshot(store: TxStore, id: string): Promise<TxSnapshot> {
  const { kvs, revision } = await rangeAll(store, txKey(id));
  return snapshotFromKvs(id, kvs, revision);
}

// ---------------------------------------------------------------------------
// The adapter over the built-in store's client

function mapError(e: unknown): unknown {
  if (e instanceof StoreError) return new TxStoreError(e.code, e.status, e.message, e.details, { cause: e });
  return e;
}

function leaseNumber(id: LeaseId): number {
  const n = Number(id);
  if (!Number.isSafeInteger(n) || n < 0) throw new TxStoreError('lease_not_found', 404, `no lease ${id}`);
  return n;
}

function toKv(kv: { key: string; value: string; version: number; createRevision: number; modRevision: number; lease?: number }): TxKeyValue {
  const base = { key: kv.key, value: kv.value, version: kv.version, createRevision: kv.createRevision, modRevision: kv.modRevision };
  return kv.lease === undefined || kv.lease === 0 ? base : { ...base, lease: String(kv.lease) };
}

export class BuiltinTxStore implements TxStore {
  constructor(readonly client: StoreClient) {}

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw mapError(e);
    }
  }

  private leaseOpts(opts: WriteOptions | undefined): { lease?: number } {
    return opts?.lease === undefined ? {} : { lease: leaseNumber(opts.lease) };
  }

  get(key: string): Promise<TxKeyValue | null> {
    return this.call(async () => {
      const kv = await this.client.get(key);
      return kv === null ? null : toKv(kv);
    });
  }

  casCreate(key: string, value: string, opts?: WriteOptions): Promise<CasResult> {
    return this.call(() => this.client.cas(key, null, value, this.leaseOpts(opts)));
  }

  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<CasResult> {
    return this.call(() => this.client.cas(key, expected, value, this.leaseOpts(opts)));
  }

  put(key: string, value: string, opts?: WriteOptions): Promise<{ revision: number; previous: string | null }> {
    return this.call(() => this.client.put(key, value, this.leaseOpts(opts)));
  }

  delete(key: string): Promise<{ deleted: boolean; previous: string | null; revision: number }> {
    return this.call(() => this.client.delete(key));
  }

  range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: TxKeyValue[]; more: boolean; revision: number }> {
    return this.call(async () => {
      const r = await this.client.range(prefix, opts);
      return { kvs: r.kvs.map(toKv), more: r.more, revision: r.revision };
    });
  }

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<TxWatchEvent> {
    const clientOpts: { fromRevision?: number; signal?: AbortSignal } = {};
    if (opts.fromRevision !== undefined) clientOpts.fromRevision = opts.fromRevision;
    if (opts.signal !== undefined) clientOpts.signal = opts.signal;
    try {
      for await (const e of this.client.watch({ prefix }, clientOpts)) {
        yield { type: e.type, key: e.key, value: e.type === 'delete' ? null : e.value, revision: e.revision };
      }
    } catch (e) {
      throw mapError(e);
    }
  }

  txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ succeeded: boolean; revision: number }> {
    return this.call(async () => {
      // etcd semantics: an absent key has version 0, and a value compare on an absent key fails.
      const compare = guards.map((g) =>
        g.value === null ? { key: g.key, target: 'version' as const, op: '=' as const, value: 0 } : { key: g.key, target: 'value' as const, op: '=' as const, value: g.value },
      );
      const success = writes.map((w) =>
        w.type === 'delete' ? { type: 'delete' as const, key: w.key } : { type: 'put' as const, key: w.key, value: w.value, ...this.leaseOpts(w.lease === undefined ? undefined : { lease: w.lease }) },
      );
      const r = await this.client.txn(compare, success, []);
      return { succeeded: r.succeeded, revision: r.revision };
    });
  }

  grantLease(ttlMs: number): Promise<{ id: LeaseId; ttlMs: number }> {
    return this.call(async () => {
      const r = await this.client.grantLease(ttlMs);
      return { id: String(r.id), ttlMs: r.ttlMs };
    });
  }

  keepAlive(id: LeaseId): Promise<{ id: LeaseId; ttlMs: number }> {
    return this.call(async () => {
      const r = await this.client.keepAlive(leaseNumber(id));
      return { id: String(r.id), ttlMs: r.ttlMs };
    });
  }

  revokeLease(id: LeaseId): Promise<{ revoked: boolean }> {
    return this.call(async () => ({ revoked: (await this.client.revokeLease(leaseNumber(id))).revoked }));
  }
}

// ---------------------------------------------------------------------------
// The in-memory model, for pure unit tests only

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
  lease: LeaseId | undefined;
}

interface MemoryLease {
  readonly ttlMs: number;
  expiresAtMs: number;
  readonly keys: Set<string>;
}

interface MemoryWatcher {
  readonly prefix: string;
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
  private readonly leases = new Map<LeaseId, MemoryLease>();
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

  async casCreate(key: string, value: string, opts: WriteOptions = {}): Promise<CasResult> {
    this.expire();
    const current = this.entries.get(key);
    if (current !== undefined) return { succeeded: false, previous: current.value, revision: this.revision };
    const revision = this.write(key, value, opts.lease);
    return { succeeded: true, previous: null, revision };
  }

  async casValue(key: string, expected: string, value: string, opts: WriteOptions = {}): Promise<CasResult> {
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
    const watcher: MemoryWatcher = { prefix, queue: this.history.filter((e) => e.revision >= from && e.key.startsWith(prefix)), wake: undefined };
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
    const holds = guards.every((g) => (this.entries.get(g.key)?.value ?? null) === g.value);
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

  async grantLease(ttlMs: number): Promise<{ id: LeaseId; ttlMs: number }> {
    this.expire();
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new TxStoreError('invalid_ttl', 400, 'ttlMs must be a positive integer');
    const id = String(this.nextLeaseId++);
    this.leases.set(id, { ttlMs, expiresAtMs: this.clock.monotonicMs() + ttlMs, keys: new Set() });
    return { id, ttlMs };
  }

  async keepAlive(id: LeaseId): Promise<{ id: LeaseId; ttlMs: number }> {
    this.expire();
    const lease = this.leases.get(id);
    if (lease === undefined) throw new TxStoreError('lease_not_found', 404, `no lease ${id}`);
    lease.expiresAtMs = this.clock.monotonicMs() + lease.ttlMs;
    return { id, ttlMs: lease.ttlMs };
  }

  async revokeLease(id: LeaseId): Promise<{ revoked: boolean }> {
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
  private write(key: string, value: string, lease: LeaseId | undefined, atRevision?: number): number {
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
      if (!event.key.startsWith(w.prefix)) continue;
      w.queue.push(event);
      w.wake?.();
    }
  }

  private dropLease(id: LeaseId, lease: MemoryLease): void {
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
