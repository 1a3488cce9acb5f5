/**
 * `CoordinatorClient`: the coordinator's REST API (docs/API.md, "Coordinator
 * contract") over a list of coordinators. A call goes first to the
 * coordinator that last gave a real answer; if it does not answer (killed:
 * refused at once; paused: the attempt times out) or answers 502/503/504,
 * the same call goes to the next one. That is safe because coordinators keep
 * no state of their own (any of them finishes a transaction another began)
 * and every call is idempotent: begin always carries an Idempotency-Key
 * (the caller's, or one made here and kept across that call's retries),
 * and enlist, commit, abort, get and list repeat to the same answer.
 *
 * `run` (transaction.ts) is the whole transaction: begin, work, commit, and
 * the traps between them.
 */
import { randomUUID } from 'node:crypto';
import type { HttpRequester } from '../lib/http-client.js';
import { tlsHttpClient, type ClientTls } from '../lib/tls.js';
import { systemRandom, type Random } from '../lib/random.js';
import { systemTimers, type Timers } from '../lib/timers.js';
import { checkMs, CoordinatorError, invalidConfig as invalid, isCoordinatorAnswerCode, isWorkAnswerCode, WorkError } from './errors.js';
import { withFailover, type FailoverResult } from './failover.js';
import { runTransaction, type RunOutcome, type RunRequest } from './transaction.js';
import { codeOfBareStatus, errorBody, worthRetrying, type Attempt, type JsonCall } from './transport.js';
import type { BeginAnswer, BeginRequest, EnlistAnswer, GetAnswer, JsonValue, ListAnswer, ListFilter, OutcomeAnswer, Participant, TxView } from './types.js';

export interface CoordinatorClientOptions {
  /** Base URLs of the coordinators (`http://host:port`); at least one, at most 64. */
  readonly coordinators: readonly string[];
  /** Timeout of one attempt at one server (default 5,000 ms). */
  readonly callTimeoutMs?: number;
  /** How long a call keeps retrying when it is given no deadline (default 15,000 ms). */
  readonly retryWindowMs?: number;
  /** Requests go through this (default: a keep-alive HttpClient owned, and closed, by this client). */
  readonly http?: HttpRequester;
  /** For https coordinators: the CA (PEM) to trust, and a client certificate and key to show; default: the process's (lib/tls.ts). Ignored with `http`. */
  readonly tls?: ClientTls;
  /** Every wait and every reading of the time (default: the system's). */
  readonly timers?: Timers;
  /** Backoff jitter (default: Math.random). */
  readonly random?: Random;
  /**
   * A bearer token (`raft2pc token create`), sent as `Authorization: Bearer`
   * to the coordinators and to participants' `/2pc/work`, for services with
   * a token file. Default: none.
   */
  readonly token?: string;
}

export interface CallOptions {
  /** Timeout of each attempt at one server (default: the client's `callTimeoutMs`). */
  readonly timeoutMs?: number;
  /** Epoch ms (the client's clock) after which no new attempt starts (default: now + `retryWindowMs`). */
  readonly deadline?: number;
  /** Attempts in all, across servers (default 64, the most). */
  readonly attempts?: number;
  /** This call's bearer token, instead of the client's `token`. */
  readonly token?: string;
}

export interface BeginOptions extends CallOptions {
  /** 1 to 255 visible ASCII characters; the same key names the same transaction on every coordinator. Default: a random UUID. */
  readonly idempotencyKey?: string;
}

export interface AbortOptions extends CallOptions {
  /** At most 1,024 characters; shown as the outcome's reason. */
  readonly reason?: string;
}

export const CLIENT_DEFAULTS = {
  callTimeoutMs: 5_000,
  retryWindowMs: 15_000,
  maxAttemptsPerCall: 64,
  maxCoordinators: 64,
  backoffBaseMs: 100,
  backoffMaxMs: 1_000,
  /** Work retried at one participant: a down participant means an abort soon, not at the deadline. */
  workAttempts: 3,
} as const;

export class CoordinatorClient {
  /** The coordinators' base URLs, trailing slashes trimmed. */
  readonly coordinators: readonly string[];
  readonly callTimeoutMs: number;
  readonly retryWindowMs: number;
  readonly timers: Timers;
  readonly random: Random;
  private readonly http: HttpRequester;
  private readonly ownsHttp: boolean;
  private readonly token: string | undefined;
  /** Index of the coordinator that gave the last real answer: calls start there. */
  private preferredIndex = 0;

  constructor(opts: CoordinatorClientOptions) {
    this.coordinators = checkUrls(opts.coordinators);
    this.callTimeoutMs = checkMs('callTimeoutMs', opts.callTimeoutMs ?? CLIENT_DEFAULTS.callTimeoutMs, 1);
    this.retryWindowMs = checkMs('retryWindowMs', opts.retryWindowMs ?? CLIENT_DEFAULTS.retryWindowMs, 0);
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? systemRandom;
    this.ownsHttp = opts.http === undefined;
    this.token = opts.token === undefined ? undefined : checkToken(opts.token);
    this.http = opts.http ?? tlsHttpClient({ requestTimeoutMs: this.callTimeoutMs }, opts.tls);
  }

  /** The coordinator the next call goes to first. */
  get preferred(): string {
    return this.coordinators[this.preferredIndex] as string;
  }

  /**
   * Begins a transaction (201). Always under an Idempotency-Key, so that
   * retrying a begin whose answer was lost cannot make a second transaction:
   * the caller's key, or a random one for this call. A replayed key answers
   * the transaction as it is now (`state` may be past `active`).
   */
  async begin(req: BeginRequest = {}, opts: BeginOptions = {}): Promise<BeginAnswer> {
    const headers = { 'idempotency-key': opts.idempotencyKey ?? randomUUID() };
    const a = await this.call({ method: 'POST', path: '/v1/transactions', body: req, headers }, opts);
    const b = this.expect(a, 201) as Omit<BeginAnswer, 'coordinator'>;
    this.check(a, typeof b.id === 'string' && typeof b.state === 'string' && typeof b.deadline === 'number');
    return { id: b.id, state: b.state, deadline: b.deadline, coordinator: a.server };
  }

  /** Adds a participant to an active transaction (docs/API.md "Enlist"); idempotent. */
  async enlist(txId: string, participant: Participant, opts: CallOptions = {}): Promise<EnlistAnswer> {
    const body = { name: participant.name, url: participant.url };
    const a = await this.call({ method: 'POST', path: `${txPath(txId)}/participants`, body }, opts, txId);
    const b = this.expect(a, 200, txId) as Omit<EnlistAnswer, 'coordinator'>;
    this.check(a, typeof b.id === 'string' && typeof b.participant === 'object', txId);
    return { id: b.id, participant: b.participant, coordinator: a.server };
  }

  /** Freezes the participant list and answers once the votes decide; repeatable, on any coordinator. */
  async commit(txId: string, opts: CallOptions = {}): Promise<OutcomeAnswer> {
    const a = await this.call({ method: 'POST', path: `${txPath(txId)}/commit`, body: {} }, opts, txId);
    return this.outcome(a, txId);
  }

  /** Aborts unless it committed already: then `CoordinatorError` `already_committed` (409). */
  async abort(txId: string, opts: AbortOptions = {}): Promise<OutcomeAnswer> {
    const body = opts.reason === undefined ? {} : { reason: opts.reason };
    const a = await this.call({ method: 'POST', path: `${txPath(txId)}/abort`, body }, opts, txId);
    return this.outcome(a, txId);
  }

  /** One transaction as the store holds it (live or collected). */
  async get(txId: string, opts: CallOptions = {}): Promise<GetAnswer> {
    const a = await this.call({ method: 'GET', path: txPath(txId) }, opts, txId);
    const b = this.expect(a, 200, txId) as TxView;
    this.check(a, typeof b.id === 'string' && typeof b.state === 'string' && Array.isArray(b.participants), txId);
    return { ...b, coordinator: a.server };
  }

  /** One page of the listing, ordered by id; pass `next` as `after` for the next one. */
  async list(filter: ListFilter = {}, opts: CallOptions = {}): Promise<ListAnswer> {
    const q = new URLSearchParams();
    if (filter.state !== undefined) q.set('state', filter.state);
    if (filter.limit !== undefined) q.set('limit', String(filter.limit));
    if (filter.after !== undefined) q.set('after', filter.after);
    const query = q.toString() === '' ? '' : `?${q.toString()}`;
    const a = await this.call({ method: 'GET', path: `/v1/transactions${query}` }, opts);
    const b = this.expect(a, 200) as ListAnswer;
    this.check(a, Array.isArray(b.transactions) && (b.next === null || typeof b.next === 'string'));
    return b;
  }

  /**
   * Gives a participant its work (`POST {url}/2pc/work`), durable there once
   * this resolves; retried a few times (default 3) when the participant does
   * not answer or is not ready. Throws `WorkError` otherwise.
   */
  async sendWork(participant: Participant, txId: string, work: JsonValue, opts: CallOptions = {}): Promise<void> {
    const url = participant.url.replace(/\/+$/, '');
    const plan = this.plan([url], 0, { attempts: CLIENT_DEFAULTS.workAttempts, ...opts });
    const headers = this.authHeaders(opts);
    const { attempt: a } = await withFailover(this.deps(), plan, () => ({ method: 'POST', url: `${url}/2pc/work`, body: { txId, work }, headers }));
    if (a.kind === 'answer' && a.status === 200) return;
    const ctx = { status: a.kind === 'answer' ? a.status : 0, server: a.server, txId };
    if (a.kind === 'none') throw new WorkError(participant.name, a.code, a.message, { ...ctx, cause: a.cause });
    const e = errorBody(a);
    const code = e.code !== undefined && isWorkAnswerCode(e.code) ? e.code : codeOfBareStatus(a.status);
    throw new WorkError(participant.name, code, e.message, { ...ctx, details: e.details });
  }

  /** Runs a whole transaction: see transaction.ts. */
  run(req: RunRequest): Promise<RunOutcome> {
    return runTransaction(this, req);
  }

  /** Closes the HTTP client this client made (an injected one is the caller's to close). */
  close(): void {
    if (this.ownsHttp) this.http.close();
  }

  // ---------------------------------------------------------------------------

  private async call(c: { method: 'GET' | 'POST'; path: string; body?: unknown; headers?: Record<string, string> }, opts: CallOptions, txId?: string): Promise<Extract<Attempt, { kind: 'answer' }>> {
    const plan = this.plan(this.coordinators, this.preferredIndex, opts);
    const headers = { ...c.headers, ...this.authHeaders(opts) };
    const make = (server: string): Omit<JsonCall, 'timeoutMs'> => ({ ...c, headers, url: `${server}${c.path}` });
    const r: FailoverResult = await withFailover(this.deps(), plan, make);
    const a = r.attempt;
    if (a.kind === 'none') throw new CoordinatorError(a.code, a.message, { status: 0, server: a.server, cause: a.cause, ...(txId === undefined ? {} : { txId }) });
    if (!worthRetrying(a)) this.preferredIndex = r.index; // it answered for itself: start there next time
    return a;
  }

  /** `Authorization: Bearer` with the call's token, or the client's; nothing without one. */
  private authHeaders(opts: CallOptions): Record<string, string> {
    const token = opts.token === undefined ? this.token : checkToken(opts.token);
    return token === undefined ? {} : { authorization: `Bearer ${token}` };
  }

  private plan(servers: readonly string[], first: number, opts: CallOptions): Parameters<typeof withFailover>[1] {
    const timeoutMs = checkMs('timeoutMs', opts.timeoutMs ?? this.callTimeoutMs, 1);
    const attempts = opts.attempts ?? CLIENT_DEFAULTS.maxAttemptsPerCall;
    if (!Number.isSafeInteger(attempts) || attempts < 1 || attempts > CLIENT_DEFAULTS.maxAttemptsPerCall) throw invalid(`attempts must be an integer from 1 to ${CLIENT_DEFAULTS.maxAttemptsPerCall}`);
    return { servers, first, maxAttempts: attempts, deadline: opts.deadline ?? this.timers.nowMs() + this.retryWindowMs, timeoutMs };
  }

  private deps(): Parameters<typeof withFailover>[0] {
    return { http: this.http, timers: this.timers, random: this.random, backoff: { baseMs: CLIENT_DEFAULTS.backoffBaseMs, maxMs: CLIENT_DEFAULTS.backoffMaxMs } };
  }

  /** The body of an answer with the expected status; any other answer becomes the CoordinatorError it names. */
  private expect(a: Extract<Attempt, { kind: 'answer' }>, status: number, txId?: string): unknown {
    if (a.status === status) {
      this.check(a, a.body !== null && typeof a.body === 'object', txId);
      return a.body;
    }
    const e = errorBody(a);
    const code = e.code !== undefined && isCoordinatorAnswerCode(e.code) ? e.code : codeOfBareStatus(a.status);
    throw new CoordinatorError(code, e.message, { status: a.status, server: a.server, details: e.code === code ? e.details : { ...e.details, answeredCode: e.code }, ...(txId === undefined ? {} : { txId }) });
  }

  /** An answer of the right status but the wrong shape is outside the contract. */
  private check(a: Extract<Attempt, { kind: 'answer' }>, ok: boolean, txId?: string): void {
    if (!ok) throw new CoordinatorError('invalid_response', `unexpected answer from ${a.server}: ${a.text.slice(0, 200)}`, { status: a.status, server: a.server, ...(txId === undefined ? {} : { txId }) });
  }

  private outcome(a: Extract<Attempt, { kind: 'answer' }>, txId: string): OutcomeAnswer {
    const b = this.expect(a, 200, txId) as Omit<OutcomeAnswer, 'coordinator'>;
    this.check(a, (b.outcome === 'committed' || b.outcome === 'aborted') && typeof b.votes === 'object', txId);
    return { ...b, coordinator: a.server };
  }
}

function txPath(txId: string): string {
  return `/v1/transactions/${encodeURIComponent(txId)}`;
}

/** A token goes into a header: visible ASCII only, and not empty. */
function checkToken(token: string): string {
  if (typeof token !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(token)) throw invalid('token: 1 to 512 visible ASCII characters');
  return token;
}

function checkUrls(urls: readonly string[]): readonly string[] {
  if (!Array.isArray(urls) || urls.length === 0 || urls.length > CLIENT_DEFAULTS.maxCoordinators) throw invalid(`coordinators: give 1 to ${CLIENT_DEFAULTS.maxCoordinators} URLs`);
  const out = urls.map((u) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(u);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search !== '' || parsed.hash !== '') throw invalid(`coordinators: "${u}" is not an http(s) base URL`);
    return u.replace(/\/+$/, '');
  });
  if (new Set(out).size !== out.length) throw invalid('coordinators: a URL is listed twice');
  return Object.freeze(out);
}
