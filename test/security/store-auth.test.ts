// Goal: the store's users, roles and tokens on a real 3-node cluster
// (processes), set up with kvctl as an operator would: `user add root`,
// `auth setup-2pc`, `auth enable`. Then:
// - least privilege for 2PC: participant a writes its own vote and ack, and
//   gets 403 writing b's vote, a decision, a transaction record, a compacted
//   record or b's name claim, through every write route (put, CAS, delete,
//   txn, batch); nothing changes;
// - every route of the store, taken from its own OpenAPI document (so a new
//   route cannot be forgotten): no token, a garbage token, a token signed
//   with another secret and an expired token get 401; a token of the wrong
//   role gets 403; and nothing in the store changes;
// - a changed role set revokes older tokens, and a client with a user and
//   password authenticates again by itself;
// - a 2PC transaction (coordinator and two participants in this process,
//   each with its own credentials, through openTxStore) commits.
// Ports 29000-29002 (clients) and 29100-29102 (peers).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTxStore, parseStoreSpec, type OpenedStore } from '../../coordinator/txstore/index.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { issueToken, newSecret } from '../../store/api/auth-token.js';
import { StoreClient, StoreError } from '../../store/client/index.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { startCoordinator, startParticipant, type LocalParticipant } from '../twopc/support/inprocess.js';
import { waitFor } from '../support/wait.js';
import { startProcess } from './processes.js';

const BASE_PORT = 29000;
const PASSWORDS = { root: 'root-pw', coord: 'coord-pw', a: 'a-pw', b: 'b-pw' } as const;

let dir = '';
let cluster: LocalCluster;
let endpoints: string[] = [];
const closers: (() => Promise<void> | void)[] = [];

interface Answer {
  readonly status: number;
  readonly body: { error?: { code?: string }; [k: string]: unknown };
}

async function call(method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string>; base?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${opts.base ?? endpoints[0]}${path}`, { method, headers, signal: AbortSignal.timeout(15_000), ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) });
  // A watch that was let through would stream forever: its status is all a refusal test needs.
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, body: {} };
  }
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Answer['body'] };
}

async function tokenOf(user: keyof typeof PASSWORDS, ttlMs?: number): Promise<{ token: string; expiresAtMs: number }> {
  const r = await call('POST', '/v1/auth/authenticate', { body: { name: user, password: PASSWORDS[user], ...(ttlMs === undefined ? {} : { ttlMs }) } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as unknown as { token: string; expiresAtMs: number };
}

/** Runs kvctl as a process against the cluster; resolves with its exit code and output. */
async function kvctl(args: readonly string[], user?: keyof typeof PASSWORDS): Promise<{ code: number | null; out: string }> {
  const auth = user === undefined ? [] : ['--user', `${user}:${PASSWORDS[user]}`];
  const p = startProcess(`kvctl ${args.join(' ')}`, 'store/cli/kvctl', ['--endpoints', endpoints.join(','), ...auth, ...args]);
  const code = await Promise.race([p.exited, new Promise<null>((_, reject) => setTimeout(() => reject(new Error(`kvctl ${args.join(' ')} hung: ${p.output()}`)), 60_000).unref())]);
  return { code, out: p.output() };
}

function client(user?: keyof typeof PASSWORDS): StoreClient {
  const c = new StoreClient({ endpoints, deadlineMs: 10_000, ...(user === undefined ? {} : { user, password: PASSWORDS[user] }) });
  closers.push(() => c.close());
  return c;
}

/** What every refused request must leave alone: keys, auth table, leases, members (as root sees them). */
async function observable(rootToken: string): Promise<string> {
  const parts = await Promise.all(['/v1/kv?prefix=', '/v1/auth/users', '/v1/auth/roles', '/v1/auth/status', '/v1/leases', '/v1/members', '/v1/alarms'].map((p) => call('GET', p, { token: rootToken })));
  for (const p of parts) expect(p.status).toBe(200);
  const status = await call('GET', '/v1/status');
  const leases = (parts[4]?.body['leases'] as { id: number; keys: number }[]).map((l) => ({ id: l.id, keys: l.keys }));
  return JSON.stringify([status.body['revision'], parts[0]?.body, parts[1]?.body, parts[2]?.body, parts[3]?.body, leases, parts[5]?.body, parts[6]?.body]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(os.tmpdir(), 'store-auth-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir: join(dir, 'store'), logToFiles: true });
  cluster.start();
  endpoints = cluster.endpoints;
  await cluster.waitForLeader(30_000);
  // Set up as an operator would, with kvctl processes: before auth is on, no credential is needed.
  expect((await kvctl(['user', 'add', 'root', PASSWORDS.root])).code).toBe(0);
  const setup = await kvctl(['auth', 'setup-2pc', '--coordinator', `coord:${PASSWORDS.coord}`, '--participant', `a:${PASSWORDS.a}`, '--participant', `b:${PASSWORDS.b}`]);
  expect(setup.code, setup.out).toBe(0);
  expect((await kvctl(['auth', 'enable'])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await cluster?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('store auth on a real cluster', () => {
  it('kvctl: status, users and roles need root; a participant is refused with permission_denied', async () => {
    const anonymous = await kvctl(['user', 'list']);
    expect(anonymous.code).toBe(1);
    expect(anonymous.out).toContain('unauthenticated');
    const status = await kvctl(['auth', 'status'], 'root');
    expect(status.out).toContain('Authentication Status: true');
    const users = await kvctl(['user', 'list'], 'root');
    expect(users.code, users.out).toBe(0);
    for (const u of ['root', 'coord', 'a', 'b']) expect(users.out).toMatch(new RegExp(`^${u}\\s`, 'm'));
    const role = await kvctl(['role', 'get', '2pc-participant-a'], 'root');
    expect(role.out).toContain('"tx/*/vote/a"');
    const forged = await kvctl(['put', 'tx/t0/vote/b', 'forged'], 'a');
    expect(forged.code).toBe(1);
    expect(forged.out).toContain('permission_denied');
    expect((await kvctl(['user', 'list'], 'a')).out).toContain('permission_denied');
  }, 120_000);

  it("least privilege: participant a writes its own vote and ack and nothing of b's or the coordinator's", async () => {
    const root = await tokenOf('root');
    const a = client('a');
    const coord = client('coord');
    expect((await coord.cas('tx/t1', null, '{"record":1}')).succeeded).toBe(true);
    expect((await a.cas('tx/t1/vote/a', null, '{"vote":"yes"}')).succeeded).toBe(true);
    expect((await a.cas('tx/t1/ack/a', null, '1')).succeeded).toBe(true);
    expect((await a.range('tx/t1/')).kvs.map((kv) => kv.key)).toEqual(['tx/t1/ack/a', 'tx/t1/vote/a']);
    const before = await observable(root.token);
    const attempts: [string, () => Promise<unknown>][] = [
      ["b's vote by CAS", () => a.cas('tx/t1/vote/b', null, '{"vote":"yes"}')],
      ["b's vote by put", () => a.put('tx/t1/vote/b', '{"vote":"yes"}')],
      ["b's ack", () => a.cas('tx/t1/ack/b', null, '1')],
      ['a decision', () => a.cas('tx/t1/decision', null, 'commit')],
      ['the tx record', () => a.put('tx/t1', '{"record":2}')],
      ['a new tx record', () => a.cas('tx/t2', null, '{}')],
      ['a compacted record', () => a.put('txdone/t1', '{}')],
      ["b's name claim", () => a.cas('participants/b/owner', null, '{}')],
      ['a prefix wider than its own vote', () => a.put('tx/t1/vote/ab', 'x')],
      ["b's vote by delete", () => a.delete('tx/t1/vote/b')],
      ["b's vote in a txn", () => a.txn([], [{ type: 'put', key: 'tx/t1/vote/b', value: 'yes' }])],
      ['a decision behind its own vote in a txn', () => a.txn([{ key: 'tx/t1/vote/a', target: 'version', op: '>', value: 0 }], [{ type: 'put', key: 'tx/t1/vote/a', value: 'x' }, { type: 'put', key: 'tx/t1/decision', value: 'commit' }])],
      ["b's vote in a batch", () => a.batch([{ type: 'put', key: 'tx/t1/vote/a', value: 'again' }, { type: 'put', key: 'tx/t1/vote/b', value: 'yes' }]).then((rs) => { for (const r of rs) if (!r.ok) throw r.error; })],
      ['every key', () => a.range('')],
    ];
    for (const [what, attempt] of attempts) {
      const err = await attempt().then(() => undefined, (e: unknown) => e);
      expect(err, what).toBeInstanceOf(StoreError);
      expect((err as StoreError).status, what).toBe(403);
      expect((err as StoreError).code, what).toBe('permission_denied');
    }
    expect(await observable(root.token)).toBe(before);
    // The coordinator's credentials write what a coordinator writes.
    expect((await coord.cas('tx/t1/decision', null, 'commit')).succeeded).toBe(true);
    expect((await coord.put('txdone/t1', '{}')).revision).toBeGreaterThan(0);
    expect((await coord.txn([], [{ type: 'delete', key: 'tx/t1/vote/a' }, { type: 'delete', key: 'tx/t1/ack/a' }])).succeeded).toBe(true);
    // Through a follower: the forward carries the token and the leader checks it again.
    const leaderId = (await call('GET', '/v1/status')).body['leaderId'];
    const follower = cluster.members.find((m) => m.id !== leaderId) as (typeof cluster.members)[number];
    const coordToken = (await tokenOf('coord')).token;
    const viaFollower = await call('PUT', `/v1/kv/${encodeURIComponent('tx/t9')}`, { base: follower.clientUrl, token: coordToken, body: { value: '{}' } });
    expect(viaFollower.status, JSON.stringify(viaFollower.body)).toBe(200);
    const forged = await call('PUT', `/v1/kv/${encodeURIComponent('tx/t9/vote/b')}`, { base: follower.clientUrl, token: (await tokenOf('a')).token, body: { value: 'yes' } });
    expect(forged.status).toBe(403);
  }, 60_000);

  it('every route from the OpenAPI document: no, garbage, forged and expired tokens get 401, the wrong role 403, and nothing changes', async () => {
    const root = await tokenOf('root');
    const participant = await tokenOf('a');
    const short = await tokenOf('root', 1_000);
    await waitFor('the short token to expire', 10_000, () => Date.now() > short.expiresAtMs + 200);
    const rootRevision = ((await call('GET', '/v1/auth/users/root', { token: root.token })).body as { name: string }).name === 'root';
    expect(rootRevision).toBe(true);
    const forged = issueToken(newSecret(), { name: 'root', passwordHash: '', roles: ['root'], revision: 1 }, Date.now() + 60_000);
    // A lease holding a key only root may write: revoking it needs write on that key.
    const lease = (await call('POST', '/v1/leases', { token: root.token, body: { ttlMs: 120_000 } })).body['id'] as number;
    expect((await call('PUT', `/v1/kv/${encodeURIComponent('secret/leased')}`, { token: root.token, body: { value: 'v', lease } })).status).toBe(200);
    const doc = (await call('GET', '/openapi.json')).body as unknown as OpenApiDocument;
    const before = await observable(root.token);
    const checked: string[] = [];
    for (const [docPath, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
        const route = `${method} ${docPath}`;
        if (PUBLIC_ROUTES.has(route)) continue;
        const request = requestFor(method, docPath, lease);
        const refusals: [string, Record<string, string>, number, string][] = [
          ['no token', {}, 401, 'unauthenticated'],
          ['a garbage token', { authorization: 'Bearer not-a-token' }, 401, 'unauthenticated'],
          ['a token signed with another secret', { authorization: `Bearer ${forged}` }, 401, 'unauthenticated'],
          ['an expired root token', { authorization: `Bearer ${short.token}` }, 401, 'token_expired'],
          ...(ANY_USER_ROUTES.has(route) ? [] : [['a participant token', { authorization: `Bearer ${participant.token}` }, 403, 'permission_denied'] as [string, Record<string, string>, number, string]]),
        ];
        for (const [what, headers, status, code] of refusals) {
          const r = await call(method, request.path, { headers: { ...headers, 'x-snapshot-key': 'guessed' }, ...(request.body === undefined ? {} : { body: request.body }) });
          expect(`${r.status} ${r.body.error?.code}`, `${route} with ${what}`).toBe(`${status} ${code}`);
        }
        checked.push(route);
      }
    }
    expect(await observable(root.token)).toBe(before);
    // The routes the document lists are the ones the store serves: every state-changing kind is here.
    for (const r of ['PUT /v1/kv/{key}', 'POST /v1/txn', 'POST /v1/batch', 'GET /v1/watch', 'DELETE /v1/leases/{id}', 'POST /v1/members', 'POST /v1/alarms/disarm', 'POST /v1/auth/enable', 'POST /v1/auth/users', 'GET /internal/v1/snapshots/{id}/keys']) {
      expect(checked).toContain(r);
    }
    expect(checked.length).toBeGreaterThanOrEqual(35);
  }, 120_000);

  it('a new role revokes older tokens; a client with a password authenticates again by itself', async () => {
    const root = await tokenOf('root');
    const old = await tokenOf('b');
    const b = client('b');
    expect((await b.cas('tx/t3/vote/b', null, 'yes')).succeeded).toBe(true);
    expect((await call('POST', '/v1/auth/roles', { token: root.token, body: { name: 'reader' } })).status).toBe(200);
    expect((await call('POST', '/v1/auth/users/b/roles', { token: root.token, body: { role: 'reader' } })).status).toBe(200);
    const r = await call('GET', '/v1/kv/tx%2Ft3%2Fvote%2Fb', { token: old.token });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('token_expired');
    // Its cached token is revoked too: it trades its password for a new one and goes on.
    expect((await b.get('tx/t3/vote/b'))?.value).toBe('yes');
    const wrong = new StoreClient({ endpoints, user: 'b', password: 'wrong', deadlineMs: 5_000 });
    closers.push(() => wrong.close());
    await expect(wrong.get('tx/t3/vote/b')).rejects.toMatchObject({ code: 'invalid_credentials', status: 401 });
  }, 60_000);

  it('a 2PC transaction commits with auth on, each process with its own credentials', async () => {
    const open = async (user: keyof typeof PASSWORDS): Promise<OpenedStore> => {
      const opened = await openTxStore(parseStoreSpec(endpoints.join(',')), `auth-${user}`, { RAFT2PC_STORE_USER: user, RAFT2PC_STORE_PASSWORD: PASSWORDS[user] });
      closers.push(() => opened.close());
      return opened;
    };
    const c = await startCoordinator((await open('coord')).store, { id: 'c-auth' });
    closers.push(() => c.server.stop());
    const parts: LocalParticipant[] = [];
    for (const name of ['a', 'b'] as const) {
      const p = await startParticipant((await open(name)).store, dir, name);
      closers.push(() => p.close());
      parts.push(p);
    }
    const begun = await call('POST', '/v1/transactions', { base: c.url, body: { timeoutMs: 20_000 } });
    expect(begun.status, JSON.stringify(begun.body)).toBe(201);
    const id = begun.body['id'] as string;
    for (const p of parts) {
      await p.node.receiveWork(id, { item: p.name });
      expect((await call('POST', `/v1/transactions/${id}/participants`, { base: c.url, body: { name: p.name, url: p.url } })).status).toBe(200);
    }
    const commit = await call('POST', `/v1/transactions/${id}/commit`, { base: c.url });
    expect(commit.body).toEqual({ id, outcome: 'committed', votes: { a: 'yes', b: 'yes' } });
    await waitFor('both participants to apply the commit', 20_000, () => parts.every((p) => p.service.applied(id) === 'commit'));
  }, 120_000);
});

/** Served to anyone, as etcd serves them: liveness, status, metrics, the document, the member list, authenticate, auth status. */
const PUBLIC_ROUTES = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'GET /v1/status', 'GET /v1/members', 'POST /v1/auth/authenticate', 'GET /v1/auth/status']);
/** Any authenticated user may use them (etcd's leases): a participant's token is the right role. */
const ANY_USER_ROUTES = new Set(['GET /v1/leases', 'POST /v1/leases', 'POST /v1/leases/{id}/keepalive']);

/** A request each route would accept from root: keys only root may touch, valid bodies (so a 403 is the permission, not the input). */
function requestFor(method: string, docPath: string, lease: number): { path: string; body?: unknown } {
  const params: Record<string, string> = {
    key: encodeURIComponent('secret/x'),
    id: docPath.startsWith('/v1/leases') ? String(lease) : docPath.startsWith('/v1/members') ? 'n3' : 'n2-1-1',
    name: docPath.startsWith('/v1/auth/roles') ? '2pc-coordinator' : 'root',
    role: '2pc-coordinator',
  };
  let path = docPath.replace(/\{(\w+)\}/g, (_m, p: string) => params[p] ?? 'x');
  if (docPath === '/v1/kv' || docPath === '/v1/watch') path += '?prefix=secret%2F';
  const bodies: Record<string, unknown> = {
    'PUT /v1/kv/{key}': { value: 'forged' },
    'POST /v1/kv/{key}/cas': { expected: null, value: 'forged' },
    'POST /v1/txn': { compare: [], success: [{ type: 'put', key: 'secret/x', value: 'forged' }] },
    'POST /v1/batch': { items: [{ type: 'put', key: 'secret/x', value: 'forged' }] },
    'POST /v1/leases': { ttlMs: 10_000 },
    'POST /v1/members': { id: 'n9', clientUrl: 'http://127.0.0.1:29009', peerAddress: '127.0.0.1:29109' },
    'POST /v1/leader/transfer': { to: 'n2' },
    'POST /v1/auth/users': { name: 'evil', password: 'pw' },
    'POST /v1/auth/users/{name}/password': { password: 'pw2' },
    'POST /v1/auth/users/{name}/roles': { role: '2pc-coordinator' },
    'POST /v1/auth/roles': { name: 'evil' },
    'POST /v1/auth/roles/{name}/permissions': { key: '', match: 'prefix', perm: 'readwrite' },
    'POST /v1/auth/roles/{name}/permissions/revoke': { key: 'tx/', match: 'prefix' },
  };
  const body = bodies[`${method} ${docPath}`] ?? (method === 'POST' || method === 'PUT' ? {} : undefined);
  return body === undefined ? { path } : { path, body };
}
