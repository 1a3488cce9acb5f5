import type { HttpClient } from '../../lib/http-client.js';
import { tlsHttpClient } from '../../lib/tls.js';

/**
 * One JSON-over-HTTP call with a timeout, used by every demo process (the
 * supervisor's control client, the transfer app, the CLI). A network error
 * or timeout is returned as `status: 0` rather than thrown, so failover code
 * can treat "down" and "answered 503" alike without try/catch at each call.
 */
export interface JsonAnswer {
  /** The HTTP status; 0 when nothing answered (refused, reset, timed out). */
  readonly status: number;
  readonly body: unknown;
  /** Why nothing answered, when status is 0. */
  readonly error?: string;
}

export interface JsonRequest {
  readonly method?: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

/** Made on first use, after the process's main has set its TLS (lib/tls.ts): https URLs then trust its CA. Idle sockets do not hold the process open. */
let client: HttpClient | undefined;

export async function fetchJson(url: string, req: JsonRequest): Promise<JsonAnswer> {
  const headers: Record<string, string> = { ...req.headers };
  const sent = req.body === undefined ? undefined : JSON.stringify(req.body);
  if (sent !== undefined) headers['content-type'] = 'application/json';
  try {
    client ??= tlsHttpClient({});
    const res = await client.request({ method: req.method ?? 'GET', url, headers, timeoutMs: req.timeoutMs, ...(sent === undefined ? {} : { body: sent }) });
    let body: unknown = res.text;
    try {
      body = res.text === '' ? null : (JSON.parse(res.text) as unknown);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body };
  } catch (e) {
    return { status: 0, body: null, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

/** The `error.code` of a JSON error body, if it has one. */
export function errorCode(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The `error.message` of a JSON error body, or a short rendering of whatever came back. */
export function errorMessage(a: JsonAnswer): string {
  if (a.status === 0) return a.error ?? 'no answer';
  const msg = (a.body as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof msg === 'string' ? `${a.status} ${msg}` : `${a.status} ${JSON.stringify(a.body).slice(0, 200)}`;
}

