/**
 * Auth routes of the store API (etcd's `auth`, `user` and `role` calls).
 * Changes run on the leader through the log as `auth` commands; passwords
 * are hashed there before proposing (auth-token.ts), so none enters the log.
 * Every route but authenticate and status is root only once auth is on
 * (auth-check.ts ROUTE_POLICIES); before that anyone may prepare users and
 * roles, as with etcd.
 *
 *   POST /v1/auth/authenticate {name, password, ttlMs?}  -> {token, expiresAtMs}
 *   GET  /v1/auth/status                                  -> {enabled, authRevision}
 *   POST /v1/auth/enable | /v1/auth/disable
 *   GET|POST /v1/auth/users, GET|DELETE /v1/auth/users/:name,
 *   POST /v1/auth/users/:name/password, POST /v1/auth/users/:name/roles,
 *   DELETE /v1/auth/users/:name/roles/:role
 *   GET|POST /v1/auth/roles, GET|DELETE /v1/auth/roles/:name,
 *   POST /v1/auth/roles/:name/permissions, POST /v1/auth/roles/:name/permissions/revoke
 */
import { AppError } from '../../lib/errors.js';
import type { RouteContext, Router } from '../../lib/http.js';
import { AUTH_LIMITS, checkAuthOp, ROOT } from '../kv/auth.js';
import type { AuthRole } from '../kv/auth.js';
import type { AuthOp, KvResult } from '../kv/types.js';
import { authenticateBody, nameBody, passwordBody, permissionBody, revokePermissionBody, roleBody, userAddBody } from './auth-schemas.js';
import { checkPassword, CREDENTIAL_LIMITS, DECOY_HASH, hashPassword, issueToken, newSecret, verifyPassword } from './auth-token.js';
import { kvFailureToError } from './errors.js';
import { ok, type RouteDeps } from './common.js';
import { checkBody } from './schemas.js';

const AUTH_STATUS: Readonly<Record<string, number>> = {
  user_exists: 409,
  role_exists: 409,
  role_already_granted: 409,
  role_not_granted: 409,
  root_user_missing: 409,
  root_required: 409,
  user_not_found: 404,
  role_not_found: 404,
  permission_not_granted: 404,
  too_many_users: 429,
  too_many_roles: 429,
  too_many_permissions: 429,
};

/** An auth command's answer: its new auth revision, or its failure as an HTTP error. */
function unwrapAuth(result: KvResult): Record<string, unknown> {
  if (result.ok) return { authRevision: (result as unknown as { authRevision: number }).authRevision };
  const status = AUTH_STATUS[result.error.code];
  if (status === undefined) throw kvFailureToError(result);
  const { code, message, ...details } = result.error;
  throw new AppError(code, status, message, details);
}

/** Runs an auth change on the leader: `op` is made there (hashes, the secret), checked (bad input never reaches the log) and proposed. */
function propose(deps: RouteDeps, req: RouteContext, body: unknown, op: () => Promise<AuthOp> | AuthOp): Promise<Record<string, unknown>> {
  return deps.onLeader(req, body, async () => {
    const checked = checkAuthOp(await op());
    if ('ok' in checked) throw kvFailureToError(checked);
    return unwrapAuth(await deps.node.write({ type: 'auth', auth: checked }));
  });
}

function nameParam(req: RouteContext, field = 'name'): string {
  const name = req.params[field] ?? '';
  if (!AUTH_LIMITS.namePattern.test(name)) throw new AppError('invalid_request', 400, `${field} must be 1..128 of A-Z a-z 0-9 _ . @ -`);
  return name;
}

function userView(deps: RouteDeps, name: string): { name: string; roles: readonly string[] } {
  const user = deps.node.kvState.auth.user(name);
  if (user === undefined) throw new AppError('user_not_found', 404, `no user ${name}`, { user: name });
  return { name: user.name, roles: user.roles };
}

function roleView(deps: RouteDeps, name: string): AuthRole {
  const role = deps.node.kvState.auth.role(name);
  if (role === undefined) throw new AppError('role_not_found', 404, `no role ${name}`, { role: name });
  return role;
}

/** Checks a user's password (scrypt, bounded per node) and issues a token signed with the cluster's secret. */
async function authenticate(deps: RouteDeps, req: RouteContext): Promise<Record<string, unknown>> {
  const body = checkBody<{ name: string; password: string; ttlMs?: number }>(authenticateBody, req.body);
  const auth = deps.node.kvState.auth;
  if (!auth.enabled) throw new AppError('auth_not_enabled', 409, 'auth is not enabled on this cluster (POST /v1/auth/enable)');
  const user = auth.user(body.name);
  // An unknown user costs a scrypt too, so the answer's time does not tell which names exist.
  const matches = await verifyPassword(checkPassword(body.password), user?.passwordHash ?? DECOY_HASH);
  // The table may have changed during the hash: issue for the user as it is now.
  const now = deps.node.kvState.auth.user(body.name);
  if (!matches || user === undefined || now === undefined || now.passwordHash !== user.passwordHash) {
    throw new AppError('invalid_credentials', 401, 'wrong user name or password');
  }
  const expiresAtMs = deps.clock.nowMs() + (body.ttlMs ?? CREDENTIAL_LIMITS.defaultTokenTtlMs);
  return { token: issueToken(auth.secret, now, expiresAtMs), expiresAtMs, user: now.name };
}

export function addAuthRoutes(r: Router, deps: RouteDeps): void {
  const { node } = deps;
  r.on('POST', '/v1/auth/authenticate', async (req) => ok(await authenticate(deps, req)), { body: true });
  r.on('GET', '/v1/auth/status', () => ok({ enabled: node.kvState.auth.enabled, authRevision: node.kvState.auth.revision }));
  r.on('POST', '/v1/auth/enable', async (req) => ok({ enabled: true, ...(await propose(deps, req, undefined, () => ({ op: 'enable', secret: newSecret() }))) }));
  r.on('POST', '/v1/auth/disable', async (req) => ok({ enabled: false, ...(await propose(deps, req, undefined, () => ({ op: 'disable' }))) }));
  addUserRoutes(r, deps);
  addRoleRoutes(r, deps);
}

function addUserRoutes(r: Router, deps: RouteDeps): void {
  const { node } = deps;
  r.on('GET', '/v1/auth/users', async () => {
    await node.linearizableBarrier();
    return ok({ users: node.kvState.auth.userList().map((u) => ({ name: u.name, roles: u.roles })) });
  });
  r.on('POST', '/v1/auth/users', async (req) => {
    const body = checkBody<{ name: string; password: string }>(userAddBody, req.body);
    const password = checkPassword(body.password);
    return ok({ added: body.name, ...(await propose(deps, req, body, async () => ({ op: 'userAdd', name: body.name, passwordHash: await hashPassword(password) }))) });
  }, { body: true });
  r.on('GET', '/v1/auth/users/:name', async (req) => {
    await node.linearizableBarrier();
    return ok(userView(deps, nameParam(req)));
  });
  r.on('DELETE', '/v1/auth/users/:name', async (req) => {
    const name = nameParam(req);
    return ok({ deleted: name, ...(await propose(deps, req, undefined, () => ({ op: 'userDelete', name }))) });
  });
  r.on('POST', '/v1/auth/users/:name/password', async (req) => {
    const name = nameParam(req);
    const password = checkPassword(checkBody<{ password: string }>(passwordBody, req.body).password);
    return ok({ changed: name, ...(await propose(deps, req, req.body, async () => ({ op: 'userPasswd', name, passwordHash: await hashPassword(password) }))) });
  }, { body: true });
  r.on('POST', '/v1/auth/users/:name/roles', async (req) => {
    const name = nameParam(req);
    const { role } = checkBody<{ role: string }>(roleBody, req.body);
    return ok({ user: name, granted: role, ...(await propose(deps, req, req.body, () => ({ op: 'userGrantRole', name, role }))) });
  }, { body: true });
  r.on('DELETE', '/v1/auth/users/:name/roles/:role', async (req) => {
    const name = nameParam(req);
    const role = nameParam(req, 'role');
    return ok({ user: name, revoked: role, ...(await propose(deps, req, undefined, () => ({ op: 'userRevokeRole', name, role }))) });
  });
}

function addRoleRoutes(r: Router, deps: RouteDeps): void {
  const { node } = deps;
  r.on('GET', '/v1/auth/roles', async () => {
    await node.linearizableBarrier();
    const root = node.kvState.auth.role(ROOT) as AuthRole;
    return ok({ roles: [root, ...node.kvState.auth.roleList()] });
  });
  r.on('POST', '/v1/auth/roles', async (req) => {
    const { name } = checkBody<{ name: string }>(nameBody, req.body);
    return ok({ added: name, ...(await propose(deps, req, req.body, () => ({ op: 'roleAdd', name }))) });
  }, { body: true });
  r.on('GET', '/v1/auth/roles/:name', async (req) => {
    await node.linearizableBarrier();
    return ok(roleView(deps, nameParam(req)));
  });
  r.on('DELETE', '/v1/auth/roles/:name', async (req) => {
    const name = nameParam(req);
    return ok({ deleted: name, ...(await propose(deps, req, undefined, () => ({ op: 'roleDelete', name }))) });
  });
  r.on('POST', '/v1/auth/roles/:name/permissions', async (req) => {
    const name = nameParam(req);
    const permission = checkBody<{ key: string; match: 'exact' | 'prefix'; perm: 'read' | 'write' | 'readwrite' }>(permissionBody, req.body);
    return ok({ role: name, granted: permission, ...(await propose(deps, req, req.body, () => ({ op: 'roleGrantPermission', name, permission }))) });
  }, { body: true });
  r.on('POST', '/v1/auth/roles/:name/permissions/revoke', async (req) => {
    const name = nameParam(req);
    const { key, match } = checkBody<{ key: string; match: 'exact' | 'prefix' }>(revokePermissionBody, req.body);
    return ok({ role: name, revoked: { key, match }, ...(await propose(deps, req, req.body, () => ({ op: 'roleRevokePermission', name, key, match }))) });
  }, { body: true });
}
