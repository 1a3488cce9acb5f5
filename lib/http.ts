/**
 * A small router over node:http. The store's hot path (every KV call) runs
 * here rather than through express: measured on this machine, node:http
 * answered about 5.5x more trivial JSON requests per second than express 5
 * (docs/DECISIONS.md). Handlers throw AppError for expected failures; one
 * place turns errors into the public JSON error body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, isAppError } from './errors.js';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
}

export interface JsonReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A handler returns a reply, or undefined when it wrote the response itself (streams). */
export type Handler = (ctx: RouteContext) => Promise<JsonReply | undefined> | JsonReply | undefined;

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly tail: boolean;
  readonly handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  /** Patterns like `/v1/kv/:key/cas`; a trailing `*name` captures the rest of the path. */
  on(method: string, pattern: string, handler: Handler): this {
    const parts = pattern.split('/').filter((p) => p !== '');
    const tail = parts.length > 0 && (parts[parts.length - 1] as string).startsWith('*');
    this.routes.push({ method, parts, tail, handler });
    return this;
  }

  private match(method: string, segments: readonly string[]): { route: Route; params: Record<string, string> } | 'method' | undefined {
    let methodMismatch = false;
    for (const route of this.routes) {
      const params = matchParts(route, segments);
      if (!params) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route, params };
    }
    return methodMismatch ? 'method' : undefined;
  }

  /** The node:http request listener. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    void this.dispatch(req, res);
  };

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = requestUrl(req);
      let segments: string[];
      try {
        segments = url.pathname.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
      } catch {
        throw new AppError('invalid_path', 400, 'the path is not valid percent-encoding');
      }
      const m = this.match(req.method ?? 'GET', segments);
      if (m === undefined) throw new AppError('not_found', 404, `no route for ${req.method} ${url.pathname}`);
      if (m === 'method') throw new AppError('method_not_allowed', 405, `${req.method} is not allowed on ${url.pathname}`);
      const reply = await m.route.handler({ req, res, params: m.params, query: url.searchParams });
      if (reply) sendJson(res, reply.status, reply.body, reply.headers);
    } catch (e) {
      sendError(res, e);
    }
  }
}

/**
 * The request target as a URL whose host is never taken from the client: a
 * target starting with `//` is a path (not a protocol-relative URL, which
 * `new URL` would read as a host, or reject), and an absolute-form target
 * (`http://host/path`) keeps only its path and query. 400 when unparseable.
 */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  try {
    const parsed = new URL(target.startsWith('/') ? `http://local${target}` : target);
    return new URL(`http://local${parsed.pathname}${parsed.search}`);
  } catch {
    throw new AppError('invalid_path', 400, 'the request target is not a valid path');
  }
}

function matchParts(route: Route, segments: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  const fixed = route.tail ? route.parts.length - 1 : route.parts.length;
  if (route.tail ? segments.length < route.parts.length : segments.length !== fixed) return undefined;
  for (let i = 0; i < fixed; i++) {
    const p = route.parts[i] as string;
    const s = segments[i] as string;
    if (p.startsWith(':')) params[p.slice(1)] = s;
    else if (p !== s) return undefined;
  }
  if (route.tail) params[(route.parts[fixed] as string).slice(1)] = segments.slice(fixed).join('/');
  return params;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, e: unknown): void {
  if (isAppError(e)) {
    const headers: Record<string, string> = {};
    const retryAfter = e.details['retryAfterSeconds'];
    if (typeof retryAfter === 'number') headers['retry-after'] = String(retryAfter);
    sendJson(res, e.status, e.toBody(), headers);
    return;
  }
  // A bug, not bad input: report it plainly and keep serving.
  console.error('internal error:', e);
  sendJson(res, 500, { error: { code: 'internal', message: 'internal error' } });
}

/** Reads a JSON body with a byte cap; 413 past the cap, 400 when it is not JSON. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    req.resume();
    throw new AppError('body_too_large', 413, `request body exceeds ${maxBytes} bytes`, { limitBytes: maxBytes });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  // Past the cap, leave the loop without destroying the request and only then
  // resume it, so the rest of the body is drained: destroying it (the default
  // on leaving a for-await) or resuming it while the iterator still listens
  // leaves the socket unread, and the next request on that keep-alive
  // connection hangs forever.
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false })) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > maxBytes) {
        tooLarge = true;
        break;
      }
      chunks.push(buf);
    }
  } catch (e) {
    // The client hung up mid-body: bad input, not an internal error.
    throw new AppError('request_aborted', 400, 'the connection closed before the whole request body arrived', {}, { cause: e });
  }
  if (tooLarge) {
    req.resume();
    throw new AppError('body_too_large', 413, `request body exceeds ${maxBytes} bytes`, { limitBytes: maxBytes });
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new AppError('invalid_json', 400, 'request body is not valid JSON');
  }
}
