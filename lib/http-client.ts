/**
 * A lean JSON-over-HTTP client on node:http with a keep-alive Agent, for the
 * hot request paths (the store client, the follower-to-leader forward, the
 * coordinator's hints). Measured on this 2-core machine, Node's built-in
 * `fetch` (undici) cost about three times the CPU per request of node:http
 * with a keep-alive Agent, and that CPU was the largest share of what a 2PC
 * transaction cost (docs/BENCHMARKS.md, docs/DECISIONS.md).
 *
 * One `HttpClient` owns one Agent: its sockets are reused across requests and
 * closed by `close()`. Idle sockets are unref'd by Node's Agent, so a client
 * that is never closed does not keep the process alive.
 *
 * `http://` and `https://` URLs, each scheme with its own Agent; the https
 * one trusts and shows what the `tls` option says (lib/tls.ts builds it from
 * a service's TLS flags).
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpClientOptions {
  /** Concurrent sockets per host; requests past it wait in the Agent's queue (inside their timeout). */
  readonly maxSocketsPerHost?: number;
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

/** https Agents replaced by a reload and kept until close() (their open sockets finish their requests); past this the oldest is destroyed. */
const MAX_RETIRED_TLS_AGENTS = 4;

export const defaultHttpClientOptions = {
  maxSocketsPerHost: 256,
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
  readonly agent: http.Agent;
  /** Made on the first https request, and again when the TLS settings change. */
  private tlsAgent: https.Agent | undefined;
  /** The settings `tlsAgent` was made with. */
  private tlsAgentSettings: HttpClientTls | undefined;
  private readonly retiredTlsAgents: https.Agent[] = [];
  private readonly tlsSettings: () => HttpClientTls;
  private readonly agentOptions: http.AgentOptions;
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
    // lifo: the most recently used sockets take the next requests, so a burst's
    // extra sockets go idle and time out instead of being kept warm by turns.
    this.agentOptions = {
      keepAlive: true,
      maxSockets: o.maxSocketsPerHost,
      maxFreeSockets: o.maxSocketsPerHost,
      timeout: o.idleSocketTimeoutMs,
      scheduling: 'lifo',
    };
    this.agent = new http.Agent(this.agentOptions);
    const fixed = typeof tls === 'function' ? undefined : (tls ?? {});
    this.tlsSettings = typeof tls === 'function' ? tls : () => fixed as HttpClientTls;
  }

  /** The https Agent for the current TLS settings: a new one when they changed (the old one's sockets finish what they carry). */
  private httpsAgent(): https.Agent {
    const settings = this.tlsSettings();
    if (this.tlsAgent !== undefined && settings === this.tlsAgentSettings) return this.tlsAgent;
    if (this.tlsAgent !== undefined) {
      this.retiredTlsAgents.push(this.tlsAgent);
      if (this.retiredTlsAgents.length > MAX_RETIRED_TLS_AGENTS) this.retiredTlsAgents.shift()?.destroy();
    }
    this.tlsAgent = new https.Agent({ ...this.agentOptions, ...settings });
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
    const tls = url.protocol === 'https:';
    const agent = tls ? this.httpsAgent() : this.agent;
    const timeoutMs = r.timeoutMs ?? this.requestTimeoutMs;
    const headers: http.OutgoingHttpHeaders = { ...r.headers };
    if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
    // A literal IPv6 host keeps its brackets in URL.hostname; node:http wants it bare.
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let req: http.ClientRequest | undefined;
      const fail = (err: HttpClientError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // Destroying frees the socket (it cannot be reused mid-answer) and ends any body still arriving.
        req?.destroy();
        reject(err);
      };
      const port = url.port !== '' ? Number(url.port) : tls ? 443 : 80;
      const options: http.RequestOptions = { host, port, method: r.method, path: url.pathname + url.search, headers, agent };
      try {
        req = (tls ? https : http).request(options, (res) => {
          const declared = Number(res.headers['content-length'] ?? '0');
          if (declared > this.maxResponseBytes) {
            fail(tooLarge(r, this.maxResponseBytes));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxResponseBytes) fail(tooLarge(r, this.maxResponseBytes));
            else chunks.push(chunk);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
          });
          // A connection that closes mid-body destroys the answer with an error
          // ('aborted'), so no 'close' listener is needed (it cost about 10 µs
          // of CPU per request, measured).
          res.on('error', (e) => fail(new HttpClientError('connection', `${r.method} ${r.url}: the answer broke off: ${e.message}`, { cause: e })));
        });
      } catch (e) {
        // node:http throws at once on a bad method or header value.
        fail(new HttpClientError('invalid_request', `${r.method} ${r.url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
        return;
      }
      // One timer for the whole request, as AbortSignal.timeout gave fetch;
      // req.setTimeout would only bound the gaps between socket events.
      timer = setTimeout(() => fail(new HttpClientError('timeout', `${r.method} ${r.url}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (e) => fail(new HttpClientError('connection', `${r.method} ${r.url}: ${e.message}`, { cause: e })));
      req.end(r.body);
    });
  }

  /** Closes every pooled and active socket; later requests fail with `closed`. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
    this.tlsAgent?.destroy();
    for (const a of this.retiredTlsAgents.splice(0)) a.destroy();
  }
}

function tooLarge(r: HttpRequest, maxBytes: number): HttpClientError {
  return new HttpClientError('response_too_large', `${r.method} ${r.url}: the answer exceeds ${maxBytes} bytes`);
}
