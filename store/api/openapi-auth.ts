/**
 * The store's auth routes in its OpenAPI document (store/api/auth.ts), and
 * the 401/403 answers every non-public route may give once auth is on
 * (the policies of auth-check.ts).
 */
import { schemaOf, strictObject, type ErrorCodes, type JsonSchema, type RouteDoc } from '../../lib/openapi.js';
import { AUTH_LIMITS } from '../kv/auth.js';
import { policyOf } from './auth-check.js';
import { authenticateBody, nameBody, passwordBody, permissionBody, revokePermissionBody, roleBody, userAddBody } from './auth-schemas.js';

const int = { type: 'integer', minimum: 0 } as const;
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const revision = { authRevision: { ...int, description: "The auth table's revision after the change." } };
const permission = strictObject({ key: str, match: { enum: ['exact', 'prefix'] }, perm: { enum: ['read', 'write', 'readwrite'] } });
const role = strictObject({ name: str, permissions: { type: 'array', items: permission } });
const user = strictObject({ name: str, roles: { type: 'array', items: str } });

const LEADER: ErrorCodes = { 503: ['no_leader', 'busy', 'proposal_dropped'], 504: ['request_timeout', 'outcome_unknown'] };
const BODY: ErrorCodes = { 400: ['invalid_json', 'request_aborted', 'invalid_request', 'invalid_command'], 413: ['body_too_large'] };
const HASHING: ErrorCodes = { 429: ['too_many_authentications'] };

function merge(...sets: ErrorCodes[]): ErrorCodes {
  const out: Record<number, string[]> = {};
  for (const s of sets) for (const [status, codes] of Object.entries(s)) out[Number(status)] = [...new Set([...(out[Number(status)] ?? []), ...codes])];
  return out;
}

function change(path: string, summary: string, answer: Record<string, JsonSchema>, errors: ErrorCodes, body?: JsonSchema): RouteDoc {
  return { method: 'post', path, summary, ...(body === undefined ? {} : { body }), ok: { 200: { description: 'Done', json: strictObject({ ...answer, ...revision }) } }, errors: merge(LEADER, body === undefined ? {} : BODY, errors) };
}

export function authRouteDocs(): RouteDoc[] {
  const nameParam = { name: 'name', in: 'path', schema: { type: 'string', pattern: AUTH_LIMITS.namePattern.source } } as const;
  const missingUser: ErrorCodes = { 404: ['user_not_found'] };
  const missingRole: ErrorCodes = { 404: ['role_not_found'] };
  return [
    {
      method: 'post',
      path: '/v1/auth/authenticate',
      summary: 'Trade a user name and password for an expiring token (send it as `Authorization: Bearer <token>`)',
      description: 'The token is signed with the cluster\'s secret (any member checks it), expires after `ttlMs` (default 5 minutes, at most an hour) and is revoked by a change of the user\'s password or roles.',
      body: schemaOf(authenticateBody),
      ok: { 200: { description: 'A token', json: strictObject({ token: str, expiresAtMs: int, user: str }) } },
      errors: merge(BODY, HASHING, { 401: ['invalid_credentials'], 409: ['auth_not_enabled'] }),
    },
    { method: 'get', path: '/v1/auth/status', summary: 'Whether auth is enabled', ok: { 200: { description: 'Status', json: strictObject({ enabled: bool, authRevision: int }) } } },
    change('/v1/auth/enable', 'Enable auth (needs a user `root`, which gets the root role)', { enabled: { const: true } }, { 409: ['root_user_missing'] }),
    change('/v1/auth/disable', 'Disable auth: every caller may do everything again', { enabled: { const: false } }, {}),
    { method: 'get', path: '/v1/auth/users', summary: 'Users and their roles', ok: { 200: { description: 'Users', json: strictObject({ users: { type: 'array', items: user } }) } }, errors: LEADER },
    { ...change('/v1/auth/users', 'Add a user (the password is hashed with scrypt before it is proposed)', { added: str }, merge(HASHING, { 409: ['user_exists'], 429: ['too_many_users'] }), schemaOf(userAddBody)) },
    { method: 'get', path: '/v1/auth/users/{name}', summary: 'One user', params: [nameParam], ok: { 200: { description: 'The user', json: user } }, errors: merge(LEADER, missingUser, { 400: ['invalid_request'] }) },
    { ...change('/v1/auth/users/{name}', 'Delete a user', { deleted: str }, merge(missingUser, { 400: ['invalid_request'], 409: ['root_required'] })), method: 'delete', params: [nameParam] },
    { ...change('/v1/auth/users/{name}/password', "Change a user's password (revokes its tokens)", { changed: str }, merge(missingUser, HASHING), schemaOf(passwordBody)), params: [nameParam] },
    { ...change('/v1/auth/users/{name}/roles', 'Grant a role to a user (revokes its tokens)', { user: str, granted: str }, merge(missingUser, missingRole, { 409: ['role_already_granted'], 429: ['too_many_roles'] }), schemaOf(roleBody)), params: [nameParam] },
    { ...change('/v1/auth/users/{name}/roles/{role}', 'Revoke a role from a user (revokes its tokens)', { user: str, revoked: str }, merge(missingUser, { 400: ['invalid_request'], 409: ['role_not_granted', 'root_required'] })), method: 'delete', params: [nameParam, { name: 'role', in: 'path', schema: str }] },
    { method: 'get', path: '/v1/auth/roles', summary: 'Roles and their permissions (the built-in root first)', ok: { 200: { description: 'Roles', json: strictObject({ roles: { type: 'array', items: role } }) } }, errors: LEADER },
    change('/v1/auth/roles', 'Add a role', { added: str }, { 409: ['role_exists'], 429: ['too_many_roles'] }, schemaOf(nameBody)),
    { method: 'get', path: '/v1/auth/roles/{name}', summary: 'One role', params: [nameParam], ok: { 200: { description: 'The role', json: role } }, errors: merge(LEADER, missingRole, { 400: ['invalid_request'] }) },
    { ...change('/v1/auth/roles/{name}', 'Delete a role (users that had it lose it)', { deleted: str }, merge(missingRole, { 400: ['invalid_request'], 409: ['root_required'] })), method: 'delete', params: [nameParam] },
    { ...change('/v1/auth/roles/{name}/permissions', 'Grant a permission: a key (`exact`) or prefix (`prefix`), `*` for one whole path segment', { role: str, granted: permission }, merge(missingRole, { 409: ['root_required'], 429: ['too_many_permissions'] }), schemaOf(permissionBody)), params: [nameParam] },
    { ...change('/v1/auth/roles/{name}/permissions/revoke', 'Revoke a permission', { role: str, revoked: strictObject({ key: str, match: { enum: ['exact', 'prefix'] } }) }, merge(missingRole, { 404: ['permission_not_granted'], 409: ['root_required'] }), schemaOf(revokePermissionBody)), params: [nameParam] },
  ];
}

/** The route's router pattern: its own, or the path with `{x}` as `:x` (or `*x` for a tail). */
function policyOfDoc(r: RouteDoc): ReturnType<typeof policyOf> {
  const method = r.method.toUpperCase();
  if (r.routerPath !== undefined) return policyOf(method, r.routerPath);
  const colon = policyOf(method, r.path.replace(/\{(\w+)\}/g, ':$1'));
  return colon !== 'root' ? colon : policyOf(method, r.path.replace(/\{(\w+)\}$/, '*$1').replace(/\{(\w+)\}/g, ':$1'));
}

/** Adds what auth answers to a route: 401 for a missing, bad or expired token, 403 for a missing permission. */
export function withAuthErrors(r: RouteDoc): RouteDoc {
  const policy = policyOfDoc(r);
  if (policy === 'public') return r;
  const auth: ErrorCodes = policy === 'user' ? { 401: ['unauthenticated', 'token_expired'] } : { 401: ['unauthenticated', 'token_expired'], 403: ['permission_denied'] };
  return { ...r, errors: merge(r.errors ?? {}, auth) };
}
