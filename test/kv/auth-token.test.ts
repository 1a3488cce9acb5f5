// Goal: the store's credentials and checks without a cluster: scrypt hashes
// verify only their password; a token verifies only under its secret and
// unchanged; the checks answer 401 unauthenticated / token_expired (expired
// or revoked) and 403 as documented; and the router is fail-closed: a route
// missing from ROUTE_POLICIES is root only.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors.js';
import type { PlainRequest } from '../../lib/http.js';
import { AuthRouter, authorizeCommand, callerOf, policyOf, type AuthDeps } from '../../store/api/auth-check.js';
import { hashPassword, issueToken, newSecret, readToken, verifyPassword } from '../../store/api/auth-token.js';
import { KvStateMachine, type KvCommand } from '../../store/kv/index.js';

function machine(): KvStateMachine {
  const kv = new KvStateMachine();
  const commands: KvCommand[] = [
    { type: 'auth', auth: { op: 'userAdd', name: 'root', passwordHash: 'scrypt$2$1$1$AA$BB' } },
    { type: 'auth', auth: { op: 'userAdd', name: 'u', passwordHash: 'scrypt$2$1$1$AA$BB' } },
    { type: 'auth', auth: { op: 'roleAdd', name: 'r' } },
    { type: 'auth', auth: { op: 'roleGrantPermission', name: 'r', permission: { key: 'app/', match: 'prefix', perm: 'readwrite' } } },
    { type: 'auth', auth: { op: 'userGrantRole', name: 'u', role: 'r' } },
    { type: 'auth', auth: { op: 'enable', secret: newSecret() } },
  ];
  commands.forEach((c, i) => expect(kv.apply(c, i + 1).result.ok).toBe(true));
  return kv;
}

function deps(kv: KvStateMachine, nowMs = 1_000): AuthDeps {
  return { node: { kvState: kv, linearizableBarrier: async () => undefined }, clock: { nowMs: () => nowMs, monotonicMs: () => nowMs } };
}

function req(token?: string): PlainRequest {
  return { method: 'GET', path: '/', query: new URLSearchParams(), headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, body: undefined };
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof AppError) return `${e.status} ${e.code}`;
    throw e;
  }
  return 'allowed';
}

describe('store credentials', () => {
  it('a scrypt hash verifies its password only; a malformed hash verifies nothing', async () => {
    const hash = await hashPassword('s3cret');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('s3cret', hash)).toBe(true);
    expect(await verifyPassword('s3cret!', hash)).toBe(false);
    expect(await verifyPassword('s3cret', 'plain')).toBe(false);
    expect(await verifyPassword('s3cret', hash.replace('$16384$', '$16383$'))).toBe(false);
  });

  it('a token reads back only under its own secret, unchanged', () => {
    const secret = newSecret();
    const token = issueToken(secret, { name: 'u', passwordHash: '', roles: [], revision: 7 }, 5_000);
    expect(readToken(secret, token)).toEqual({ user: 'u', revision: 7, expiresAtMs: 5_000 });
    expect(readToken(newSecret(), token)).toBeUndefined();
    const [prefix, payload, sig] = token.split('.') as [string, string, string];
    const other = Buffer.from(JSON.stringify({ u: 'root', r: 7, e: 5_000 })).toString('base64url');
    expect(readToken(secret, `${prefix}.${other}.${sig}`)).toBeUndefined();
    expect(readToken(secret, `${prefix}.${payload}.${sig}x`)).toBeUndefined();
    expect(readToken(secret, `${prefix}.${payload}`)).toBeUndefined();
    expect(readToken('', token)).toBeUndefined();
  });

  it('checks: missing, foreign, expired and revoked tokens; permissions by key', () => {
    const kv = machine();
    const user = kv.auth.user('u');
    const token = issueToken(kv.auth.secret, user!, 2_000);
    expect(refusal(() => callerOf(deps(kv), req()))).toBe('401 unauthenticated');
    expect(refusal(() => callerOf(deps(kv), req('junk')))).toBe('401 unauthenticated');
    expect(refusal(() => callerOf(deps(kv), req(issueToken(newSecret(), user!, 2_000))))).toBe('401 unauthenticated');
    expect(callerOf(deps(kv), req(token))).toEqual({ user: 'u', root: false });
    expect(refusal(() => callerOf(deps(kv, 2_000), req(token)))).toBe('401 token_expired');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'put', key: 'app/x', value: 'v' }))).toBe('allowed');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'put', key: 'other', value: 'v' }))).toBe('403 permission_denied');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'txn', compare: [{ key: 'other', target: 'version', op: '=', value: 0 }], success: [], failure: [] }))).toBe('403 permission_denied');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'range', prefix: 'app/' }))).toBe('allowed');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'range', prefix: 'ap' }))).toBe('403 permission_denied');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'alarmDisarm' }))).toBe('403 permission_denied');
    expect(refusal(() => authorizeCommand(deps(kv), req(token), { type: 'somethingNew', key: 'app/x' }))).toBe('403 permission_denied');
    // A role change revokes the token.
    kv.apply({ type: 'auth', auth: { op: 'userRevokeRole', name: 'u', role: 'r' } }, 100);
    expect(refusal(() => callerOf(deps(kv), req(token)))).toBe('401 token_expired');
    // Auth off: everything passes without a token.
    kv.apply({ type: 'auth', auth: { op: 'disable' } }, 101);
    expect(refusal(() => authorizeCommand(deps(kv), req(), { type: 'put', key: 'other', value: 'v' }))).toBe('allowed');
  });

  it('a route missing from the policy table is root only', async () => {
    expect(policyOf('GET', '/v1/something-new')).toBe('root');
    const kv = machine();
    const router = new AuthRouter({}, deps(kv));
    router.on('GET', '/v1/something-new', () => ({ status: 200, body: { ok: true } }));
    const token = issueToken(kv.auth.secret, kv.auth.user('u')!, 2_000);
    const rootToken = issueToken(kv.auth.secret, kv.auth.user('root')!, 2_000);
    const get = (t?: string): Promise<unknown> => router.dispatch({ ...req(t), path: '/v1/something-new' });
    await expect(get()).rejects.toMatchObject({ status: 401 });
    await expect(get(token)).rejects.toMatchObject({ status: 403, code: 'permission_denied' });
    await expect(get(rootToken)).resolves.toMatchObject({ status: 200 });
  });
});
