/**
 * The TxStore contract on an existing etcd cluster (v3 API over gRPC, through
 * the `etcd3` npm client): the same key layout and the same guarantees as the
 * built-in store, proven by the same contract suite (test/coordinator/
 * txstore.case.ts) and the same 2PC integration and crash tests.
 *
 * How each call maps onto etcd (docs/2PC.md, "The etcd mapping"):
 *
 * - casCreate: Txn(create_revision(key) == 0 ? put : range key). etcd's
 *   create revision is 0 exactly when the key is absent.
 * - casValue: Txn(value(key) == expected ? put : range key). etcd's value
 *   compare is false on an absent key, as the contract wants.
 * - txn guards: value == v, create_revision == 0 for absence, or
 *   create_revision == rev (a lock holder's fence, recipes/); every write
 *   lands at the txn's one revision, as on the built-in store.
 * - range: [max(prefix, after + "\0"), prefixEnd) with a limit; etcd's `more`.
 * - watch: one gRPC watch stream per call, resumed on any member from the
 *   revision after the last one delivered; etcd's compact_revision becomes
 *   TxStoreError `compacted` (410).
 * - leases: etcd lease ids are int64, beyond a JS number, so they stay
 *   decimal strings; TTLs are whole seconds (rounded up, and etcd raises a
 *   TTL below its minimum, 1.5 election timeouts).
 *
 * Ambiguous outcomes. etcd has no client sessions (the built-in store's
 * Request-Id), so a write that fails with `request_timeout` (504),
 * `outcome_unknown` or `unavailable` (503) may or may not have been applied,
 * and the etcd3 client retries such failures on a member picked at random (at
 * most 4 attempts): a CAS whose first attempt was applied then answers
 * `succeeded: false` with `previous` equal to the value it wrote, a delete
 * answers `deleted: false`, a txn `succeeded: false`. Every decisive 2PC
 * write is a CAS create-if-absent or a CAS on the exact previous value, so
 * callers act on what the store holds (`previous`, or a re-read), never on
 * what they meant to write; the coordinator and participants already do.
 */
import { keyPatternsRegExp } from '../../../store/kv/key-pattern.js';
import {
  CompareResult,
  CompareTarget,
  Etcd3,
  EtcdError,
  EtcdLeaseInvalidError,
  GRPCGenericError,
  type ICompare,
  type IKeyValue,
  type ILeaseKeepAliveResponse,
  type IRequestOp,
  type IResponseHeader,
} from 'etcd3';
import { mapEtcdError, requireLeader } from './grpc.js';
import type { OpenedStore, StoreSpec } from '../open.js';
import { isCreateRevisionGuard, TxStoreError, type TxCasResult, type TxLeaseId, type RangeOptions, type TxGuard, type TxKeyValue, type TxStore, type TxWatchEvent, type TxWrite, type WatchOptions, type WriteOptions } from '../txstore.js';
import { checkEtcdTls, etcdSecurityFromEnv, secureEndpoints, type EtcdSecurity } from './security.js';
import { closeDuplex, EtcdWatchStream, type EtcdWatchDuplex } from './watch.js';

export interface EtcdTxStoreOptions {
  /** Client URLs of the members, `http://host:2379`. */
  readonly endpoints: readonly string[];
  /** Deadline of one unary call attempt; etcd3 makes at most 4 (3 retries), each on a member picked at random. */
  readonly requestTimeoutMs?: number;
  /** No retry starts past this, from a call's start: the retries that ride out an election (as the built-in store's client). */
  readonly callDeadlineMs?: number;
  /** The same limits as the built-in store's defaults, so bad input gets the same 4xx on both. */
  readonly maxKeyBytes?: number;
  readonly maxValueBytes?: number;
  readonly maxRangeLimit?: number;
  readonly maxTxnOps?: number;
  /** Consecutive failed (re)connections after which a watch throws `unavailable`; the caller resumes it. */
  readonly watchMaxFailures?: number;
  /** Watch responses buffered before the stream is paused (gRPC flow control then slows etcd down). */
  readonly watchMaxQueuedResponses?: number;
  /** TLS (CA, client certificate) and an etcd user (security.ts); none: plain gRPC, no auth. */
  readonly security?: EtcdSecurity;
}

const DEFAULTS = {
  requestTimeoutMs: 5_000,
  callDeadlineMs: 15_000,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxRangeLimit: 10_000,
  maxTxnOps: 128, // etcd's own default --max-txn-ops
  watchMaxFailures: 20,
  watchMaxQueuedResponses: 256,
} as const;

const INT64_MAX = 2n ** 63n - 1n;
/** Largest gRPC message this client accepts: a full range page of big values, or a big txn's watch response. */
const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;
/** Backoff between retried calls and watch reconnections, capped. */
const BACKOFF_BASE_MS = 25;
const BACKOFF_MAX_MS = 1_000;
/**
 * Codes after which the same call can succeed soon: an election under way
 * (etcd answers "no leader" at once to our `hasleader` calls), a dropped
 * proposal, a lost connection, overload. A write behind a lost connection may
 * have been applied; retrying it is what the contract allows (see the top).
 */
const RETRY_CODES: ReadonlySet<string> = new Set(['no_leader', 'proposal_dropped', 'unavailable', 'busy', 'invalid_token']);

function revisionOf(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new TxStoreError('revision_out_of_range', 500, `etcd revision ${text} is beyond 2^53`);
  return n;
}

function headerRevision(header: IResponseHeader | null | undefined): number {
  return revisionOf(header?.revision ?? '0');
}

function toKv(kv: IKeyValue): TxKeyValue {
  const base = {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    version: revisionOf(kv.version),
    createRevision: revisionOf(kv.create_revision),
    modRevision: revisionOf(kv.mod_revision),
  };
  return kv.lease === '0' || kv.lease === '' ? base : { ...base, lease: kv.lease };
}

/** etcd's prefix end: the prefix with its last byte below 0xff incremented; "\0" (no end) if there is none. */
export function prefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i] as number;
    if (byte < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = byte + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** A lone surrogate has no UTF-8 encoding: Buffer.from would silently replace it, and CAS would compare other text. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** An etcd lease id: a positive int64, in decimal. */
function isLeaseId(id: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(id) && BigInt(id) <= INT64_MAX;
}

function backoffMs(failures: number): number {
  const capped = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures, 10));
  return capped / 2 + Math.random() * (capped / 2);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class EtcdTxStore implements TxStore {
  /** One client for the process: it keeps one HTTP/2 connection per member and multiplexes every call on it. */
  readonly client: Etcd3;
  private readonly opts: Required<Omit<EtcdTxStoreOptions, 'endpoints' | 'security'>>;
  private readonly security: EtcdSecurity;
  /** Aborted by close(), which ends every watch this store serves. */
  private readonly closing = new AbortController();

  constructor(options: EtcdTxStoreOptions) {
    if (options.endpoints.length === 0) throw new TxStoreError('invalid_store', 400, 'etcd needs at least one endpoint');
    const { security = {}, ...limits } = options;
    this.security = security;
    this.opts = { ...DEFAULTS, ...limits };
    for (const [name, v] of Object.entries(this.opts)) {
      if (name !== 'endpoints' && (!Number.isSafeInteger(v) || (v as number) < 1)) throw new TxStoreError('invalid_config', 400, `EtcdTxStore ${name} must be a positive integer, got ${String(v)}`);
    }
    const timeoutMs = this.opts.requestTimeoutMs;
    const t = security.tls;
    const pem = (text: string | undefined): Buffer | undefined => (text === undefined ? undefined : Buffer.from(text, 'utf8'));
    this.client = new Etcd3({
      hosts: secureEndpoints(options.endpoints, security),
      // No CA: grpc-js's default roots (rootCertificate is optional to createSsl, whatever the type says).
      ...(t === undefined ? {} : { credentials: { rootCertificate: pem(t.ca) as Buffer, ...(t.cert === undefined ? {} : { certChain: pem(t.cert) as Buffer, privateKey: pem(t.key) as Buffer }) } }),
      // etcd3 authenticates before the first call, sends the token on every call, and authenticates again on an invalid token.
      ...(security.auth === undefined ? {} : { auth: { username: security.auth.username, password: security.auth.password } }),
      grpcOptions: {
        'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
        // Finds a member that stopped answering (frozen, cut off) on a long-lived watch stream.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
      // Unary calls get a deadline (gRPC has none by default: a hung member would hang the call).
      defaultCallOptions: (ctx) => (ctx.isStream ? { interceptors: [requireLeader] } : { interceptors: [requireLeader], deadline: Date.now() + timeoutMs }),
    });
  }

  /** Ends every watch and closes the connections. */
  close(): void {
    this.closing.abort();
    this.client.close();
  }

  /**
   * Drops the cached etcd token so the next call authenticates again. etcd3
   * does this by itself for unary calls; a stream (watch, keepalive) refused
   * for an expired token needs it here. etcd3 keeps its authenticator private.
   */
  private reauthenticate(): void {
    (this.client as unknown as { pool?: { authenticator?: { invalidateMetadata?: () => void } } }).pool?.authenticator?.invalidateMetadata?.();
  }

  /**
   * Authenticates once now (with auth configured): a wrong user or password
   * is a clear 401 at open, not at the first write. etcd being unreachable
   * is not an error here (calls retry later).
   */
  async checkAuth(): Promise<void> {
    const auth = this.security.auth;
    if (auth === undefined) return;
    try {
      await this.client.auth.authenticate({ name: auth.username, password: auth.password });
    } catch (e) {
      const err = mapEtcdError(e);
      if (err instanceof TxStoreError && err.status >= 500) return;
      throw err instanceof TxStoreError ? new TxStoreError(err.code, err.status, `etcd refused user ${JSON.stringify(auth.username)}: ${err.message} (check RAFT2PC_ETCD_USER and RAFT2PC_ETCD_PASSWORD)`, err.details, { cause: e }) : err;
    }
  }

  /** Runs one etcd call, retried with backoff on RETRY_CODES until `callDeadlineMs`; throws TxStoreError. */
  private async call<T>(f: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.opts.callDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await f();
      } catch (e) {
        const err = mapEtcdError(e);
        if (err instanceof TxStoreError && err.code === 'invalid_token') this.reauthenticate();
        if (!(err instanceof TxStoreError) || !RETRY_CODES.has(err.code) || this.closing.signal.aborted) throw err;
        const waitMs = backoffMs(attempt);
        if (Date.now() + waitMs > deadline) throw err;
        await sleep(waitMs, this.closing.signal);
      }
    }
  }

  // --- input checks: the built-in store's limits and codes ----------------

  private key(key: string, field = 'key'): Buffer {
    if (key === '') throw new TxStoreError('invalid_key', 400, `${field} must not be empty`);
    return this.text(key, field, this.opts.maxKeyBytes, 'key_too_large', 'invalid_key');
  }

  private value(value: string, field = 'value'): Buffer {
    return this.text(value, field, this.opts.maxValueBytes, 'value_too_large', 'invalid_value');
  }

  private text(s: string, field: string, maxBytes: number, tooLarge: string, invalid: string): Buffer {
    if (LONE_SURROGATE.test(s)) throw new TxStoreError(invalid, 400, `${field} is not valid UTF-8 (lone surrogate)`);
    const b = Buffer.from(s, 'utf8');
    if (b.length > maxBytes) throw new TxStoreError(tooLarge, 413, `${field} is ${b.length} bytes, at most ${maxBytes}`, { bytes: b.length, maxBytes });
    return b;
  }

  private lease(id: TxLeaseId): string {
    if (!isLeaseId(id)) throw new TxStoreError('lease_not_found', 404, `no lease ${id}`);
    return id;
  }

  private putOp(key: string, value: string, lease: TxLeaseId | undefined, prevKv = false): IRequestOp {
    const put = { key: this.key(key), value: this.value(value), prev_kv: prevKv };
    return { request_put: lease === undefined ? put : { ...put, lease: this.lease(lease) } };
  }

  // --- TxStore --------------------------------------------------------------

  async get(key: string): Promise<TxKeyValue | null> {
    const k = this.key(key);
    return this.call(async () => {
      const r = await this.client.kv.range({ key: k });
      const kv = r.kvs[0];
      return kv === undefined ? null : toKv(kv);
    });
  }

  async casCreate(key: string, value: string, opts: WriteOptions = {}): Promise<TxCasResult> {
    const k = this.key(key);
    // create_revision is 0 exactly when the key is absent (etcd's "key does not exist" compare).
    return this.cas(k, { key: k, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }, this.putOp(key, value, opts.lease), null);
  }

  async casValue(key: string, expected: string, value: string, opts: WriteOptions = {}): Promise<TxCasResult> {
    const k = this.key(key);
    // A value compare on an absent key is false in etcd: CAS on value never creates.
    return this.cas(k, { key: k, target: CompareTarget.Value, result: CompareResult.Equal, value: this.value(expected, 'expected') }, this.putOp(key, value, opts.lease), expected);
  }

  /** One txn: the compare, the put on success, a read of the key on failure (so `previous` is at the same revision). */
  private cas(k: Buffer, compare: ICompare, put: IRequestOp, expected: string | null): Promise<TxCasResult> {
    return this.call(async () => {
      const r = await this.client.kv.txn({ compare: [compare], success: [put], failure: [{ request_range: { key: k } }] });
      const revision = headerRevision(r.header);
      if (r.succeeded) return { succeeded: true, previous: expected, revision };
      const current = r.responses[0]?.response_range?.kvs[0];
      return { succeeded: false, previous: current === undefined ? null : current.value.toString('utf8'), revision };
    });
  }

  async put(key: string, value: string, opts: WriteOptions = {}): Promise<{ revision: number; previous: string | null }> {
    const op = this.putOp(key, value, opts.lease, true).request_put ?? {};
    return this.call(async () => {
      const r = await this.client.kv.put(op);
      return { revision: headerRevision(r.header), previous: r.prev_kv == null ? null : r.prev_kv.value.toString('utf8') };
    });
  }

  async delete(key: string): Promise<{ deleted: boolean; previous: string | null; revision: number }> {
    const k = this.key(key);
    return this.call(async () => {
      const r = await this.client.kv.deleteRange({ key: k, prev_kv: true });
      const prev = r.prev_kvs[0];
      return { deleted: Number(r.deleted) > 0, previous: prev === undefined ? null : prev.value.toString('utf8'), revision: headerRevision(r.header) };
    });
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: TxKeyValue[]; more: boolean; revision: number }> {
    const limit = opts.limit ?? this.opts.maxRangeLimit;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.opts.maxRangeLimit) {
      throw new TxStoreError('limit_too_large', 400, `range limit is 1 to ${this.opts.maxRangeLimit}`, { maxRangeLimit: this.opts.maxRangeLimit });
    }
    const p = prefix === '' ? Buffer.from([0]) : this.key(prefix, 'prefix');
    const end = prefix === '' ? Buffer.from([0]) : prefixEnd(p);
    let start = p;
    if (opts.after !== undefined) {
      // The first key strictly after `after` is `after` + "\0" in byte order.
      const next = Buffer.concat([this.key(opts.after, 'after'), Buffer.from([0])]);
      if (Buffer.compare(next, start) > 0) start = next;
    }
    return this.call(async () => {
      const r = await this.client.kv.range({ key: start, range_end: end, limit });
      return { kvs: r.kvs.map(toKv), more: r.more, revision: headerRevision(r.header) };
    });
  }

  async txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ succeeded: boolean; revision: number }> {
    if (new Set(writes.map((w) => w.key)).size !== writes.length) throw new TxStoreError('duplicate_key_in_txn', 400, 'a txn writes each key at most once');
    if (guards.length > this.opts.maxTxnOps || writes.length > this.opts.maxTxnOps) {
      throw new TxStoreError('too_many_ops', 400, `a txn has at most ${this.opts.maxTxnOps} guards and ${this.opts.maxTxnOps} writes`);
    }
    const compare: ICompare[] = guards.map((g) => {
      const key = this.key(g.key);
      if (isCreateRevisionGuard(g)) {
        if (!Number.isSafeInteger(g.createRevision) || g.createRevision < 0) throw new TxStoreError('invalid_argument', 400, 'createRevision must be a non-negative integer');
        return { key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: String(g.createRevision) };
      }
      return g.value === null
        ? { key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }
        : { key, target: CompareTarget.Value, result: CompareResult.Equal, value: this.value(g.value) };
    });
    const success: IRequestOp[] = writes.map((w) => (w.type === 'put' ? this.putOp(w.key, w.value, w.lease) : { request_delete_range: { key: this.key(w.key) } }));
    return this.call(async () => {
      const r = await this.client.kv.txn({ compare, success, failure: [] });
      return { succeeded: r.succeeded, revision: headerRevision(r.header) };
    });
  }

  async grantLease(ttlMs: number): Promise<{ id: TxLeaseId; ttlMs: number }> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new TxStoreError('invalid_ttl', 400, 'ttlMs must be a positive integer');
    return this.call(async () => {
      // etcd counts TTLs in whole seconds: round up, never grant less than asked.
      const r = await this.client.leaseClient.leaseGrant({ TTL: Math.ceil(ttlMs / 1000), ID: 0 });
      if (r.error !== '') throw new EtcdError(r.error);
      return { id: r.ID, ttlMs: Number(r.TTL) * 1000 };
    });
  }

  /** One keepalive over a short-lived LeaseKeepAlive stream (the 2PC layers call it rarely). */
  async keepAlive(id: TxLeaseId): Promise<{ id: TxLeaseId; ttlMs: number }> {
    const leaseId = this.lease(id);
    return this.call(async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      let timer: NodeJS.Timeout | undefined;
      try {
        const answer = new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
          stream.on('data', resolve);
          stream.on('error', reject);
          stream.on('end', () => reject(new GRPCGenericError('etcd ended the keepalive stream without an answer')));
          timer = setTimeout(() => reject(new TxStoreError('request_timeout', 504, `etcd did not answer a keepalive within ${this.opts.requestTimeoutMs} ms`)), this.opts.requestTimeoutMs);
        });
        stream.write({ ID: leaseId });
        const r = await answer;
        // etcd answers TTL 0 (not an error) for a lease that does not exist or has expired.
        if (Number(r.TTL) <= 0) throw new TxStoreError('lease_not_found', 404, `no lease ${id}`);
        return { id, ttlMs: Number(r.TTL) * 1000 };
      } finally {
        clearTimeout(timer);
        closeDuplex(stream);
      }
    });
  }

  async revokeLease(id: TxLeaseId): Promise<{ revoked: boolean }> {
    if (!isLeaseId(id)) return { revoked: false };
    return this.call(async () => {
      try {
        await this.client.leaseClient.leaseRevoke({ ID: id });
        return { revoked: true };
      } catch (e) {
        if (e instanceof EtcdLeaseInvalidError) return { revoked: false };
        throw e;
      }
    });
  }

  /**
   * Changes under `prefix` from `fromRevision` on, in revision order. One gRPC
   * stream per call; after a failure it reconnects (on any member) from the
   * revision after the last one it delivered. A revision's events arrive in
   * one response, so a resume never splits a txn: no gaps, no duplicates.
   */
  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<TxWatchEvent> {
    const signal = opts.signal === undefined ? this.closing.signal : AbortSignal.any([opts.signal, this.closing.signal]);
    const key = prefix === '' ? Buffer.from([0]) : this.key(prefix, 'prefix');
    const rangeEnd = prefix === '' ? Buffer.from([0]) : prefixEnd(key);
    if (opts.fromRevision !== undefined && !Number.isSafeInteger(opts.fromRevision)) throw new TxStoreError('invalid_argument', 400, 'fromRevision must be an integer');
    let next = opts.fromRevision === undefined ? undefined : Math.max(1, opts.fromRevision);
    // etcd has no key filter beyond the range: `match` is applied here.
    const match = opts.match === undefined ? undefined : keyPatternsRegExp(opts.match);
    let failures = 0;
    while (!signal.aborted) {
      let stream: EtcdWatchStream | undefined;
      try {
        // Pin the start before connecting, so a reconnection never skips what happened meanwhile.
        next ??= (await this.currentRevision(key)) + 1;
        const duplex = (await this.client.watchClient.watch()) as EtcdWatchDuplex;
        stream = new EtcdWatchStream(duplex, this.opts.watchMaxQueuedResponses);
        stream.create({ key, range_end: rangeEnd, start_revision: next, progress_notify: false, prev_kv: false });
        for (;;) {
          const batch = await stream.nextEvents(signal);
          if (batch === null) return;
          for (const e of batch) {
            if (e.revision < next || (match !== undefined && !match.test(e.key))) continue;
            yield e;
          }
          const last = batch[batch.length - 1];
          if (last !== undefined && last.revision >= next) next = last.revision + 1;
        }
      } catch (e) {
        if (signal.aborted) return;
        const err = mapEtcdError(e);
        // An expired token: authenticate again and reconnect (counted, so a token refused forever ends the watch).
        if (err instanceof TxStoreError && err.code === 'invalid_token') this.reauthenticate();
        // Connection loss, no leader, a cancelled stream: reconnect. Bad input, compaction: the caller's problem.
        else if (!(err instanceof TxStoreError) || err.status < 500) throw err;
        // Failures count in a row: a stream that etcd accepted before it broke starts the count again.
        if (stream?.established === true) failures = 0;
        if (++failures >= this.opts.watchMaxFailures) throw err;
      } finally {
        stream?.close();
      }
      await sleep(backoffMs(failures), signal);
    }
  }

  /** The cluster's revision now: a linearizable read of one key (the header carries it); the watched one, which a restricted user may read. */
  private async currentRevision(key: Buffer): Promise<number> {
    const r = await this.client.kv.range({ key, keys_only: true, limit: 1 });
    return headerRevision(r.header);
  }
}

/** Opens the store with the TLS and auth of RAFT2PC_ETCD_* (security.ts); a wrong CA, certificate or password fails here. */
export async function openEtcdTxStore(spec: StoreSpec, env: NodeJS.ProcessEnv = process.env): Promise<OpenedStore> {
  const security = etcdSecurityFromEnv(env);
  if (security.tls !== undefined) await checkEtcdTls(secureEndpoints(spec.endpoints, security), security.tls);
  const store = new EtcdTxStore({ endpoints: spec.endpoints, security });
  try {
    await store.checkAuth();
  } catch (e) {
    store.close();
    throw e;
  }
  return {
    store,
    spec,
    close: async () => store.close(),
  };
}
