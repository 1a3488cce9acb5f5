/**
 * Raw HTTP calls for the contract tests: status, headers and the parsed body,
 * with no client-side retries or interpretation (the StoreClient does those).
 */

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

export interface HttpOptions {
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as it is (takes precedence over `json`). */
  readonly raw?: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export async function http(base: string, method: string, path: string, opts: HttpOptions = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | Uint8Array | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.json !== undefined) body = JSON.stringify(opts.json);
  if (body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** The body as a record, for reading fields in assertions. */
export function obj(reply: HttpReply): Record<string, unknown> {
  const j = reply.json;
  if (typeof j !== 'object' || j === null || Array.isArray(j)) {
    throw new Error(`expected a JSON object, got ${reply.status} ${reply.text.slice(0, 200)}`);
  }
  return j as Record<string, unknown>;
}

/** The `code` of a contract error body `{"error": {"code", "message", ...}}`, or undefined if the body has another shape. */
export function errorCode(reply: HttpReply): string | undefined {
  const j = reply.json as { error?: { code?: unknown; message?: unknown } } | undefined;
  const err = j?.error;
  if (typeof err !== 'object' || err === null) return undefined;
  if (typeof err.code !== 'string' || !/^[a-z][a-z0-9_]*$/.test(err.code) || typeof err.message !== 'string' || err.message === '') return undefined;
  return err.code;
}

/** Path of a key, percent-encoded segment by segment. */
export function kvPath(key: string, suffix = ''): string {
  return `/v1/kv/${encodeURIComponent(key)}${suffix}`;
}
