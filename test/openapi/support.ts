/**
 * What the OpenAPI tests share: the routes an express app registers (read
 * from its router stack), the routes a document describes, a structural
 * check of a document, and a checker that validates real answers against
 * the documented schema for their status.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type express from 'express';
import type { HttpApp } from '../../lib/http.js';
import { expect } from 'vitest';
import { routerForm, type JsonSchema, type OpenApiDocument } from '../../lib/openapi.js';

/** A route as `GET /v1/transactions/:id`, parameters named as the server names them. */
export type RouteKey = string;

interface Layer {
  readonly route?: { readonly path: string | string[]; readonly methods: Readonly<Record<string, boolean>> };
  readonly handle?: { readonly stack?: readonly Layer[] };
  readonly rawPath?: unknown;
}

/** Every route of an express app, nested routers included (mounted at their path), or of a lib/http.ts app (its route table), as `METHOD /path`. */
export function expressRoutes(app: express.Express | HttpApp): RouteKey[] {
  if (!('router' in app)) return routerKeys(app.routeTable());
  const router = (app as unknown as { router: { stack: readonly Layer[] } }).router;
  return collect(router.stack, '').sort();
}

function collect(stack: readonly Layer[], prefix: string): RouteKey[] {
  const out: RouteKey[] = [];
  for (const layer of stack) {
    if (layer.route !== undefined) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const p of paths) for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') out.push(`${m.toUpperCase()} ${prefix}${p}`);
    } else if (layer.handle?.stack !== undefined) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...collect(layer.handle.stack, prefix + mount));
    }
  }
  return out;
}

/** The store router's patterns with `*tail` written as `:tail`. */
export function routerKeys(table: readonly { readonly method: string; readonly pattern: string }[]): RouteKey[] {
  return table.map((r) => `${r.method} ${r.pattern.replace(/\/\*([^/]+)$/, '/:$1')}`).sort();
}

/** The routes a document describes, in the servers' form (its `x-router-path` where given). */
export function documentedRoutes(doc: OpenApiDocument): RouteKey[] {
  const out: RouteKey[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const routerPath = op['x-router-path'] ?? routerForm(path);
      out.push(`${method.toUpperCase()} ${routerPath.replace(/\/\*([^/]+)$/, '/:$1')}`);
    }
  }
  return out.sort();
}

function newAjv(): Ajv2020 {
  return new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
}

/**
 * What an OpenAPI 3.1 reader needs of the document: version and info,
 * unique operation ids, every `{param}` of a path declared as a required
 * path parameter, responses on every operation, and every schema valid
 * (compiled by ajv in strict mode, 2020-12).
 */
export function expectWellFormed(doc: OpenApiDocument): void {
  expect(doc.openapi).toBe('3.1.0');
  expect(doc.info.title).not.toBe('');
  const ids = new Set<string>();
  const ajv = newAjv();
  for (const [path, ops] of Object.entries(doc.paths)) {
    expect(path.startsWith('/'), path).toBe(true);
    for (const [method, op] of Object.entries(ops)) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(ids.has(op.operationId), `${where}: operationId ${op.operationId} is unique`).toBe(false);
      ids.add(op.operationId);
      const params = (op['parameters'] ?? []) as { name: string; in: string; required?: boolean; schema: JsonSchema }[];
      for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])) {
        expect(params.some((p) => p.in === 'path' && p.name === name && p.required === true), `${where}: path parameter ${name}`).toBe(true);
      }
      const schemas = [...params.map((p) => p.schema), ...Object.values(op.responses).flatMap((r) => Object.values(r.content ?? {}).map((c) => c.schema))];
      const body = op['requestBody'] as { content: Record<string, { schema: JsonSchema }> } | undefined;
      if (body !== undefined) schemas.push(...Object.values(body.content).map((c) => c.schema));
      for (const s of schemas) expect(() => ajv.compile(s), where).not.toThrow();
      expect(Object.keys(op.responses).length, `${where} has responses`).toBeGreaterThan(0);
    }
  }
}

/** An answer as supertest gives it. */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  readonly text: string;
}

/**
 * Validates answers against a document: the status must be documented for
 * the operation, the content type must be the documented one, and a JSON
 * body must match its schema. Remembers what it saw, so a test can say
 * which operations it covered.
 */
export class ResponseChecker {
  private readonly ajv = newAjv();
  private readonly compiled = new Map<string, ValidateFunction>();
  readonly seen = new Set<string>();

  constructor(readonly doc: OpenApiDocument) {}

  /**
   * `path` is the documented path (`/v1/transactions/{id}`). The answer must
   * have `status` (and, for an error, `code`) and match the document.
   */
  check<A extends Answer>(method: string, path: string, res: A, status: number, code?: string): A {
    const where = `${method.toUpperCase()} ${path} -> ${res.status}`;
    expect(res.status, `${method.toUpperCase()} ${path}: ${res.text.slice(0, 300)}`).toBe(status);
    if (code !== undefined) expect((res.body as { error?: { code?: string } }).error?.code, where).toBe(code);
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    expect(op, `${method.toUpperCase()} ${path} is documented`).toBeDefined();
    const documented = op?.responses[String(res.status)];
    expect(documented, `${where} is a documented status (body: ${res.text.slice(0, 300)})`).toBeDefined();
    const [mediaType, media] = Object.entries(documented?.content ?? {})[0] ?? [];
    const contentType = String(res.headers['content-type'] ?? '');
    if (mediaType === undefined) return res;
    expect(contentType.startsWith(mediaType), `${where}: content type ${contentType} is ${mediaType}`).toBe(true);
    if (mediaType === 'application/json' && media !== undefined) this.validate(`${where}`, media.schema, res.body);
    this.seen.add(where);
    return res;
  }

  /** A path with no route: the shared error body with `code`. */
  checkUnrouted<A extends Answer>(res: A, status: number, code: string): A {
    expect(res.status).toBe(status);
    const schema = this.doc.components.schemas['ErrorBody'];
    expect(schema).toBeDefined();
    this.validate(`unrouted ${status}`, schema as JsonSchema, res.body);
    expect((res.body as { error: { code: string } }).error.code).toBe(code);
    return res;
  }

  private validate(where: string, schema: JsonSchema, body: unknown): void {
    const key = JSON.stringify(schema);
    let v = this.compiled.get(key);
    if (v === undefined) {
      v = this.ajv.compile(schema);
      this.compiled.set(key, v);
    }
    const ok = v(body);
    expect(ok, `${where}: body ${JSON.stringify(body).slice(0, 400)} does not match the document: ${this.ajv.errorsText(v.errors)}`).toBe(true);
  }
}
