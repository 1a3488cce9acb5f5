/**
 * The typed client of the built-in store. It takes a list of endpoints, finds
 * the leader (writes go straight to it, saving the follower's forwarding hop),
 * fails over when a node is down or has no leader, and retries only what is
 * safe to retry: reads always; writes because every write carries a
 * `Request-Id` (clientId:sequence) that the store applies at most once, so a
 * retry after a timeout returns the original result instead of applying twice.
 */
import { randomUUID } from 'node:crypto';
import { HttpClientError, PIPELINED, type HttpRequester, type HttpResponse } from '../../lib/http-client.js';
import { defaultClientTls, hasClientTls, tlsHttpClient, type ClientTls } from '../../lib/tls.js';
import { systemRandom, type Random } from '../../lib/random.js';
import { keepAliveTimers, type Timers } from '../../lib/timers.js';
import type { KeyValue, KvEvent, TxnOp } from '../kv/index.js';
import { CredentialError, StoreCredentials } from './credentials.js';
import { nodeStream } from './node-stream.js';
import { parseSse, type SseMessage } from './sse.js';

export type { KeyValue, TxnOp } from '../kv/index.js';
export { SseParser, parseSse, type SseMessage } from './sse.js';

/** A watch stream's answer: an error status with its body text, or the open stream's messages. */
export type StreamResponse = { readonly status: number; readonly text: string } | { readonly status: 200; readonly messages: AsyncIterable<SseMessage> };

/**
 * Opens `GET url` as a server-sent-events stream. Rejecting, or a stream
 * that ends, counts as a dropped connection (the watch resumes elsewhere);
 * when `signal` aborts, the stream must end. The watch leaves a stream
 * early by returning its iterator: that must close the connection.
 */
export type OpenStream = (url: string, signal?: AbortSignal, headers?: Readonly<Record<string, string>>) => Promise<StreamResponse>;

export interface ClientOptions {
  readonly endpoints: readonly string[];
  /** One HTTP attempt's timeout. */
  readonly requestTimeoutMs?: number;
  /** A whole call's deadline, across retries and failovers. */
  readonly deadlineMs?: number;
  /** Attempts per call at most. */
  readonly maxAttempts?: number;
  /** Identifies this client's write session; random by default (from `random` when given, so a seeded run repeats it). */
  readonly clientId?: string;
  /** Carries every call but the watch stream; closed by `close()`. Default: a keep-alive HttpClient. */
  readonly http?: HttpRequester;
  /** Opens watch streams. Default: fetch, its body through parseSse; with TLS, node:https (node-stream.ts). */
  readonly openStream?: OpenStream;
  /** For https endpoints: the CA (PEM) to trust, and a client certificate and key to show. Default: the process's (lib/tls.ts). */
  readonly tls?: ClientTls;
  /** Deadlines and backoff waits. Default: the system's, referenced: a call waiting out a backoff keeps the process alive, as its socket would. */
  readonly timers?: Timers;
  /** Backoff jitter. Default: Math.random. */
  readonly random?: Random;
  /** With auth on (docs/SECURITY.md): a fixed token, or a user and password the client authenticates with (credentials.ts). */
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
}

/** A watched change; `prevValue` only when the watch asked for it. */
export type WatchEvent = Omit<KvEvent, 'prevValue'> & { readonly prevValue?: string | null };

/**
 * The default OpenStream: the stream stays on fetch, as it is long-lived, not
 * the per-request hot path, and fetch gives it abort by signal and a streamed body.
 */
export const fetchStream: OpenStream = async (url, signal, headers) => {
  const res = await fetch(url, { ...(signal ? { signal } : {}), ...(headers ? { headers } : {}) });
  if (res.status >= 400) return { status: res.status, text: await res.text() };
  if (!res.body) throw new StoreError('unavailable', 503, 'watch stream without a body');
  return { status: 200, messages: parseSse(res.body) };
};

export class StoreError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/**
 * What may be pipelined and sent again after a broken connection: a read, a
 * write carrying a Request-Id, a batch (each item carries one), a lease
 * keepalive (twice only renews twice). Not a call the store may apply twice
 * (membership, leader transfer, auth changes).
 */
function resendable(method: string, path: string, requestId: string | undefined): boolean {
  return method === 'GET' || requestId !== undefined || path === '/v1/batch' || /^\/v1\/leases\/\d+\/keepalive$/.test(path);
}

/** Codes after which another attempt (maybe on another node) can succeed. */
const RETRYABLE = new Set(['no_leader', 'busy', 'request_timeout', 'proposal_dropped', 'outcome_unknown', 'unavailable']);

/** A txn guard as the wire takes it (the store checks that `value` fits `target`: store/kv Compare). */
export interface TxnCompare {
  readonly key: string;
  readonly target: 'value' | 'version' | 'createRevision' | 'modRevision';
  readonly op: '=' | '!=' | '<' | '>';
  readonly value: string | number;
}

/** One write of a batch (POST /v1/batch), as the single routes take it. */
export type BatchWrite =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: number }
  | { readonly type: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string; readonly lease?: number }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'txn'; readonly compare: readonly TxnCompare[]; readonly success: readonly TxnOp[]; readonly failure?: readonly TxnOp[] };

/** A batched write's answer: the single route's fields, or that write's own error. */
export type BatchResult = { readonly ok: true; readonly value: Record<string, unknown> } | { readonly ok: false; readonly error: StoreError };

/** Writes per batch request: the store's MAX_BATCH_ITEMS (store/api/batch.ts). */
const MAX_BATCH_WRITES = 256;

/** Default per-attempt timeout, whole-call deadline and attempt cap. */
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_DEADLINE_MS = 15_000;
const DEFAULT_MAX_ATTEMPTS = 20;
/** Call retries back off from this, doubling, up to the cap, with jitter in [50%, 100%]. */
const CALL_BACKOFF_BASE_MS = 20;
const CALL_BACKOFF_CAP_MS = 500;
/** Watch reconnects back off from this, doubling per failure in a row, up to the cap. */
const WATCH_BACKOFF_BASE_MS = 20;
const WATCH_BACKOFF_CAP_MS = 1_000;
/** Doublings at most, so 2 ** n stays small. */
const CALL_BACKOFF_MAX_DOUBLINGS = 5;
const WATCH_BACKOFF_MAX_DOUBLINGS = 6;

/** A client id of 128 bits from the injected Random (32 hex digits), so a seeded run repeats it. */
function randomClientId(random: Random): string {
  let id = '';
  for (let i = 0; i < 4; i++) id += random.int(2 ** 32).toString(16).padStart(8, '0');
  return id;
}

export class StoreClient {
  readonly endpoints: readonly string[];
  readonly clientId: string;
  private readonly requestTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxAttempts: number;
  /**
   * Write lanes: the store keeps one session per client id and expects one
   * write in flight per session (Raft dissertation §6.3), so concurrent writes
   * each take a free lane, a sub-session with its own increasing sequence.
   */
  private readonly freeLanes: number[] = [];
  private readonly laneSeq: number[] = [];
  /** The endpoint that last answered well; tried first. */
  private preferred = 0;
  private leaderUrl: string | undefined;
  private discovering = false;
  /** Every call but the watch stream goes through this (by default a keep-alive pool: lib/http-client.ts says why not fetch). */
  private readonly http: HttpRequester;
  private readonly openStream: OpenStream;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly credentials: StoreCredentials;

  constructor(opts: ClientOptions) {
    if (opts.endpoints.length === 0) throw new Error('at least one endpoint is required');
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    for (const e of this.endpoints) if (!/^https?:\/\//.test(e)) throw new Error(`endpoint ${e}: want http://host:port or https://host:port`);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.clientId = opts.clientId ?? (opts.random ? randomClientId(opts.random) : randomUUID());
    const tls = opts.tls ?? defaultClientTls();
    this.http = opts.http ?? tlsHttpClient({ requestTimeoutMs: this.requestTimeoutMs, ...PIPELINED }, tls);
    this.openStream = opts.openStream ?? (hasClientTls(tls) ? nodeStream(tls) : fetchStream);
    this.timers = opts.timers ?? keepAliveTimers;
    this.random = opts.random ?? systemRandom;
    this.credentials = new StoreCredentials(opts, this.http, this.requestTimeoutMs);
  }

  /**
   * Closes the pooled connections; calls after it fail with `client_closed`
   * (watches, on their own connections, end by their signal). Optional: idle
   * pooled sockets do not keep the process alive.
   */
  close(): void {
    this.http.close();
  }

  async get(key: string, opts: { serializable?: boolean } = {}): Promise<KeyValue | null> {
    try {
      return await this.call<KeyValue>('GET', `/v1/kv/${encodeURIComponent(key)}${opts.serializable ? '?consistency=serializable' : ''}`);
    } catch (e) {
      if (e instanceof StoreError && e.code === 'key_not_found') return null;
      throw e;
    }
  }

  put(key: string, value: string, opts: { lease?: number } = {}): Promise<{ revision: number; previous: string | null }> {
    return this.write('PUT', `/v1/kv/${encodeURIComponent(key)}`, { value, ...opts });
  }

  /** Compare-and-swap; `expected: null` means the key must be absent. */
  cas(key: string, expected: string | null, value: string, opts: { lease?: number } = {}): Promise<{ succeeded: boolean; previous: string | null; revision: number }> {
    return this.write('POST', `/v1/kv/${encodeURIComponent(key)}/cas`, { expected, value, ...opts });
  }

  delete(key: string): Promise<{ deleted: boolean; previous: string | null; revision: number }> {
    return this.write('DELETE', `/v1/kv/${encodeURIComponent(key)}`, undefined);
  }

  range(prefix: string, opts: { limit?: number; after?: string; serializable?: boolean } = {}): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }> {
    const q = new URLSearchParams({ prefix });
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    if (opts.after !== undefined) q.set('after', opts.after);
    if (opts.serializable) q.set('consistency', 'serializable');
    return this.call('GET', `/v1/kv?${q.toString()}`);
  }

  txn(compare: readonly TxnCompare[], success: readonly TxnOp[], failure: readonly TxnOp[] = []): Promise<{ succeeded: boolean; revision: number; results: unknown[] }> {
    return this.write('POST', '/v1/txn', { compare, success, failure });
  }

  grantLease(ttlMs: number): Promise<{ id: number; ttlMs: number }> {
    return this.write('POST', '/v1/leases', { ttlMs });
  }

  keepAlive(id: number): Promise<{ id: number; ttlMs: number }> {
    return this.call('POST', `/v1/leases/${id}/keepalive`, undefined, undefined, true);
  }

  revokeLease(id: number): Promise<{ revoked: boolean; id: number }> {
    return this.write('DELETE', `/v1/leases/${id}`, undefined);
  }

  members(): Promise<{ members: { id: string; clientUrl: string; peerAddress: string; role: string; leader: boolean }[] }> {
    return this.call('GET', '/v1/members');
  }

  /** Adds a member, as a learner unless `voter` (dissertation §4.2.1: catch up as a learner first). */
  addMember(member: { id: string; clientUrl: string; peerAddress: string }, opts: { voter?: boolean } = {}): Promise<{ added: unknown; learner: boolean }> {
    return this.call('POST', '/v1/members', { ...member, learner: opts.voter !== true }, undefined, true);
  }

  promoteMember(id: string): Promise<{ promoted: string }> {
    return this.call('POST', `/v1/members/${encodeURIComponent(id)}/promote`, undefined, undefined, true);
  }

  removeMember(id: string): Promise<{ removed: string }> {
    return this.call('DELETE', `/v1/members/${encodeURIComponent(id)}`, undefined, undefined, true);
  }

  transferLeader(to: string): Promise<{ leaderId: string }> {
    return this.call('POST', '/v1/leader/transfer', { to }, undefined, true);
  }

  /**
   * Watch a key or a prefix as an async iterator of events, in revision order.
   * It resumes on its own after a dropped connection or a node failure, on
   * any endpoint, from the revision after the last one it delivered: no gaps,
   * no duplicates. Ends when `signal` aborts; throws StoreError `compacted`
   * when the store no longer has the history to resume from. `match`: only
   * keys matching one of these patterns (`*` is one path segment).
   */
  async *watch(target: { prefix: string } | { key: string }, opts: { fromRevision?: number; signal?: AbortSignal; prevValue?: boolean; match?: readonly string[] } = {}): AsyncGenerator<WatchEvent> {
    let next = opts.fromRevision;
    let failures = 0;
    for (let attempt = 0; !opts.signal?.aborted; attempt++) {
      const base = this.endpoints[(this.preferred + attempt) % this.endpoints.length] as string;
      const q = new URLSearchParams('prefix' in target ? { prefix: target.prefix } : { key: target.key });
      if (next !== undefined) q.set('fromRevision', String(next));
      if (opts.prevValue) q.set('prevValue', 'true');
      for (const m of opts.match ?? []) q.append('match', m);
      try {
        // Pin the start before the first connection, so a resume never skips what happened meanwhile.
        if (next === undefined) {
          next = (await this.currentRevision(base)) + 1;
          q.set('fromRevision', String(next));
        }
        const authorization = await this.authorization(base);
        const res = await this.openStream(`${base}/v1/watch?${q.toString()}`, opts.signal, authorization === undefined ? undefined : { authorization });
        if (!('messages' in res)) {
          const err = (JSON.parse(res.text) as { error?: Record<string, unknown> }).error ?? {};
          throw new StoreError(String(err['code'] ?? 'unknown'), res.status, String(err['message'] ?? ''), err);
        }
        for await (const ev of res.messages) {
          failures = 0;
          if (ev.event === 'cancelled') break;
          // Revisions with nothing that matched (`match`): resume after them.
          if (ev.event === 'progress' && ev.id !== undefined) next = Math.max(next, Number(ev.id) + 1);
          if (ev.event !== 'put' && ev.event !== 'delete') continue;
          const data = JSON.parse(ev.data) as WatchEvent;
          if (data.revision < next) continue;
          yield data;
          if (ev.id !== undefined) next = Number(ev.id) + 1;
        }
      } catch (e) {
        if (opts.signal?.aborted) return;
        // An expired token: the next attempt authenticates again (a wrong password then fails for good).
        const renewed = e instanceof StoreError && e.status === 401 && this.credentials.renew(e.code);
        if (e instanceof StoreError && !RETRYABLE.has(e.code) && !renewed) throw e;
        failures++;
      }
      await this.timers.sleep(Math.min(WATCH_BACKOFF_CAP_MS, WATCH_BACKOFF_BASE_MS * 2 ** Math.min(failures, WATCH_BACKOFF_MAX_DOUBLINGS)), opts.signal);
    }
  }

  private async currentRevision(base: string): Promise<number> {
    const st = await this.once<{ revision: number }>('GET', base, '/v1/status', undefined, undefined);
    return st.revision;
  }

  status(endpoint?: string): Promise<Record<string, unknown>> {
    if (endpoint) return this.once('GET', endpoint.replace(/\/+$/, ''), '/v1/status', undefined, undefined);
    return this.call('GET', '/v1/status');
  }

  /** A write gets one Request-Id for all its attempts: the store applies it at most once. */
  private async write<T>(method: string, path: string, body: unknown): Promise<T> {
    const [requestId] = this.takeLanes(1);
    try {
      return await this.call<T>(method, path, body, requestId!.id, true);
    } finally {
      this.freeLanes.push(requestId!.lane);
    }
  }

  /** Request-Ids on `n` free lanes (one write in flight per lane); the caller gives the lanes back. */
  private takeLanes(n: number): { lane: number; id: string }[] {
    // Learn the leader in the background on first use, so later writes skip the forwarding hop.
    if (this.leaderUrl === undefined && !this.discovering) void this.discoverLeader();
    return Array.from({ length: n }, () => {
      const lane = this.freeLanes.pop() ?? this.laneSeq.push(0) - 1;
      const seq = (this.laneSeq[lane] ?? 0) + 1;
      this.laneSeq[lane] = seq;
      return { lane, id: `${this.clientId}.${lane}:${seq}` };
    });
  }

  /**
   * Independent writes in one request (POST /v1/batch): each its own Raft
   * entry with its own result and its own Request-Id. A write whose answer
   * is a retryable error (no leader, timeout) is sent again, with the same
   * id, with the others still pending; the rest settle as they come.
   * More than MAX_BATCH_WRITES go as several requests.
   */
  async batch(writes: readonly BatchWrite[]): Promise<BatchResult[]> {
    if (writes.length > MAX_BATCH_WRITES) {
      const parts = await Promise.all(Array.from({ length: Math.ceil(writes.length / MAX_BATCH_WRITES) }, (_, i) => this.batch(writes.slice(i * MAX_BATCH_WRITES, (i + 1) * MAX_BATCH_WRITES))));
      return parts.flat();
    }
    const ids = this.takeLanes(writes.length);
    const results: (BatchResult | undefined)[] = new Array(writes.length);
    let pending = writes.map((_, i) => i);
    try {
      await this.retrying(async (base) => {
        const items = pending.map((i) => ({ ...writes[i], requestId: ids[i]!.id }));
        const answer = await this.once<{ results: Record<string, unknown>[] }>('POST', base, '/v1/batch', { items }, undefined);
        let retry: StoreError | undefined;
        const still: number[] = [];
        pending.forEach((i, k) => {
          const err = (answer.results[k] ?? { error: { code: 'unavailable', status: 503, message: 'no answer for this item' } })['error'] as Record<string, unknown> | undefined;
          if (err === undefined) return void (results[i] = { ok: true, value: answer.results[k]! });
          const error = new StoreError(String(err['code']), Number(err['status']), String(err['message'] ?? ''), err);
          if (!RETRYABLE.has(error.code)) return void (results[i] = { ok: false, error });
          still.push(i);
          retry = error;
        });
        pending = still;
        if (retry !== undefined) throw retry;
      }, true);
    } catch (e) {
      // The batch as a whole failed (refused, or no endpoint answered): the caller sees that error.
      if (pending.length === writes.length) throw e;
      const error = e instanceof StoreError ? e : new StoreError('unavailable', 503, String(e));
      for (const i of pending) results[i] = { ok: false, error };
    } finally {
      for (const { lane } of ids) this.freeLanes.push(lane);
    }
    return results as BatchResult[];
  }

  private call<T>(method: string, path: string, body?: unknown, requestId?: string, preferLeader = false): Promise<T> {
    return this.retrying((base) => this.once<T>(method, base, path, body, requestId), preferLeader);
  }

  /** Runs `attempt` on an endpoint until it succeeds, fails for good, or the attempts or the deadline run out. */
  private async retrying<T>(attempt: (base: string) => Promise<T>, preferLeader: boolean): Promise<T> {
    const deadline = this.timers.monotonicMs() + this.deadlineMs;
    let lastError: unknown;
    for (let n = 0; n < this.maxAttempts && this.timers.monotonicMs() < deadline; n++) {
      const base = preferLeader && this.leaderUrl ? this.leaderUrl : (this.endpoints[(this.preferred + n) % this.endpoints.length] as string);
      try {
        const result = await attempt(base);
        this.preferred = Math.max(0, this.endpoints.indexOf(base));
        return result;
      } catch (e) {
        lastError = e;
        if (e instanceof StoreError && !RETRYABLE.has(e.code)) throw e;
        this.leaderUrl = undefined;
        if (preferLeader) void this.discoverLeader();
        // Exponential backoff with jitter, capped, within the deadline.
        const backoff = Math.min(CALL_BACKOFF_CAP_MS, CALL_BACKOFF_BASE_MS * 2 ** Math.min(n, CALL_BACKOFF_MAX_DOUBLINGS)) * (0.5 + this.random.float() / 2);
        await this.timers.sleep(Math.max(0, Math.min(backoff, deadline - this.timers.monotonicMs())));
      }
    }
    if (lastError instanceof StoreError) throw lastError;
    throw new StoreError('unavailable', 503, `no endpoint answered within ${this.deadlineMs} ms: ${String(lastError)}`);
  }

  /** The Authorization header for `base` (authenticating there first when the client has a user and password). */
  private async authorization(base: string): Promise<string | undefined> {
    try {
      return await this.credentials.header(base);
    } catch (e) {
      if (e instanceof CredentialError) throw new StoreError(e.code, e.status, e.message);
      throw new StoreError('unavailable', 503, `${base} did not answer authenticate: ${String(e)}`);
    }
  }

  /**
   * An auth management call (POST /v1/auth/users and the like: store/api/auth.ts), on the leader when
   * known. Not retried after a failed attempt that may have applied, except by the store's own checks.
   */
  authRequest<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.call<T>(method, path, body, undefined, true);
  }

  private async once<T>(method: string, base: string, path: string, body: unknown, requestId: string | undefined, renewed = false): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (requestId) headers['request-id'] = requestId;
    const authorization = await this.authorization(base);
    if (authorization !== undefined) headers['authorization'] = authorization;
    let res: HttpResponse;
    try {
      res = await this.http.request({ method, url: base + path, headers, timeoutMs: this.requestTimeoutMs, resendable: resendable(method, path, requestId), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (e) {
      // After close() no retry can succeed: fail now rather than at the deadline.
      if (e instanceof HttpClientError && e.code === 'closed') throw new StoreError('client_closed', 503, 'the store client is closed');
      // Connection refused or timed out: for a write the outcome is unknown, and
      // the retry with the same Request-Id resolves it.
      throw new StoreError('unavailable', 503, `${base} did not answer: ${String(e)}`);
    }
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(res.text) as Record<string, unknown>;
    } catch {
      throw new StoreError('unavailable', 503, `${base} sent a non-JSON answer (${res.status})`);
    }
    if (res.status >= 400) {
      const err = (payload['error'] ?? {}) as Record<string, unknown>;
      // Expired or revoked: authenticate again, once, and resend (the same Request-Id keeps a write at most once).
      if (res.status === 401 && !renewed && this.credentials.renew(String(err['code']))) return this.once(method, base, path, body, requestId, true);
      throw new StoreError(String(err['code'] ?? 'unknown'), res.status, String(err['message'] ?? ''), err);
    }
    return payload as T;
  }

  /** Asks the endpoints who leads, so writes skip the forwarding hop. */
  private async discoverLeader(): Promise<void> {
    if (this.discovering) return;
    this.discovering = true;
    try {
      await this.findLeader();
    } finally {
      this.discovering = false;
    }
  }

  private async findLeader(): Promise<void> {
    for (const e of this.endpoints) {
      try {
        const st = await this.once<{ leaderId: string | null; members: { id: string; clientUrl: string }[] }>('GET', e, '/v1/status', undefined, undefined);
        const leader = st.members.find((m) => m.id === st.leaderId);
        if (leader && this.endpoints.includes(leader.clientUrl)) {
          this.leaderUrl = leader.clientUrl;
          return;
        }
      } catch {
        // try the next one
      }
    }
  }
}
