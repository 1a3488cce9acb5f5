/**
 * Goal: the fault-injection switch the chaos runner uses really partitions a
 * cluster of real processes, and healing really heals it. With
 * RAFT2PC_FAULTS=1, `PUT /v1/admin/faults {"blockedPeers": [...]}` on the
 * leader cuts it off from both followers: the followers elect a new leader
 * and keep committing writes, the old leader steps down (CheckQuorum) and
 * never answers a linearizable read or a write with a stale or wrong answer;
 * `DELETE /v1/admin/faults` lets it rejoin and catch up. A read forwarded to
 * the cut-off leader fails fast at the leader change. Bad bodies get 400.
 * Without the variable the routes do not exist: test/store/badinput.test.ts
 * checks the 404 on its normal cluster.
 *
 * Ports: n1..n3 serve clients on 36600-36602 and peers on 36700-36702.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StoreCluster } from '../support/store-cluster.js';
import { waitFor } from './support/poll.js';

const BASE_PORT = 36600;

let cluster: StoreCluster;
let failed = false;

beforeAll(async () => {
  cluster = new StoreCluster({ name: 'faults', basePort: BASE_PORT, founders: 3, env: { RAFT2PC_FAULTS: '1' } });
  await cluster.startFounders();
}, 120_000);

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    failed = true;
    console.error(cluster.logTails());
  });
});

afterAll(async () => {
  await cluster?.destroy(failed);
});

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function call(id: string, method: string, path: string, json?: unknown, timeoutMs = 3_000): Promise<Reply> {
  const res = await fetch(`${cluster.url(id)}${path}`, {
    method,
    headers: json === undefined ? {} : { 'content-type': 'application/json' },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** The value of `key` as node `id` holds it locally (serializable read), or null. */
async function localValue(id: string, key: string): Promise<string | null> {
  const r = await call(id, 'GET', `/v1/kv/${key}?consistency=serializable`);
  return r.status === 200 ? String(r.body['value']) : null;
}

describe('fault injection (RAFT2PC_FAULTS=1)', () => {
  it('rejects bad bodies with 400 and a code', async () => {
    const id = cluster.ids[0] as string;
    for (const body of [{}, { blockedPeers: 'n2' }, { blockedPeers: [1] }, { blockedPeers: ['n2'], extra: 1 }, { blockedPeers: [id] }]) {
      const r = await call(id, 'PUT', '/v1/admin/faults', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect((r.body['error'] as { code: string }).code).toBe('invalid_request');
    }
    expect((await call(id, 'GET', '/v1/admin/faults')).body).toEqual({ id, blockedPeers: [] });
  });

  it('a leader cut off from both followers steps down, the others elect a leader and commit; healing lets it catch up', async () => {
    const old = await cluster.waitLeader();
    const others = cluster.ids.filter((id) => id !== old);
    expect((await call(old, 'PUT', '/v1/kv/f-before', { value: '1' })).status).toBe(200);

    const cut = await call(old, 'PUT', '/v1/admin/faults', { blockedPeers: others });
    expect(cut).toEqual({ status: 200, body: { id: old, blockedPeers: [...others].sort() } });
    // A linearizable read on a follower now goes to the cut-off leader and is
    // lost; the follower fails it when leadership changes (about one election
    // timeout), not at its 5 s request timeout.
    const readStart = Date.now();
    const lostRead = call(others[0] as string, 'GET', '/v1/kv/f-before', undefined, 8_000);

    const fresh = await cluster.waitLeader(others, 20_000);
    const read = await lostRead;
    expect([200, 503], JSON.stringify(read.body)).toContain(read.status);
    expect(Date.now() - readStart).toBeLessThan(4_000);
    expect(others).toContain(fresh);
    await waitFor(`${old} to step down`, 10_000, async () => (await cluster.status(old))?.role !== 'leader', 50);
    expect((await call(fresh, 'PUT', '/v1/kv/f-during', { value: '2' })).status).toBe(200);

    // The cut-off node has not seen the write and must not pretend otherwise:
    // a linearizable read or a write through it fails (503/504), never 200.
    expect(await localValue(old, 'f-during')).toBeNull();
    for (const [method, path, body] of [['GET', '/v1/kv/f-during', undefined], ['PUT', '/v1/kv/f-x', { value: 'x' }]] as const) {
      const r = await call(old, method, path, body, 8_000).catch(() => ({ status: 0, body: {} }));
      expect([0, 503, 504], `${method} ${path} -> ${r.status}`).toContain(r.status);
    }

    expect((await call(old, 'DELETE', '/v1/admin/faults')).body).toEqual({ id: old, blockedPeers: [] });
    await waitFor(`${old} to catch up`, 20_000, async () => (await localValue(old, 'f-during')) === '2', 100);
    expect(await localValue(old, 'f-before')).toBe('1');
    expect(await localValue(old, 'f-x')).toBeNull();
  });
});
