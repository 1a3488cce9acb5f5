/**
 * Bearer tokens in an OpenAPI document (lib/token-auth.ts): the `bearer`
 * security scheme, and on every route that is not public its 401 and 403
 * answers and a `security` requirement. A service documents them whether or
 * not it runs with a token file (without one they never come).
 */
import { routerForm, type ErrorCodes, type OpenApiDocument, type RouteDoc } from './openapi.js';
import type { RoutePolicy } from './token-auth.js';

export const TOKEN_ERRORS: ErrorCodes = { 401: ['unauthenticated', 'invalid_token', 'token_expired'], 403: ['forbidden'] };

function policyOfDoc(r: Pick<RouteDoc, 'method' | 'path' | 'routerPath'>, policies: Readonly<Record<string, RoutePolicy>>): RoutePolicy {
  return policies[`${r.method.toUpperCase()} ${r.routerPath ?? routerForm(r.path)}`] ?? 'admin';
}

function mergeCodes(a: ErrorCodes, b: ErrorCodes): ErrorCodes {
  const out: Record<number, string[]> = {};
  for (const src of [a, b]) for (const [status, codes] of Object.entries(src)) out[Number(status)] = [...new Set([...(out[Number(status)] ?? []), ...codes])];
  return out;
}

/** Adds the token refusals to every route that is not public under `policies` (a route missing there needs admin). */
export function withTokenErrors(routes: readonly RouteDoc[], policies: Readonly<Record<string, RoutePolicy>>): RouteDoc[] {
  return routes.map((r) => {
    const policy = policyOfDoc(r, policies);
    if (policy === 'public') return r;
    const role = policy === 'client' ? 'the client or admin role' : `the ${policy} role`;
    const note = `Needs a bearer token with ${role} when the service has a token file.`;
    return { ...r, description: r.description === undefined ? note : `${r.description}\n\n${note}`, errors: mergeCodes(r.errors ?? {}, TOKEN_ERRORS) };
  });
}

/** The document with the `bearer` scheme, and a security requirement on each operation that is not public. */
export function withBearerScheme(doc: OpenApiDocument, policies: Readonly<Record<string, RoutePolicy>>): OpenApiDocument {
  const paths: Record<string, Record<string, OpenApiDocument['paths'][string][string]>> = {};
  for (const [path, ops] of Object.entries(doc.paths)) {
    paths[path] = {};
    for (const [method, op] of Object.entries(ops)) {
      const routerPath = op['x-router-path'];
      const policy = policyOfDoc({ method: method as RouteDoc['method'], path, ...(routerPath === undefined ? {} : { routerPath }) }, policies);
      paths[path][method] = policy === 'public' ? { ...op, security: [] } : { ...op, security: [{ bearer: [] }] };
    }
  }
  const bearer = { type: 'http', scheme: 'bearer', description: 'A token from `raft2pc token create`, checked against the service\'s token file (--auth-tokens). Without a token file, no route needs one.' };
  return { ...doc, paths, components: { ...doc.components, securitySchemes: { bearer } } as OpenApiDocument['components'] };
}
