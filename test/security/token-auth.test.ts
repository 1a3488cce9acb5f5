// Goal: bearer tokens on the coordinator and a participant, as processes:
// a built-in store (one node), a coordinator with --auth-tokens and
// --call-token-file, a second one without a call token, and the example
// inventory participant with --auth-tokens; every token made by a
// `raft2pc token create` process. Then:
// - for every route of each service's OpenAPI document (so a new route is
//   attacked without a test edit, and must have a policy): no token, a
//   wrong token, an expired token and a token of the wrong role get
//   401/403 with their codes (401s with WWW-Authenticate: Bearer), and
//   nothing changes (the coordinator's transactions, one active
//   transaction, the participant's log and stock);
// - a client token begins and commits a transaction end to end through the
//   SDK, and the coordinator's call token reaches the participant (no hint
//   refused); a client or admin token on /2pc/prepare or /2pc/decision is
//   403; the SDK without a token gets `unauthenticated`;
// - a coordinator without a call token has its hints refused (403, counted
//   as hint failures) and the transaction still commits: the participant
//   prepares from its watch of the store and learns the decision there.
// Ports: five free ones of 30100-30199 (store client and peer, two coordinators, the participant).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorClient, CoordinatorError } from '../../client/index.js';
import { COORDINATOR_ROUTE_POLICIES } from '../../coordinator/service/openapi.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { newToken, type RoutePolicy } from '../../lib/token-auth.js';
import { makeParticipantConfig, participantOpenApi } from '../../participant/index.js';
import { PARTICIPANT_ROUTE_POLICIES } from '../../participant/openapi.js';
import { documentedRoutes } from '../openapi/support.js';
import { waitFor } from '../support/wait.js';
import { freePorts, startProcess, stopProcess, waitReady, type ServiceProcess } from './processes.js';

let STORE = '';
let COORD = '';
let COORD_NO_CALL_TOKEN = '';
let PART = '';

let dir = '';
const procs: ServiceProcess[] = [];
/** Tokens by name: app (client), ops (admin), c1 (coordinator), old (client, expired by the attacks). */
const tokens: Record<'app' | 'ops' | 'c1' | 'old', string> = { app: '', ops: '', c1: '', old: '' };

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: { error?: { code?: string }; [k: string]: unknown };
}

async function call(base: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, signal: AbortSignal.timeout(15_000), ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) });
  const text = await res.text();
  let body: Answer['body'] = {};
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body };
}

/** Runs `raft2pc token create` as a process; resolves once it exited 0. */
async function tokenCreate(args: readonly string[]): Promise<void> {
  const p = startProcess(`token create ${args.join(' ')}`, 'bin/raft2pc', ['token', 'create', ...args]);
  procs.push(p);
  const code = await Promise.race([p.exited, new Promise<null>((_, reject) => setTimeout(() => reject(new Error(`token create hung: ${p.output()}`)), 60_000).unref())]);
  expect(code, p.output()).toBe(0);
}

const byName = new Map<string, ServiceProcess>();

function start(name: string, program: string, args: readonly string[], ready: RegExp, env: Readonly<Record<string, string>> = {}): Promise<void> {
  const p = startProcess(name, program, args, env);
  procs.push(p);
  byName.set(name, p);
  return waitReady(p, ready, 60_000);
}

beforeAll(async () => {
  dir = mkdtempSync(join(os.tmpdir(), 'token-auth-'));
  const file = join(dir, 'tokens.json');
  // In turn: two writers of one file at once could lose an entry.
  await tokenCreate(['--file', file, '--name', 'app', '--roles', 'client', '--out', join(dir, 'app.token')]);
  await tokenCreate(['--file', file, '--name', 'ops', '--roles', 'admin', '--out', join(dir, 'ops.token')]);
  await tokenCreate(['--file', file, '--name', 'c1', '--roles', 'coordinator', '--out', join(dir, 'c1.token')]);
  await tokenCreate(['--file', file, '--name', 'old', '--roles', 'client', '--expires-in-s', '1', '--out', join(dir, 'old.token')]);
  for (const name of Object.keys(tokens) as (keyof typeof tokens)[]) tokens[name] = readFileSync(join(dir, `${name}.token`), 'utf8').trim();

  const [storePort, peerPort, coordPort, partPort, coord2Port] = (await freePorts(30100, 100, 5)) as [number, number, number, number, number];
  STORE = `http://127.0.0.1:${storePort}`;
  COORD = `http://127.0.0.1:${coordPort}`;
  COORD_NO_CALL_TOKEN = `http://127.0.0.1:${coord2Port}`;
  PART = `http://127.0.0.1:${partPort}`;
  await start('store', 'store/node/main', ['--id', 'n1', '--cluster', `n1=127.0.0.1:${storePort}:${peerPort}`, '--data-dir', join(dir, 'store')], /"event":"ready"/);
  await waitFor('the store to elect itself', 30_000, async () => (await call(STORE, 'GET', '/readyz')).status === 200, 100);
  const registry = ['--participant', `inv=${PART}`];
  await Promise.all([
    start('coordinator', 'coordinator/service/main', ['--port', String(coordPort), '--store', STORE, '--id', 'c1', '--auth-tokens', file, '--call-token-file', join(dir, 'c1.token'), ...registry], new RegExp(`listening on ${coordPort}`), { RAFT2PC_FAULTS: '1' }),
    start('coordinator-without-call-token', 'coordinator/service/main', ['--port', String(coord2Port), '--store', STORE, '--id', 'c2', '--auth-tokens', file, ...registry], new RegExp(`listening on ${coord2Port}`)),
    start('participant', 'examples/inventory/main', ['--name', 'inv', '--port', String(partPort), '--store', STORE, '--data-dir', join(dir, 'inv'), '--stock', 'apple=10', '--auth-tokens', file], new RegExp(`participant inv listening on ${partPort}`)),
  ]);
  await waitFor('the participant to be ready', 30_000, async () => (await call(PART, 'GET', '/readyz')).status === 200, 100);
}, 180_000);

afterAll(async () => {
  for (const p of procs.splice(0).reverse()) await stopProcess(p);
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** A concrete request for a documented operation: parameters filled with `id`, a body that would change something. */
function requestOf(path: string, body: unknown, id: string): { path: string; body?: unknown } {
  return { path: path.replace(/\{[^}]+\}/g, id), ...(body === undefined ? {} : { body }) };
}

interface Attack {
  readonly label: string;
  readonly token: string | undefined;
  readonly status: number;
  readonly code: string;
}

/** The four refusals of a route of `policy`: none, a wrong, an expired, and a wrong-role token. */
function attacksOn(policy: RoutePolicy): Attack[] {
  const wrongRole = policy === 'client' ? tokens.c1 : policy === 'coordinator' ? tokens.app : tokens.app;
  return [
    { label: 'no token', token: undefined, status: 401, code: 'unauthenticated' },
    { label: 'a wrong token', token: newToken(), status: 401, code: 'invalid_token' },
    { label: 'an expired token', token: tokens.old, status: 401, code: 'token_expired' },
    { label: 'a token of the wrong role', token: wrongRole, status: 403, code: 'forbidden' },
  ];
}

async function attackEveryRoute(base: string, doc: OpenApiDocument, policies: Readonly<Record<string, RoutePolicy>>, bodyOf: (method: string, path: string) => unknown, id: string): Promise<number> {
  let attacked = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const routerPath = path.replace(/\{([^}]+)\}/g, ':$1');
      const policy = policies[`${method.toUpperCase()} ${routerPath}`] ?? 'admin';
      const req = requestOf(path, method === 'get' ? undefined : bodyOf(method, path), id);
      if (policy === 'public') {
        const a = await call(base, method.toUpperCase(), req.path);
        expect([401, 403], `${method} ${path} is public`).not.toContain(a.status);
        continue;
      }
      for (const attack of attacksOn(policy)) {
        const a = await call(base, method.toUpperCase(), req.path, { ...(attack.token === undefined ? {} : { token: attack.token }), ...(req.body === undefined ? {} : { body: req.body }) });
        const where = `${method.toUpperCase()} ${path} with ${attack.label}`;
        expect({ where, status: a.status, code: a.body.error?.code }).toEqual({ where, status: attack.status, code: attack.code });
        if (attack.status === 401) expect(a.headers.get('www-authenticate'), where).toMatch(/^Bearer /);
        attacked++;
      }
    }
  }
  return attacked;
}

async function waitExpired(): Promise<void> {
  const entries = (JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8')) as { tokens: { name: string; expiresAt?: string }[] }).tokens;
  const expiresAt = Date.parse(entries.find((e) => e.name === 'old')?.expiresAt ?? '');
  expect(Number.isFinite(expiresAt)).toBe(true);
  await waitFor('the short token to expire', 10_000, () => Date.now() > expiresAt + 50);
}

async function hintFailures(base: string): Promise<number> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const m = /^twopc_hint_failures_total(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
  return Number(m?.[1] ?? 0);
}

describe('tokens on the coordinator', () => {
  it('refuses every non-public route of its document without a valid token of the right role, and changes nothing', async () => {
    await waitExpired();
    const doc = (await call(COORD, 'GET', '/openapi.json')).body as unknown as OpenApiDocument;
    // Every documented route (the OpenAPI test holds them equal to the route table) has a policy of its own.
    for (const route of documentedRoutes(doc)) expect(COORDINATOR_ROUTE_POLICIES[route], `${route} has a policy`).toBeDefined();
    expect(doc.paths['/v1/transactions']?.['post']?.['security']).toEqual([{ bearer: [] }]);
    // A live transaction the attacks aim at: a commit, an abort or an enlist would move it.
    const begun = await call(COORD, 'POST', '/v1/transactions', { token: tokens.app, body: { timeoutMs: 120_000, participants: [{ name: 'inv' }] } });
    expect(begun.status, JSON.stringify(begun.body)).toBe(201);
    const id = begun.body['id'] as string;
    const fingerprint = async (): Promise<string> => {
      const list = await call(COORD, 'GET', '/v1/transactions?limit=1000', { token: tokens.ops });
      const tx = await call(COORD, 'GET', `/v1/transactions/${id}`, { token: tokens.ops });
      const faults = await call(COORD, 'GET', '/v1/admin/faults', { token: tokens.ops });
      expect([list.status, tx.status, faults.status]).toEqual([200, 200, 200]);
      return JSON.stringify([list.body, tx.body, faults.body]);
    };
    const before = await fingerprint();
    const bodies = (method: string, path: string): unknown => {
      if (path === '/v1/transactions') return { participants: [{ name: 'inv' }] };
      if (path.endsWith('/participants')) return { name: 'inv' };
      if (path.endsWith('/abort')) return { reason: 'forged' };
      if (path === '/v1/admin/faults' && method === 'put') return { blockedUrls: [PART] };
      return {};
    };
    const attacked = await attackEveryRoute(COORD, doc, COORDINATOR_ROUTE_POLICIES, bodies, id);
    // Begin, enlist, commit, abort, get, list, and the three fault routes (RAFT2PC_FAULTS=1): four attacks each.
    expect(attacked).toBe(9 * 4);
    expect(await fingerprint()).toBe(before);
    // The listing needs admin: a client token is 403 there, an admin token passes the client routes.
    expect((await call(COORD, 'GET', '/v1/transactions', { token: tokens.app })).status).toBe(403);
    const aborted = await call(COORD, 'POST', `/v1/transactions/${id}/abort`, { token: tokens.ops, body: { reason: 'done' } });
    expect(aborted.status, JSON.stringify(aborted.body)).toBe(200);
    // The participant learns the abort from the store: let it land, so the next test starts from a still log.
    await waitFor('the participant to ack the abort', 30_000, async () => {
      const log = await call(PART, 'GET', '/v1/participant/transactions?limit=1000', { token: tokens.ops });
      return (log.body['transactions'] as { txId: string; ackedAt: number | null }[]).some((t) => t.txId === id && t.ackedAt !== null);
    }, 100);
  }, 120_000);
});

describe('tokens on the participant', () => {
  it('refuses every non-public route of its document without a valid token of the right role, and changes nothing', async () => {
    await waitExpired();
    const doc = participantOpenApi(makeParticipantConfig());
    for (const route of documentedRoutes(doc)) expect(PARTICIPANT_ROUTE_POLICIES[route], `${route} has a policy`).toBeDefined();
    const fingerprint = async (): Promise<string> => {
      const log = await call(PART, 'GET', '/v1/participant/transactions?limit=1000', { token: tokens.ops });
      const stock = await call(PART, 'GET', '/inventory');
      expect([log.status, stock.status]).toEqual([200, 200]);
      return JSON.stringify([log.body, stock.body]);
    };
    const before = await fingerprint();
    const bodies = (_method: string, path: string): unknown => {
      if (path === '/2pc/work') return { txId: 'forged-tx', work: { items: [{ sku: 'apple', delta: -10 }] } };
      if (path === '/2pc/prepare') return { txId: 'forged-tx' };
      if (path === '/2pc/decision') return { txId: 'forged-tx', decision: 'commit' };
      return {};
    };
    const attacked = await attackEveryRoute(PART, doc, PARTICIPANT_ROUTE_POLICIES, bodies, 'forged-tx');
    expect(attacked).toBe(4 * 4);
    // Prepare and decision take only a coordinator: an admin token is refused there too.
    for (const path of ['/2pc/prepare', '/2pc/decision']) {
      const a = await call(PART, 'POST', path, { token: tokens.ops, body: bodies('post', path) });
      expect([a.status, a.body.error?.code]).toEqual([403, 'forbidden']);
    }
    expect(await fingerprint()).toBe(before);
  }, 120_000);
});

describe('a transaction with tokens', () => {
  const work = { items: [{ sku: 'apple', delta: -1 }] };

  it('commits end to end with a client token, the call token reaching the participant', async () => {
    const client = new CoordinatorClient({ coordinators: [COORD], token: tokens.app });
    try {
      const failuresBefore = await hintFailures(COORD);
      const out = await client.run({ participants: [{ name: 'inv', url: PART, work }], timeoutMs: 20_000 });
      expect(out.outcome).toBe('committed');
      expect(out.votes).toEqual({ inv: 'yes' });
      // Prepare and decision hints went through: the participant took the coordinator's token.
      expect(await hintFailures(COORD)).toBe(failuresBefore);
      await waitFor('the participant to apply the commit', 20_000, async () => ((await call(PART, 'GET', '/inventory')).body['stock'] as Record<string, number> | undefined)?.['apple'] === 9);
    } finally {
      client.close();
    }
  }, 60_000);

  it('is refused to a client without a token, or with a token of the wrong role', async () => {
    for (const token of [undefined, tokens.c1]) {
      const client = new CoordinatorClient({ coordinators: [COORD], retryWindowMs: 0, ...(token === undefined ? {} : { token }) });
      try {
        const e = await client.begin({ participants: [{ name: 'inv', url: PART }] }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(CoordinatorError);
        expect((e as CoordinatorError).code).toBe(token === undefined ? 'unauthenticated' : 'forbidden');
      } finally {
        client.close();
      }
    }
  });

  it('commits through a coordinator without a call token: its hints are refused, the store and the watch carry the transaction', async () => {
    const client = new CoordinatorClient({ coordinators: [COORD_NO_CALL_TOKEN], token: tokens.app });
    try {
      const failuresBefore = await hintFailures(COORD_NO_CALL_TOKEN);
      const out = await client.run({ participants: [{ name: 'inv', url: PART, work }], timeoutMs: 20_000 });
      expect(out.outcome).toBe('committed');
      // Its prepare hint went out without a token: 401 unauthenticated, which the coordinator reports (once per
      // participant) and does not count as a failed hint (the participant answered), nor retry.
      const c2 = byName.get('coordinator-without-call-token');
      await waitFor('the refusal to be logged', 10_000, () => /a participant refused our hint/.test(c2?.output() ?? ''));
      expect(c2?.output()).toMatch(/"status":401.*"code":"unauthenticated"|"code":"unauthenticated".*"status":401/);
      expect(await hintFailures(COORD_NO_CALL_TOKEN)).toBe(failuresBefore);
      expect(byName.get('coordinator')?.output()).not.toMatch(/refused our hint/);
      await waitFor('the participant to apply the commit', 20_000, async () => ((await call(PART, 'GET', '/inventory')).body['stock'] as Record<string, number> | undefined)?.['apple'] === 8);
    } finally {
      client.close();
    }
  }, 60_000);
});

describe('operating with tokens', () => {
  it('raft2pc tx takes --token-file: an admin token lists, a client token is refused (exit 1, forbidden)', async () => {
    for (const [name, code, text] of [['ops', 0, /ID\s+STATE|no transactions/], ['app', 1, /forbidden \(403\)/]] as const) {
      const p = startProcess(`tx list ${name}`, 'bin/raft2pc', ['tx', 'list', '--coordinators', COORD, '--token-file', join(dir, `${name}.token`), '--retry-window-ms', '0']);
      procs.push(p);
      const exit = await Promise.race([p.exited, new Promise<null>((_, reject) => setTimeout(() => reject(new Error(`tx list hung: ${p.output()}`)), 60_000).unref())]);
      expect(exit, p.output()).toBe(code);
      expect(p.output()).toMatch(text);
    }
  }, 120_000);

  it('reads the token file again when it changes, and keeps the old table when the new one is bad (SIGHUP)', async () => {
    const file = join(dir, 'tokens.json');
    await tokenCreate(['--file', file, '--name', 'late', '--roles', 'admin', '--out', join(dir, 'late.token')]);
    const late = readFileSync(join(dir, 'late.token'), 'utf8').trim();
    // Polled every 2 s: the new token is taken without a restart, on both services.
    await waitFor('the coordinator to take the new token', 20_000, async () => (await call(COORD, 'GET', '/v1/transactions', { token: late })).status === 200, 200);
    await waitFor('the participant to take the new token', 20_000, async () => (await call(PART, 'GET', '/v1/participant/transactions', { token: late })).status === 200, 200);
    // A half-written file, then SIGHUP: the old table stays in force, and the coordinator says why.
    writeFileSync(file, '{"tokens": [');
    const coordinator = byName.get('coordinator');
    if (coordinator?.child.pid === undefined) throw new Error('no coordinator');
    process.kill(coordinator.child.pid, 'SIGHUP');
    await waitFor('the failed reload to be logged', 20_000, () => /token file reload failed; keeping the old tokens/.test(coordinator.output()));
    expect((await call(COORD, 'GET', '/v1/transactions', { token: late })).status).toBe(200);
    expect((await call(COORD, 'GET', '/v1/transactions', { token: tokens.app })).status).toBe(403);
    expect((await call(PART, 'GET', '/v1/participant/transactions', { token: late })).status).toBe(200);
  }, 120_000);
});
