/**
 * The JSON-over-HTTP client of every hop that sends requests (the store
 * client, a follower's forward to its leader, the coordinator's and the
 * participants' store writes and hints), on undici's dispatcher: its
 * connection pool and HTTP/1.1 parser cost about a third of node:http's CPU
 * per request on this 2-core machine (docs/BENCHMARKS.md, "The clients' HTTP
 * stack"; docs/DECISIONS.md). Not undici's `fetch`, which costs the most of
 * all: the low-level `dispatch` with a handler, so no stream or Response
 * object is made per request.
 *
 * One `HttpClient` owns one undici Agent per scheme: its sockets are reused
 * across requests and closed by `close()`. An idle pooled socket is unref'd,
 * so a client that is never closed does not keep the process alive.
 *
 * `http://` and `https://` URLs; the https Agent trusts and shows what the
 * `tls` option says (lib/tls.ts builds it from a service's TLS flags).
 *
 * With `pipelining` above 1, requests marked `resendable` share a connection
 * (HTTP/1.1 pipelining, RFC 9112 §9.3.2), so many concurrent callers cost the
 * server and the kernel a few connections' reads and writes instead of one
 * each (docs/BENCHMARKS.md, "Pipelined requests"; PIPELINED below). Only
 * resendable requests are pipelined, because a connection that breaks makes
 * undici send the unanswered ones behind the first again.
 */
import { Agent, type Dispatcher, util } from 'undici';

export interface HttpClientOptions {
  /** Concurrent sockets per host; requests past it wait in the Agent's queue (inside their timeout). */
  readonly maxSocketsPerHost?: number;
  /** Requests in flight on one connection (1: no pipelining); only requests marked `resendable` go past the first. */
  readonly pipelining?: number;
  /** Default whole-request timeout (connect, queue, send, answer, body); the request is destroyed past it. */
  readonly requestTimeoutMs?: number;
  /** Largest response body accepted; past it the request is destroyed and fails with `response_too_large`. */
  readonly maxResponseBytes?: number;
  /**
   * An idle pooled socket is closed after this long. Below the 5 s
   * keepAliveTimeout of a default Node server (the participants' express
   * apps), so the client drops an idle socket before the server does: a
   * request sent on a socket the server is closing fails with ECONNRESET.
   */
  readonly idleSocketTimeoutMs?: number;
  /**
   * What https connections trust (`ca`) and show (`cert`, `key`), as PEM
   * text; none: the system's CAs and no client certificate. A function is
   * asked again at every https request: when it returns another object (a
   * certificate reload) new connections use it, open ones keep theirs.
   */
  readonly tls?: HttpClientTls | (() => HttpClientTls);
}

/** The TLS side of an HttpClient (lib/tls.ts's ClientTls has this shape). */
export interface HttpClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * How the store client (store/client) uses connections: at most 8 to a
 * node, each carrying up to 16 resendable requests, so 128 in flight before
 * requests queue here (inside their timeout); a request slow to answer
 * delays at most 15 behind it. The cap is what makes pipelining happen:
 * undici writes to an idle connection only after a turn of the event loop
 * (it first checks that the server has not closed it), and meanwhile a pool
 * that may open more connections sends the next request on a new one. A
 * call the store could apply twice waits for a connection with nothing else
 * in flight, so at most 8 of those run at once.
 */
export const PIPELINED: Readonly<Required<Pick<HttpClientOptions, 'pipelining' | 'maxSocketsPerHost'>>> = Object.freeze({ pipelining: 16, maxSocketsPerHost: 8 });

/** https Agents replaced by a reload and kept until close() (their open sockets finish their requests); past this the oldest is destroyed. */
const MAX_RETIRED_TLS_AGENTS = 4;

export const defaultHttpClientOptions = {
  maxSocketsPerHost: 256,
  pipelining: 1,
  requestTimeoutMs: 10_000,
  maxResponseBytes: 16 * 1024 * 1024,
  idleSocketTimeoutMs: 4_000,
} as const satisfies Required<Omit<HttpClientOptions, 'tls'>>;

export interface HttpRequest {
  readonly method: string;
  /** An absolute `http://` URL. */
  readonly url: string;
  /** Lower-case names. `content-length` is set here when there is a body. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The body, already serialized (JSON text in this project). */
  readonly body?: string;
  /** Overrides the client's `requestTimeoutMs` for this request. */
  readonly timeoutMs?: number;
  /**
   * Sending it twice does no harm (a read, a write carrying a Request-Id the
   * store applies at most once): it may be pipelined, and is sent again when
   * its connection breaks before the answer. Default: GET and HEAD only.
   */
  readonly resendable?: boolean;
}

export interface HttpResponse {
  readonly status: number;
  /**
   * Lower-case names. A plain record, so a simulated transport can make one;
   * node:http's own headers object fits as it is (only `set-cookie` is an array).
   */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The whole body as UTF-8 text; the caller parses it. */
  readonly text: string;
}

/**
 * What the store client and the follower-to-leader forward need from HTTP:
 * HttpClient below on sockets, or a simulated network (test/sim2pc).
 * `request` resolves with any HTTP status and rejects only with
 * HttpClientError (`closed` after `close()`).
 */
export interface HttpRequester {
  request(r: HttpRequest): Promise<HttpResponse>;
  /** Releases connections; later requests fail with HttpClientError `closed`. */
  close(): void;
}

/**
 * Why a request got no complete answer. `timeout` and `connection` leave the
 * outcome of a write unknown: the server may have applied it.
 */
export type HttpClientErrorCode = 'invalid_url' | 'invalid_request' | 'connection' | 'timeout' | 'response_too_large' | 'closed';

export class HttpClientError extends Error {
  constructor(
    readonly code: HttpClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpClientError';
  }
}

export class HttpClient implements HttpRequester {
  private readonly agent: Agent;
  /** Made on the first https request, and again when the TLS settings change. */
  private tlsAgent: Agent | undefined;
  /** The settings `tlsAgent` was made with. */
  private tlsAgentSettings: HttpClientTls | undefined;
  private readonly retiredTlsAgents: Agent[] = [];
  private readonly tlsSettings: () => HttpClientTls;
  private readonly agentOptions: Agent.Options;
  private readonly requestTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private closed = false;

  constructor(opts: HttpClientOptions = {}) {
    const { tls, ...limits } = opts;
    const o = { ...defaultHttpClientOptions, ...limits };
    for (const [name, value] of Object.entries(o)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new Error(`HttpClient: ${name} must be a positive integer, got ${value}`);
    }
    this.requestTimeoutMs = o.requestTimeoutMs;
    this.maxResponseBytes = o.maxResponseBytes;
    // The whole-request timer below bounds every request, so undici's own
    // header and body timers are off. An idle socket is closed after
    // idleSocketTimeoutMs whatever keep-alive hint the server sends.
    this.agentOptions = {
      connections: o.maxSocketsPerHost,
      pipelining: o.pipelining,
      keepAliveTimeout: o.idleSocketTimeoutMs,
      keepAliveMaxTimeout: o.idleSocketTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
    };
    this.agent = new Agent(this.agentOptions);
    const fixed = typeof tls === 'function' ? undefined : (tls ?? {});
    this.tlsSettings = typeof tls === 'function' ? tls : () => fixed as HttpClientTls;
  }

  /** The https Agent for the current TLS settings: a new one when they changed (the old one's sockets finish what they carry). */
  private httpsAgent(): Agent {
    const settings = this.tlsSettings();
    if (this.tlsAgent !== undefined && settings === this.tlsAgentSettings) return this.tlsAgent;
    if (this.tlsAgent !== undefined) {
      this.retiredTlsAgents.push(this.tlsAgent);
      quietly(this.tlsAgent.close());
      const oldest = this.retiredTlsAgents.length > MAX_RETIRED_TLS_AGENTS ? this.retiredTlsAgents.shift() : undefined;
      if (oldest !== undefined) quietly(oldest.destroy());
    }
    this.tlsAgent = new Agent({ ...this.agentOptions, connect: { ca: settings.ca, cert: settings.cert, key: settings.key } });
    this.tlsAgentSettings = settings;
    return this.tlsAgent;
  }

  /**
   * Sends one request and reads the whole answer. Any HTTP status resolves
   * (the caller decides what a 4xx means); rejects only with HttpClientError.
   */
  request(r: HttpRequest): Promise<HttpResponse> {
    if (this.closed) return Promise.reject(new HttpClientError('closed', 'the HTTP client is closed'));
    let url: URL;
    try {
      url = new URL(r.url);
    } catch (e) {
      return Promise.reject(new HttpClientError('invalid_url', `not a URL: ${r.url}`, { cause: e }));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new HttpClientError('invalid_url', `only http:// and https:// URLs are supported, got ${url.protocol}//`));
    const agent = url.protocol === 'https:' ? this.httpsAgent() : this.agent;
    const timeoutMs = r.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<HttpResponse>((resolve, reject) => {
      const answer = new Answer(r, this.maxResponseBytes, resolve, reject);
      const options: Dispatcher.DispatchOptions = { origin: url.origin, path: url.pathname + url.search, method: r.method as Dispatcher.HttpMethod, headers: r.headers ?? null, body: r.body ?? null, ...(r.resendable === undefined ? {} : { idempotent: r.resendable }) };
      try {
        agent.dispatch(options, answer);
      } catch (e) {
        answer.onError(e as Error);
      }
      // One timer for the whole request (queue, connect, send, answer, body);
      // none for a request undici refused at once (it would hold the process).
      if (!answer.settled) answer.timer = setTimeout(() => answer.fail(new HttpClientError('timeout', `${r.method} ${r.url}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
    });
  }

  /** Closes every pooled and active socket; requests in flight fail with `connection`, later ones with `closed`. */
  close(): void {
    this.closed = true;
    quietly(this.agent.destroy());
    if (this.tlsAgent !== undefined) quietly(this.tlsAgent.destroy());
    for (const a of this.retiredTlsAgents.splice(0)) quietly(a.destroy());
  }
}

/** An agent's close or destroy runs on its own; one already closed rejects, which is nothing to report. */
function quietly(p: Promise<void>): void {
  p.catch(() => undefined);
}

/**
 * One request's undici handler: collects the body within the size limit and
 * settles the promise once. A failure after the request went out aborts it,
 * which destroys its socket (it cannot be reused mid-answer).
 */
class Answer implements Dispatcher.DispatchHandlers {
  timer: NodeJS.Timeout | undefined;
  settled = false;
  private abort: ((err?: Error) => void) | undefined;
  private status = 0;
  private headers: Record<string, string | string[]> = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly r: HttpRequest,
    private readonly maxBytes: number,
    private readonly resolve: (res: HttpResponse) => void,
    private readonly reject: (err: HttpClientError) => void,
  ) {}

  fail(err: HttpClientError): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.abort?.(err);
    this.reject(err);
  }

  onConnect(abort: (err?: Error) => void): void {
    // A request that failed while queued is dropped as soon as it would start.
    if (this.settled) abort(new HttpClientError('timeout', 'the request was abandoned'));
    else this.abort = abort;
  }

  onHeaders(status: number, raw: Buffer[]): boolean {
    this.status = status;
    this.headers = util.parseHeaders(raw);
    if (Number(this.headers['content-length'] ?? '0') > this.maxBytes) this.fail(tooLarge(this.r, this.maxBytes));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.maxBytes) this.fail(tooLarge(this.r, this.maxBytes));
    else this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const text = this.chunks.length === 1 ? (this.chunks[0] as Buffer).toString('utf8') : Buffer.concat(this.chunks).toString('utf8');
    this.resolve({ status: this.status, headers: this.headers, text });
  }

  onError(e: Error): void {
    if (e instanceof HttpClientError) return this.fail(e);
    // undici refuses a bad method or header value before sending anything.
    const code = (e as { code?: string }).code === 'UND_ERR_INVALID_ARG' ? 'invalid_request' : 'connection';
    this.fail(new HttpClientError(code, `${this.r.method} ${this.r.url}: ${e.message}`, { cause: e }));
  }
}

function tooLarge(r: HttpRequest, maxBytes: number): HttpClientError {
  return new HttpClientError('response_too_large', `${r.method} ${r.url}: the answer exceeds ${maxBytes} bytes`);
}
