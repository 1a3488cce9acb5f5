/**
 * One JSON-over-HTTP attempt through an injected `HttpRequester`, turned
 * into a value: an answer (any status) or no answer, with the client code
 * that says why. Failover and retries are the callers' business; this file
 * only knows what one attempt can end with.
 */
import { HttpClientError, type HttpRequester } from '../lib/http-client.js';
import type { ClientCode } from './errors.js';

export interface JsonCall {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

export type Attempt =
  | {
      readonly kind: 'answer';
      readonly status: number;
      /** The parsed JSON body; undefined when the body was not JSON. */
      readonly body: unknown;
      readonly text: string;
      readonly server: string;
    }
  | { readonly kind: 'none'; readonly code: ClientCode; readonly message: string; readonly server: string; readonly cause: unknown };

/** What `HttpClientError` codes mean to a caller: only `connection` and `timeout` are worth another try. */
const NO_ANSWER_CODE: Readonly<Record<string, ClientCode>> = {
  connection: 'unavailable',
  timeout: 'timeout',
  closed: 'closed',
  response_too_large: 'invalid_response',
  invalid_url: 'invalid_config',
  invalid_request: 'invalid_config',
};

export async function attemptJson(http: HttpRequester, server: string, call: JsonCall): Promise<Attempt> {
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let body: string | undefined;
  if (call.body !== undefined) {
    body = JSON.stringify(call.body);
    headers['content-type'] = 'application/json';
  }
  try {
    const res = await http.request({ method: call.method, url: call.url, headers, timeoutMs: call.timeoutMs, ...(body === undefined ? {} : { body }) });
    return { kind: 'answer', status: res.status, body: parseJson(res.text), text: res.text, server };
  } catch (e) {
    // An injected requester that breaks its contract (throws something else) is treated as "down".
    const code = e instanceof HttpClientError ? (NO_ANSWER_CODE[e.code] ?? 'unavailable') : 'unavailable';
    return { kind: 'none', code, message: e instanceof Error ? e.message : String(e), server, cause: e };
  }
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Worth another try, here or at another server: nothing answered, or the answer says "not now". */
export function worthRetrying(a: Attempt): boolean {
  if (a.kind === 'none') return a.code === 'unavailable' || a.code === 'timeout';
  return a.status === 502 || a.status === 503 || a.status === 504;
}

export interface ErrorBody {
  /** `error.code`, when the body is the project's error shape. */
  readonly code: string | undefined;
  readonly message: string;
  /** Every other field of `error`. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** Reads `{"error": {"code", "message", ...details}}`, or says what came back instead. */
export function errorBody(a: Extract<Attempt, { kind: 'answer' }>): ErrorBody {
  const e = (a.body as { error?: unknown } | null | undefined)?.error;
  if (e === null || typeof e !== 'object') return { code: undefined, message: `${a.status} ${a.text.slice(0, 200)}`, details: {} };
  const { code, message, ...details } = e as Record<string, unknown>;
  return { code: typeof code === 'string' ? code : undefined, message: typeof message === 'string' ? message : `${a.status}`, details };
}

/** A 5xx with no code of ours (a proxy, a load balancer): the code a client gives it. */
export function codeOfBareStatus(status: number): ClientCode {
  if (status === 504) return 'timeout';
  if (status === 502 || status === 503) return 'unavailable';
  return 'invalid_response';
}
