/**
 * The small store interface the 2PC layers use (`TxStore`), and the helpers
 * every backend shares (paged ranges, guarded creates, snapshot reads). One
 * file per backend beside it, as Kysely keeps one folder per dialect:
 * builtin.ts (the built-in store's client), etcd/ (an existing etcd cluster),
 * memory.ts (a single-process model for unit tests). Every backend passes the
 * contract suite in test/coordinator/txstore.case.ts.
 *
 * Ambiguous outcomes: a write that fails with `unavailable` or
 * `request_timeout` may or may not have been applied. Every decisive 2PC
 * write is a CAS create-if-absent or a CAS on the exact previous value, so
 * the caller re-reads the key (or repeats the CAS and reads `previous`) and
 * acts on what the store holds, never on what it meant to write.
 */
import { AppError } from '../../lib/errors.js';
import type { Random } from '../../lib/random.js';
import { withRetries, type BackoffPolicy } from '../../lib/retry.js';
import type { Timers } from '../../lib/timers.js';
import { snapshotFromKvs, txKey, type TxSnapshot } from '../protocol/index.js';

/** Lease ids are strings here: etcd's are int64, beyond a JS number's safe range. */
export type TxLeaseId = string;

export interface TxKeyValue {
  readonly key: string;
  readonly value: string;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease?: TxLeaseId;
}

export interface TxCasResult {
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
  readonly lease?: TxLeaseId;
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
  /**
   * Only changes of keys matching one of these patterns, where `*` stands
   * for one whole path segment (`tx/*`, `tx/*\/decision`). The built-in
   * store filters on its side; other backends filter here.
   */
  readonly match?: readonly string[];
}

/** A guard of `txn` on the value: the key holds exactly `value`, or (value null) the key is absent. */
export interface TxValueGuard {
  readonly key: string;
  readonly value: string | null;
}

/**
 * A guard of `txn` on the create revision (etcd's `Compare(CreateRevision(key) == rev)`):
 * the key exists and was created at `createRevision` (0: the key is absent). A key
 * deleted and created again has a new create revision, so this is how a lock
 * holder's fenced write is refused once its key is gone (recipes/).
 */
export interface TxCreateRevisionGuard {
  readonly key: string;
  readonly createRevision: number;
}

export type TxGuard = TxValueGuard | TxCreateRevisionGuard;

export function isCreateRevisionGuard(g: TxGuard): g is TxCreateRevisionGuard {
  return 'createRevision' in g;
}

export type TxWrite =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: TxLeaseId }
  | { readonly type: 'delete'; readonly key: string };

export interface TxStore {
  get(key: string): Promise<TxKeyValue | null>;
  /** CAS create-if-absent: succeeds only if the key does not exist. First writer wins. */
  casCreate(key: string, value: string, opts?: WriteOptions): Promise<TxCasResult>;
  /** CAS on the value: succeeds only if the key exists and holds exactly `expected`. */
  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<TxCasResult>;
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
   * (etcd's Txn with value/create-revision compares; writes touch distinct keys).
   * Used where two keys must change together: garbage collection swaps a
   * transaction's keys for its compacted record, and an idempotent begin
   * creates `tx/{id}` only if no compacted record of that id exists.
   */
  txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ readonly succeeded: boolean; readonly revision: number }>;
  grantLease(ttlMs: number): Promise<{ readonly id: TxLeaseId; readonly ttlMs: number }>;
  keepAlive(id: TxLeaseId): Promise<{ readonly id: TxLeaseId; readonly ttlMs: number }>;
  revokeLease(id: TxLeaseId): Promise<{ readonly revoked: boolean }>;
}

/** One write of a batch: what `casCreate`/`casValue` (cas), `put`, `delete` and `txn` take. */
export type TxBatchWrite =
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string; readonly opts?: WriteOptions }
  | { readonly kind: 'put'; readonly key: string; readonly value: string; readonly opts?: WriteOptions }
  | { readonly kind: 'delete'; readonly key: string }
  | { readonly kind: 'txn'; readonly guards: readonly TxGuard[]; readonly writes: readonly TxWrite[] };

/** A batched write's answer: what the single method resolves with, or the error it would throw. */
export type TxBatchOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/**
 * A backend that takes many independent writes in one round (the built-in
 * store's POST /v1/batch): each applied as if alone, each with its own
 * outcome, in the order given.
 */
export interface TxBatchWriter {
  writeBatch(writes: readonly TxBatchWrite[]): Promise<TxBatchOutcome[]>;
}

/** A store failure with the store's code (`compacted`, `unavailable`, `lease_not_found`, ...). */
export class TxStoreError extends AppError {
  constructor(code: string, status: number, message: string, details: Readonly<Record<string, unknown>> = {}, options?: { cause?: unknown }) {
    super(code, status, message, details, options);
    this.name = 'TxStoreError';
  }
}

/** Store error codes after which the same request can succeed (elections, timeouts, overload). */
const RETRYABLE_STORE_CODES = new Set(['unavailable', 'no_leader', 'request_timeout', 'busy', 'proposal_dropped', 'outcome_unknown', 'internal']);

export function isRetryableStoreError(e: unknown): boolean {
  // The built-in client wraps network failures as `unavailable`; anything that is not a store
  // error (a corrupt value, a bug) will not get better by trying again.
  return e instanceof TxStoreError && (RETRYABLE_STORE_CODES.has(e.code) || e.status >= 500);
}

/** lib/retry.ts's `withRetries` for store calls: retried on the store errors that can pass. */
export function withStoreRetries<T>(
  f: () => Promise<T>,
  policy: BackoffPolicy,
  random: Random,
  timers: Pick<Timers, 'sleep'>,
  opts: { readonly signal?: AbortSignal; readonly onRetry?: (e: unknown, attempt: number) => void } = {},
): Promise<T> {
  return withRetries(f, policy, random, timers, { ...opts, isRetryable: isRetryableStoreError });
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
export type GuardedCasResult = TxCasResult & { readonly guardFailed: boolean };

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
export async function guardedCreate(store: TxStore, key: string, value: string, guard: TxValueGuard): Promise<GuardedCasResult> {
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
): Promise<TxCasResult & { readonly voteCreated: boolean }> {
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
