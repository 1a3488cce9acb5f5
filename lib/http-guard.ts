/**
 * What every HTTP server of the package does against hostile input, before a
 * route sees the request (docs/SECURITY.md):
 *
 *   - a state-changing request (POST, PUT, PATCH, DELETE) with a body, or
 *     with a content type, must be `application/json` in UTF-8 with no
 *     content encoding: 415 `unsupported_media_type`. A browser can send a
 *     form or text/plain cross-site without asking (CSRF); JSON it cannot.
 *   - a state-changing request from a browser page of another origin (an
 *     `Origin` that is neither this host nor configured): 403
 *     `cross_origin_refused`, which also covers a bodiless cross-site POST.
 *   - no CORS headers unless origins are configured;
 *   - a URL past `maxUrlBytes`: 414 `url_too_long`; headers past
 *     `maxHeaderBytes`: node:http answers 431 itself;
 *   - past `maxConcurrentRequests` in flight: 429 `too_many_requests` with
 *     Retry-After;
 *   - server timeouts against slow clients (headers, whole request, idle
 *     keep-alive), set on every server `createGuardedServer` makes.
 *
 * Error bodies are the shared `{"error": {code, message}}`, never a stack
 * or a path. The body cap stays each service's own (its config's
 * `maxBodyBytes`), read where the body is parsed.
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import https from 'node:https';
import { AppError } from './errors.js';
import type { Logger } from './logger.js';
import { assertExposureAllowed, reloadCertificatesOnChange, secureContextOptions, type TlsSettings } from './tls.js';

export interface HttpGuardLimits {
  /** Request target (path and query) in bytes; past it, 414. */
  readonly maxUrlBytes: number;
  /** All request headers in bytes (node:http's maxHeaderSize); past it node:http answers 431. */
  readonly maxHeaderBytes: number;
  /** Requests in flight on one server (streams included); past it, 429. */
  readonly maxConcurrentRequests: number;
  /** The 429's Retry-After. */
  readonly retryAfterSeconds: number;
  /** From a request's first byte to its last header. */
  readonly headersTimeoutMs: number;
  /** From a request's first byte to the end of its body (not the answer: a long wait for the store is not cut). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** How often node:http checks the headers and request timeouts (its default, 30 s, would let a slow client stay that much longer). */
  readonly timeoutCheckIntervalMs: number;
  /** Browser origins (`https://app.example:8443`) allowed to call this server; empty: no CORS headers at all. */
  readonly allowedOrigins: readonly string[];
}

export const DEFAULT_HTTP_GUARD_LIMITS: HttpGuardLimits = Object.freeze({
  maxUrlBytes: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxConcurrentRequests: 1_024,
  retryAfterSeconds: 1,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  timeoutCheckIntervalMs: 1_000,
  allowedOrigins: [],
});

/** The error codes the guard answers, by status: lib/openapi.ts adds them to every operation. */
export const GUARD_ERRORS = { 414: ['url_too_long'], 429: ['too_many_requests'] } as const;
export const STATE_CHANGING_GUARD_ERRORS = { 400: ['json_too_deep'], 403: ['cross_origin_refused'], 415: ['unsupported_media_type'] } as const;

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function isStateChanging(method: string | undefined): boolean {
  return STATE_CHANGING.has((method ?? '').toUpperCase());
}

interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** `application/json`, optionally with `charset=utf-8`, and nothing else. */
function isJsonContentType(value: string): boolean {
  if (value === 'application/json') return true; // what nearly every client sends: no parsing
  const [type, ...params] = value.split(';').map((s) => s.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => p === '' || p === 'charset=utf-8');
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Why a state-changing request's media type is refused; undefined when it is JSON (or has neither body nor type). */
export function mediaTypeRefusal(req: IncomingMessage): Refusal | undefined {
  if (!isStateChanging(req.method)) return undefined;
  const type = req.headers['content-type'];
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return { status: 415, code: 'unsupported_media_type', message: 'content-encoding is not supported; send identity' };
  if (type === undefined ? hasBody(req) : !isJsonContentType(type)) return { status: 415, code: 'unsupported_media_type', message: 'state-changing requests take content-type application/json (UTF-8) only' };
  return undefined;
}

/** A browser page of another origin may not change state here, unless its origin is configured. */
function originRefusal(req: IncomingMessage, allowed: readonly string[]): Refusal | undefined {
  const origin = req.headers.origin;
  if (origin === undefined || !isStateChanging(req.method) || allowed.includes(origin) || sameOrigin(origin, req.headers.host)) return undefined;
  return { status: 403, code: 'cross_origin_refused', message: 'state-changing requests from another origin are refused' };
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

function sendRefusal(req: IncomingMessage, res: ServerResponse, r: Refusal, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify({ error: { code: r.code, message: r.message } });
  // The body (if any) is drained, so the keep-alive connection stays usable.
  req.resume();
  res.writeHead(r.status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** One server's guard: refusals first, then the bound on requests in flight. */
export class HttpGuard {
  private inFlight = 0;

  constructor(readonly limits: HttpGuardLimits = DEFAULT_HTTP_GUARD_LIMITS) {}

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Answers a refused request itself (false); an admitted one (true) is counted until its answer closes. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const refusal = this.refusal(req);
    if (refusal !== undefined) {
      sendRefusal(req, res, refusal);
      return false;
    }
    if (this.inFlight >= this.limits.maxConcurrentRequests) {
      sendRefusal(req, res, { status: 429, code: 'too_many_requests', message: `more than ${this.limits.maxConcurrentRequests} requests in flight` }, { 'retry-after': String(this.limits.retryAfterSeconds) });
      return false;
    }
    if (this.corsHeaders(req, res) && req.method === 'OPTIONS') {
      // A configured origin's preflight: answered here, no route has OPTIONS.
      res.writeHead(204).end();
      return false;
    }
    this.inFlight++;
    res.once('close', () => this.inFlight--);
    return true;
  }

  private refusal(req: IncomingMessage): Refusal | undefined {
    if (Buffer.byteLength(req.url ?? '') > this.limits.maxUrlBytes) return { status: 414, code: 'url_too_long', message: `the request target exceeds ${this.limits.maxUrlBytes} bytes` };
    return originRefusal(req, this.limits.allowedOrigins) ?? mediaTypeRefusal(req);
  }

  /** Only for a configured origin (true then); a preflight learns that JSON may be sent. */
  private corsHeaders(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (origin === undefined || !this.limits.allowedOrigins.includes(origin)) return false;
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    res.setHeader('access-control-allow-headers', 'content-type, idempotency-key, request-id');
    res.setHeader('access-control-allow-methods', 'GET, POST, PUT, DELETE');
    return true;
  }

  /** A node:http listener that runs `inner` only for admitted requests. */
  listener(inner: RequestListener): RequestListener {
    return (req, res) => {
      if (this.admit(req, res)) inner(req, res);
    };
  }
}

/**
 * The media-type rule alone, as express middleware: for routes a host
 * mounts on a server the package did not build (participantRouter).
 */
export function jsonOnly(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const refusal = mediaTypeRefusal(req);
  if (refusal === undefined) next();
  else sendRefusal(req, res, refusal);
}

/**
 * Nesting of a JSON body, at most. JSON.parse takes any depth, but
 * JSON.stringify (a log line, a store value) recurses and throws past a few
 * thousand levels: a deep body would become a 500, or stop a participant.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether `value` nests deeper than `max` (iterative: the check itself cannot overflow the stack). */
export function jsonDepthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Express middleware after the JSON parser: 400 `json_too_deep` past MAX_JSON_DEPTH. */
export function boundedJsonDepth(req: { readonly body?: unknown }, _res: unknown, next: (err?: unknown) => void): void {
  if (jsonDepthExceeds(req.body, MAX_JSON_DEPTH)) next(new AppError('json_too_deep', 400, `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, { limit: MAX_JSON_DEPTH }));
  else next();
}

export interface GuardedServerOptions {
  readonly tls: TlsSettings;
  readonly limits?: Partial<HttpGuardLimits>;
  /** Where certificate reloads are reported. */
  readonly log: Logger;
}

/**
 * An HTTP or, with a certificate, HTTPS server for `listener` behind an
 * HttpGuard, with the timeouts set and the certificate reloaded on SIGHUP
 * or file change. Not yet listening: `listenGuarded` checks the address.
 */
export function createGuardedServer(listener: RequestListener, opts: GuardedServerOptions): http.Server {
  const limits = { ...DEFAULT_HTTP_GUARD_LIMITS, ...opts.limits };
  const guarded = new HttpGuard(limits).listener(listener);
  const base = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
  };
  const files = opts.tls.server;
  if (files === undefined) return http.createServer(base, guarded);
  const server = https.createServer({ ...base, ...secureContextOptions(files) }, guarded);
  const stop = reloadCertificatesOnChange(server, files, opts.log);
  server.once('close', stop);
  return server;
}

/** Refuses plain HTTP beyond loopback (unless --insecure), then serves `listener` guarded on host:port. */
export async function listenGuarded(listener: RequestListener, host: string, port: number, opts: GuardedServerOptions): Promise<http.Server> {
  assertExposureAllowed(host, opts.tls);
  const server = createGuardedServer(listener, opts);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Plain HTTP on loopback: the default of every service. */
export const PLAIN_HTTP: TlsSettings = Object.freeze({ client: {}, insecure: false });
