/**
 * A small builder of OpenAPI 3.1 documents. Each service describes its
 * routes once (store/api/openapi.ts, coordinator/service/openapi.ts,
 * participant/openapi.ts): the request schemas are the very objects its ajv
 * validators were compiled from (`schemaOf`), so the document cannot drift
 * from what the server checks; the response schemas are written beside them,
 * and test/openapi/ checks real answers against them.
 *
 * Every error answer has one shape, `{"error": {"code", "message", ...}}`
 * (lib/express.ts, lib/http.ts); an operation lists its error codes by
 * status, and the document gives each status a schema whose `code` is one
 * of them, so an undocumented code fails validation.
 */
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import { AppError } from './errors.js';
import { GUARD_ERRORS, STATE_CHANGING_GUARD_ERRORS } from './http-guard.js';

/** The one ajv the request schemas are compiled with (the coordinator's, the participants', the demo's). */
export const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });

function describe(errors: readonly ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (e === undefined) return 'invalid request';
  const where = e.instancePath === '' ? 'body' : e.instancePath.slice(1).replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') return `${where}: unknown field ${String((e.params as { additionalProperty?: string }).additionalProperty)}`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** Validates with a compiled schema; throws 400 `invalid_request` naming the first problem. */
export function check<T>(validate: ValidateFunction, value: unknown): T {
  if (!validate(value)) throw new AppError('invalid_request', 400, describe(validate.errors));
  return value as T;
}

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1), as a plain object. */
export type JsonSchema = Readonly<Record<string, unknown>>;

export type HttpMethod = 'get' | 'put' | 'post' | 'delete';

export interface ParamDoc {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

/** One success answer: a JSON body, or text of the given media type (metrics, server-sent events). */
export interface ResponseDoc {
  readonly description: string;
  readonly json?: JsonSchema;
  readonly text?: 'text/plain' | 'text/event-stream';
}

/** Error codes by HTTP status. */
export type ErrorCodes = Readonly<Record<number, readonly string[]>>;

export interface RouteDoc {
  readonly method: HttpMethod;
  /** OpenAPI form: `/v1/transactions/{id}`. Path parameters are strings unless `params` says more. */
  readonly path: string;
  /** The server's own pattern when it is not `path` with `{x}` as `:x` or `*x` (a route that matches more, then checks). */
  readonly routerPath?: string;
  readonly summary: string;
  readonly description?: string;
  readonly params?: readonly ParamDoc[];
  /** A JSON request body: the validator's own schema (`schemaOf`). */
  readonly body?: JsonSchema;
  /** Whether the body may be left out (an empty body reads as `{}` on the coordinator and participants). */
  readonly bodyOptional?: boolean;
  /** Answers by status that are not the shared error body: the successes (and /readyz's 503). */
  readonly ok: Readonly<Record<number, ResponseDoc>>;
  /** This route's error codes by status, besides the service's `commonErrors`. */
  readonly errors?: ErrorCodes;
}

export interface ApiDoc {
  readonly title: string;
  readonly version: string;
  readonly description: string;
  /** Errors any route of this service may answer, merged into each operation. */
  readonly commonErrors: ErrorCodes;
  readonly routes: readonly RouteDoc[];
}

/** The parts of an OpenAPI document the tests and tools read; the rest is plain JSON. */
export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly paths: Readonly<Record<string, Readonly<Record<string, OpenApiOperation>>>>;
  readonly components: { readonly schemas: Readonly<Record<string, JsonSchema>> };
}

export interface OpenApiOperation {
  readonly summary: string;
  readonly operationId: string;
  readonly 'x-router-path'?: string;
  readonly responses: Readonly<Record<string, { readonly description: string; readonly content?: Readonly<Record<string, { readonly schema: JsonSchema }>> }>>;
  readonly [field: string]: unknown;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad input',
  403: 'Refused',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Too large',
  414: 'Request target too long',
  415: 'Not JSON: state-changing routes take application/json only',
  429: 'Over a capacity limit',
  500: 'A bug, or a corrupt stored value',
  503: 'Not available now; retry (usually with Retry-After)',
  504: 'No answer in time; the outcome may be unknown',
};

/** The object a validator was compiled from: the document shows exactly what the server checks. */
export function schemaOf(validate: ValidateFunction): JsonSchema {
  const s: AnySchema = validate.schema;
  if (typeof s !== 'object') throw new Error('a request schema must be an object schema');
  return s as JsonSchema;
}

/** The error body, with `code` limited to `codes` when given. */
export function errorBody(codes?: readonly string[]): JsonSchema {
  const code = codes === undefined ? { type: 'string', pattern: '^[a-z][a-z0-9_]*$' } : { enum: [...codes].sort() };
  return {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        description: 'Further fields are details of the error (limits, ids, revisions).',
        required: ['code', 'message'],
        properties: { code, message: { type: 'string' } },
      },
    },
  };
}

/** Query parameters from an object schema of the query (its properties; `required` as listed). */
export function queryParams(schema: JsonSchema, descriptions: Readonly<Record<string, string>> = {}): ParamDoc[] {
  const props = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema['required'] ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const d = descriptions[name];
    return { name, in: 'query', required: required.has(name), schema: s, ...(d === undefined ? {} : { description: d }) };
  });
}

/** An object schema with every listed property required and no other allowed; `optional` ones may be absent. */
export function strictObject(props: Readonly<Record<string, JsonSchema>>, optional: readonly string[] = []): JsonSchema {
  return { type: 'object', required: Object.keys(props).filter((k) => !optional.includes(k)), properties: props, additionalProperties: false };
}

/** `GET /openapi.json`, which every service serves. */
export const OPENAPI_ROUTE: RouteDoc = {
  method: 'get',
  path: '/openapi.json',
  summary: 'This document (OpenAPI 3.1)',
  ok: { 200: { description: 'The OpenAPI document', json: { type: 'object', required: ['openapi', 'info', 'paths'], properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } } } } },
};

/** A Prometheus text exposition route. */
export function metricsRoute(path: string): RouteDoc {
  return { method: 'get', path, summary: 'Metrics, Prometheus text format 0.0.4', ok: { 200: { description: 'Prometheus text', text: 'text/plain' } } };
}

/**
 * `GET /readyz` (lib/readiness.ts): 200 `{ready: true, ...}` while the
 * process can serve, 503 `{ready: false, reason, ...}` when not. Liveness is
 * `/healthz`; each service says what ready means for it in `description`.
 */
export function readyzRoute(description: string): RouteDoc {
  return {
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: can this process serve now',
    description,
    ok: {
      200: { description: 'Ready; other fields say what was checked', json: { type: 'object', required: ['ready'], properties: { ready: { const: true } } } },
      503: { description: 'Not ready: `reason` says why', json: { type: 'object', required: ['ready', 'reason'], properties: { ready: { const: false }, reason: { type: 'string' } } } },
    },
  };
}

/** `/v1/kv/{key}` -> `/v1/kv/:key`, the form the coverage tests compare with a server's routes. */
export function routerForm(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1');
}

export function buildOpenApi(api: ApiDoc): OpenApiDocument {
  const paths: Record<string, Record<string, OpenApiOperation>> = {};
  for (const r of api.routes) {
    const ops = (paths[r.path] ??= {});
    if (ops[r.method] !== undefined) throw new Error(`${r.method.toUpperCase()} ${r.path} is described twice`);
    ops[r.method] = operation(r, api.commonErrors);
  }
  return {
    openapi: '3.1.0',
    info: { title: api.title, version: api.version, description: api.description },
    paths,
    components: { schemas: { ErrorBody: errorBody() } },
  };
}

function operation(r: RouteDoc, common: ErrorCodes): OpenApiOperation {
  const declared = new Set((r.params ?? []).filter((p) => p.in === 'path').map((p) => p.name));
  const implicit: ParamDoc[] = [...r.path.matchAll(/\{([^}]+)\}/g)]
    .map((m) => m[1] as string)
    .filter((name) => !declared.has(name))
    .map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
  const params = [...implicit, ...(r.params ?? [])].map((p) => (p.in === 'path' ? { ...p, required: true } : p));
  return {
    summary: r.summary,
    operationId: operationId(r),
    ...(r.description === undefined ? {} : { description: r.description }),
    ...(r.routerPath === undefined ? {} : { 'x-router-path': r.routerPath }),
    ...(params.length === 0 ? {} : { parameters: params }),
    ...(r.body === undefined ? {} : { requestBody: { required: r.bodyOptional !== true, content: { 'application/json': { schema: r.body } } } }),
    responses: responses(r, common),
  };
}

function operationId(r: RouteDoc): string {
  const words = r.path
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== '')
    .map((w) => w[0]?.toUpperCase() + w.slice(1));
  return r.method + words.join('');
}

function responses(r: RouteDoc, common: ErrorCodes): OpenApiOperation['responses'] {
  const out: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> }> = {};
  for (const [status, d] of Object.entries(r.ok)) {
    const content = d.json !== undefined ? { 'application/json': { schema: d.json } } : d.text !== undefined ? { [d.text]: { schema: { type: 'string' } } } : undefined;
    out[status] = content === undefined ? { description: d.description } : { description: d.description, content };
  }
  // What the HTTP guard (lib/http-guard.ts) answers before any route, on every server.
  const guard = r.method === 'get' ? GUARD_ERRORS : { ...GUARD_ERRORS, ...STATE_CHANGING_GUARD_ERRORS };
  for (const [status, codes] of mergeErrors(common, guard, r.errors ?? {})) {
    out[String(status)] = { description: `${STATUS_TEXT[status] ?? 'Error'}: ${codes.join(', ')}`, content: { 'application/json': { schema: errorBody(codes) } } };
  }
  return out;
}

function mergeErrors(...sources: readonly ErrorCodes[]): [number, string[]][] {
  const merged = new Map<number, Set<string>>();
  for (const src of sources) {
    for (const [status, codes] of Object.entries(src)) {
      const set = merged.get(Number(status)) ?? new Set<string>();
      for (const c of codes) set.add(c);
      merged.set(Number(status), set);
    }
  }
  return [...merged.entries()].sort((x, y) => x[0] - y[0]).map(([s, codes]) => [s, [...codes].sort()]);
}
