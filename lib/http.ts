/**
 * A small router, transport-agnostic, with a thin node:http adapter. The
 * store's hot path (every KV call) runs here rather than through express:
 * measured on this machine, node:http answered about 2x more trivial JSON
 * requests per second than express 5 (docs/DECISIONS.md).
 *
 * Handlers see a plain request (method, path, query, headers, parsed body)
 * and return a reply, or throw AppError for expected failures; `errorReply`
 * is the one place that turns errors into the public JSON error body. So the
 * same routes run behind node:http (`Router.handle`), behind plain text
 * (`serveWire`, for a simulated network), or called directly (`dispatch`).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { AppError, isAppError } from './errors.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from './http-guard.js';

/** A request with no socket behind it. */
export interface PlainRequest {
  readonly method: string;
  /** The path as sent (still percent-encoded), without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON body; undefined when there was none or the route reads none. */
  readonly body: unknown;
}

export interface RouteContext extends PlainRequest {
  /** `:name` and `*name` captures of the route pattern, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
}

export interface JsonReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A reply whose body is already text (the Prometheus exposition). */
export interface TextReply {
  readonly status: number;
  readonly text: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Where a long-lived reply (server-sent events) writes. node:http gives one
 * over a ServerResponse; a simulated network gives its own connection.
 */
export interface StreamSink {
  /**
   * Queues text to the peer; never blocks. False once the bytes not yet taken
   * by the peer pass the sink's cap: the writer then gives up on this reader
   * rather than buffer without bound.
   */
  write(text: string): boolean;
  /** Closes the stream after what was written. */
  end(): void;
  /** `fn` runs once when the peer goes away or the connection breaks. */
  onClose(fn: () => void): void;
}

/** A 200 whose body is a stream: the transport opens a sink and hands it to `stream`. */
export interface StreamReply {
  readonly status: 200;
  readonly headers: Readonly<Record<string, string>>;
  /** The cap on unsent bytes for the transport's sink (its `write` answers false past it). */
  readonly maxBufferedBytes: number;
  readonly stream: (sink: StreamSink) => void;
}

export type Reply = JsonReply | TextReply | StreamReply;

export type Handler = (ctx: RouteContext) => Promise<Reply> | Reply;

export interface RouteOptions {
  /** The route reads a JSON body: the transport parses it (within its byte cap) only for such routes. */
  readonly body?: boolean;
  /** Checks on the path that must answer before the body is read (a 404 stays a 404 whatever the body). */
  readonly guard?: (params: Readonly<Record<string, string>>) => void;
}

/** A matched route, before its body is read. */
export interface RouteMatch {
  readonly takesBody: boolean;
  run(req: PlainRequest): Promise<Reply>;
}

/** Anything that routes plain requests: a Router, or an API built on one. */
export interface Routes {
  /** Throws AppError 400 invalid_path, 404 not_found, 405 method_not_allowed, or the route's guard error. */
  match(method: string, path: string): RouteMatch;
}

/** The request and reply as text, as a simulated network carries them. */
export interface WireRequest {
  readonly method: string;
  /** Path and query, e.g. `/v1/kv/a?consistency=serializable`; an absolute URL keeps only those. */
  readonly target: string;
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly body?: string;
}

/** Structurally a lib/http-client HttpResponse. */
export interface WireResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
}

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly tail: boolean;
  readonly handler: Handler;
  readonly options: RouteOptions;
}

/** Request bodies above this are refused with 413 unless the router is given its own cap. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export class Router implements Routes {
  private readonly routes: Route[] = [];
  private readonly maxBodyBytes: number;

  constructor(opts: { readonly maxBodyBytes?: number } = {}) {
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  /** Patterns like `/v1/kv/:key/cas`; a trailing `*name` captures the rest of the path. First match wins. */
  on(method: string, pattern: string, handler: Handler, options: RouteOptions = {}): this {
    const parts = pattern.split('/').filter((p) => p !== '');
    const tail = parts.length > 0 && (parts[parts.length - 1] as string).startsWith('*');
    this.routes.push({ method, parts, tail, handler, options });
    return this;
  }

  /** Every route as registered (method and pattern), in match order: what the OpenAPI coverage test compares. */
  routeTable(): { readonly method: string; readonly pattern: string }[] {
    return this.routes.map((r) => ({ method: r.method, pattern: `/${r.parts.join('/')}` }));
  }

  /** `METHOD pattern` of the route a request names (as `match` finds it, without running it), or undefined. */
  routeKeyOf(method: string, path: string): string | undefined {
    let segments: string[];
    try {
      segments = decodeSegments(path);
    } catch {
      return undefined;
    }
    const route = this.routes.find((r) => r.method === method && matchParts(r, segments) !== undefined);
    return route === undefined ? undefined : `${route.method} /${route.parts.join('/')}`;
  }

  match(method: string, path: string): RouteMatch {
    const segments = decodeSegments(path);
    let methodMismatch = false;
    for (const route of this.routes) {
      const params = matchParts(route, segments);
      if (!params) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      route.options.guard?.(params);
      return { takesBody: route.options.body === true, run: async (req) => route.handler({ ...req, params }) };
    }
    if (methodMismatch) throw new AppError('method_not_allowed', 405, `${method} is not allowed on ${path}`);
    throw new AppError('not_found', 404, `no route for ${method} ${path}`);
  }

  /** Routes a request whose body is already parsed; rejects with AppError as a handler does. */
  async dispatch(req: PlainRequest): Promise<Reply> {
    return this.match(req.method, req.path).run(req);
  }

  /** The node:http request listener. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    void serveNodeHttp(this, this.maxBodyBytes, req, res);
  };
}

function decodeSegments(path: string): string[] {
  try {
    return path
      .split('/')
      .filter((p) => p !== '')
      .map((p) => decodeURIComponent(p));
  } catch {
    throw new AppError('invalid_path', 400, 'the path is not valid percent-encoding');
  }
}

function matchParts(route: Route, segments: readonly string[]): Record<string, string> | undefined {
  const fixed = route.tail ? route.parts.length - 1 : route.parts.length;
  if (route.tail ? segments.length < route.parts.length : segments.length !== fixed) return undefined;
  // Every request is tried against the routes in turn: a route that does not match allocates nothing.
  for (let i = 0; i < fixed; i++) {
    const p = route.parts[i] as string;
    if (!p.startsWith(':') && p !== segments[i]) return undefined;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < fixed; i++) {
    const p = route.parts[i] as string;
    if (p.startsWith(':')) params[p.slice(1)] = segments[i] as string;
  }
  if (route.tail) params[(route.parts[fixed] as string).slice(1)] = segments.slice(fixed).join('/');
  return params;
}

/**
 * A request target as a URL whose host is never taken from the client: a
 * target starting with `//` is a path (not a protocol-relative URL, which
 * `new URL` would read as a host, or reject), and an absolute-form target
 * (`http://host/path`) keeps only its path and query. 400 when unparseable.
 */
export function parseTarget(target: string): URL {
  try {
    const parsed = new URL(target.startsWith('/') ? `http://local${target}` : target);
    return new URL(`http://local${parsed.pathname}${parsed.search}`);
  } catch {
    throw new AppError('invalid_path', 400, 'the request target is not a valid path');
  }
}

/** `parseTarget` of a node:http request. */
export function requestUrl(req: IncomingMessage): URL {
  return parseTarget(req.url ?? '/');
}

/**
 * A target WHATWG URL parsing leaves as it is: one leading slash, no dot,
 * percent sign, backslash or other character it would encode or resolve in
 * the path, and none it would encode in the query. Most requests are such;
 * they skip the two URL parses of `parseTarget` (a few microseconds each).
 */
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9_~!$&()*+,;=:@/-]*(?:\?[A-Za-z0-9_~!$&()*+,;=:@/?.%-]*)?$/;

/** The path and query of a node:http request, as `requestUrl` gives them. */
export function requestTarget(req: IncomingMessage): { readonly pathname: string; readonly searchParams: URLSearchParams } {
  const target = req.url ?? '/';
  if (!PLAIN_TARGET.test(target)) return requestUrl(req);
  const q = target.indexOf('?');
  return q < 0 ? { pathname: target, searchParams: new URLSearchParams() } : { pathname: target.slice(0, q), searchParams: new URLSearchParams(target.slice(q + 1)) };
}

/**
 * The one mapping of errors to replies: AppError to its status and `{"error":{code,message,...details}}`, anything else to 500.
 * A 500's cause goes to `onInternalError` (a service's logger), by default to the console.
 */
export function errorReply(e: unknown, onInternalError?: (e: unknown) => void): JsonReply {
  if (isAppError(e)) {
    const retryAfter = e.details['retryAfterSeconds'];
    return typeof retryAfter === 'number' ? { status: e.status, body: e.toBody(), headers: { 'retry-after': String(retryAfter) } } : { status: e.status, body: e.toBody() };
  }
  // A bug, not bad input: report it plainly and keep serving.
  if (onInternalError === undefined) console.error('internal error:', e);
  else onInternalError(e);
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}

/** A JSON or text reply as status, headers and body text. */
export function encodeReply(reply: JsonReply | TextReply): WireResponse {
  if ('text' in reply) return { status: reply.status, headers: { 'content-type': 'text/plain; charset=utf-8', ...reply.headers }, text: reply.text };
  return { status: reply.status, headers: { 'content-type': 'application/json', ...reply.headers }, text: JSON.stringify(reply.body) };
}

/** node:http headers as a plain record: repeated headers (only `set-cookie` stays an array in Node) joined. */
export function plainHeaders(h: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(h)) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/** Parses a JSON body given as text; 413 past `maxBytes`, 400 when it is not JSON, undefined when empty. */
export function parseJsonText(text: string | undefined, maxBytes: number): unknown {
  if (text === undefined || text === '') return undefined;
  if (Buffer.byteLength(text) > maxBytes) throw bodyTooLarge(maxBytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AppError('invalid_json', 400, 'request body is not valid JSON');
  }
}

function bodyTooLarge(maxBytes: number): AppError {
  return new AppError('body_too_large', 413, `request body exceeds ${maxBytes} bytes`, { limitBytes: maxBytes });
}

/** Serves one request given as text: what `Router.handle` does, without sockets. Streams are refused (open them through their own API). */
export async function serveWire(routes: Routes, maxBodyBytes: number, r: WireRequest): Promise<WireResponse> {
  let reply: Reply;
  try {
    const url = parseTarget(r.target);
    const m = routes.match(r.method, url.pathname);
    const body = m.takesBody ? parseJsonText(r.body, maxBodyBytes) : undefined;
    reply = await m.run({ method: r.method, path: url.pathname, query: url.searchParams, headers: r.headers ?? {}, body });
    if ('stream' in reply) throw new AppError('stream_not_supported', 406, `${r.method} ${url.pathname} answers with a stream, which this transport does not carry`);
  } catch (e) {
    reply = errorReply(e);
  }
  return encodeReply(reply);
}

/** What a node:http listener over routes may add to `Router.handle` (none of it is used by the store). */
export interface NodeListenerOptions {
  /** Where a 500's cause goes (a service's logger); default the console. */
  readonly onInternalError?: (e: unknown) => void;
  /** A request no route takes (404 not_found, 405 method_not_allowed) goes here instead of its JSON error: a host's own routes. */
  readonly unrouted?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Runs on a routed request before its body is read; false when it answered the request itself (a refusal). */
  readonly admit?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** A node:http request listener over `routes`; request bodies past `maxBodyBytes` get 413. */
export function nodeListener(routes: Routes, maxBodyBytes: number, opts: NodeListenerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => void serveNodeHttp(routes, maxBodyBytes, req, res, opts);
}

function isUnrouted(e: unknown): boolean {
  return isAppError(e) && (e.code === 'not_found' || e.code === 'method_not_allowed');
}

/** The node:http adapter: match the route, read and cap the body if the route takes one, run it, write the reply. */
async function serveNodeHttp(routes: Routes, maxBodyBytes: number, req: IncomingMessage, res: ServerResponse, opts: NodeListenerOptions = {}): Promise<void> {
  let routed = false;
  try {
    const method = req.method ?? 'GET';
    const url = requestTarget(req);
    const m = routes.match(method, url.pathname);
    routed = true;
    if (opts.admit !== undefined && !opts.admit(req, res)) return;
    const body = m.takesBody ? await readJson(req, maxBodyBytes) : undefined;
    const reply = await m.run({ method, path: url.pathname, query: url.searchParams, headers: plainHeaders(req.headers), body });
    sendReply(req, res, reply);
  } catch (e) {
    if (!routed && opts.unrouted !== undefined && isUnrouted(e)) opts.unrouted(req, res);
    else writeReply(res, encodeReply(errorReply(e, opts.onInternalError)));
  }
}

/** Writes a reply on node:http: a JSON or text body, or opens the stream. */
export function sendReply(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  if ('stream' in reply) startStream(req, res, reply);
  else writeReply(res, encodeReply(reply));
}

/**
 * `routes` answering as an express app did (the coordinator's and the
 * participants' contract, docs/API.md): a known path with a method it does
 * not take is `404 not_found`, not 405; HEAD runs the GET route (node:http
 * leaves the body out).
 */
export function expressStyleRoutes(routes: Routes): Routes {
  return {
    match(method, path) {
      try {
        return routes.match(method === 'HEAD' ? 'GET' : method, path);
      } catch (e) {
        if (isAppError(e) && e.code === 'method_not_allowed') throw new AppError('not_found', 404, `no route for ${method} ${path}`);
        throw e;
      }
    },
  };
}

/**
 * The JSON body of a coordinator or participant route: an empty body reads
 * as {}, and one nesting past MAX_JSON_DEPTH is `400 json_too_deep` (a log
 * line or a store value would otherwise fail to serialize it).
 */
export function boundedJsonBody(req: Pick<PlainRequest, 'body'>): unknown {
  // Only a missing body: a JSON `null` stays null (and no schema takes it).
  const body = req.body === undefined ? {} : req.body;
  if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) throw new AppError('json_too_deep', 400, `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, { limit: MAX_JSON_DEPTH });
  return body;
}

/** A query string as express's "simple" parser gave it: a repeated name becomes an array (which a string schema refuses). */
export function queryObject(query: URLSearchParams): Record<string, string | string[]> {
  // No prototype: a name like `__proto__` is a plain key (querystring.parse does the same).
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [k, v] of query) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** A node:http listener that also lists its routes: what supertest drives and the OpenAPI coverage tests read. */
export interface HttpApp {
  (req: IncomingMessage, res: ServerResponse): void;
  routeTable(): { readonly method: string; readonly pattern: string }[];
}

export function httpApp(listener: (req: IncomingMessage, res: ServerResponse) => void, router: Pick<Router, 'routeTable'>): HttpApp {
  return Object.assign(listener, { routeTable: () => router.routeTable() });
}

function writeReply(res: ServerResponse, w: WireResponse): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(w.status, { ...w.headers, 'content-length': Buffer.byteLength(w.text) });
  res.end(w.text);
}

function startStream(req: IncomingMessage, res: ServerResponse, reply: StreamReply): void {
  res.writeHead(reply.status, reply.headers);
  reply.stream({
    write: (text) => {
      res.write(text);
      return res.writableLength <= reply.maxBufferedBytes;
    },
    end: () => void res.end(),
    onClose: (fn) => {
      req.on('close', fn);
      res.on('error', fn);
    },
  });
}

/** Reads a JSON body with a byte cap; 413 past the cap, 400 when it is not JSON. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    req.resume();
    throw bodyTooLarge(maxBytes);
  }
  const chunks = await readChunks(req, maxBytes);
  if (chunks === 'too_large') throw bodyTooLarge(maxBytes);
  if (chunks.length === 0) return undefined;
  const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AppError('invalid_json', 400, 'request body is not valid JSON');
  }
}

/**
 * The body's chunks, or 'too_large' past the cap. With 'data' and 'end'
 * events rather than an async iterator: measured on the coordinator's and
 * participants' routes, the iterator's promises per chunk cost more CPU per
 * request than everything else this file does (docs/BENCHMARKS.md).
 * Past the cap, stop collecting but keep the request flowing: the rest of
 * the body is drained, so the next request on that keep-alive connection
 * is read (destroying or pausing it would leave the socket unread and that
 * next request hanging).
 */
function readChunks(req: IncomingMessage, maxBytes: number): Promise<Buffer[] | 'too_large'> {
  const chunks: Buffer[] = [];
  if (req.readableEnded) return Promise.resolve(chunks);
  return new Promise((resolve, reject) => {
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    const onData = (buf: Buffer): void => {
      size += buf.length;
      if (size <= maxBytes) {
        chunks.push(buf);
        return;
      }
      cleanup();
      req.resume();
      resolve('too_large');
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks);
    };
    // The client hung up mid-body: bad input, not an internal error.
    const onAbort = (e?: unknown): void => {
      cleanup();
      reject(new AppError('request_aborted', 400, 'the connection closed before the whole request body arrived', {}, e === undefined ? {} : { cause: e }));
    };
    const onClose = (): void => {
      if (!req.readableEnded) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}
