// Goal: the store quota is enforced like etcd's NOSPACE alarm, on a real
// 3-node cluster of store processes started with a small --quota-bytes: a
// write past the quota fails 429 store_full and raises the alarm on every
// member (replicated, and still raised after a member restarts from its
// snapshot and WAL); while raised, growing writes and lease grants are
// refused, reads, deletes and lease revokes are served; the disarm is
// refused 409 while the refused write would still not fit, accepted after
// deletes, and then writes are accepted again. /v1/status and /metrics
// show the stored bytes, the quota and the alarm.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { ResponseChecker } from '../openapi/support.js';

const BASE_PORT = 33800; // clients 33800-33802, peers 33900-33902
const QUOTA = 1024 * 1024;
const VALUE = 'v'.repeat(16 * 1024);

let cluster: LocalCluster;
let dataDir = '';

beforeAll(async () => {
  dataDir = mkdtempSync(join(os.tmpdir(), 'quota-alarm-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir, logToFiles: true, extraArgs: ['--quota-bytes', String(QUOTA), '--snapshot-every', '20'] });
  cluster.start();
  await cluster.waitForLeader(30_000);
  // A leader needs only a majority: the test talks to every member, so each must be up and know the leader.
  await waitFor('every member serving and knowing the leader', 30_000, async () => {
    const known = await Promise.all(cluster.endpoints.map(async (e) => {
      try {
        return ((await (await fetch(`${e}/v1/status`)).json()) as { leaderId?: string | null }).leaderId != null;
      } catch {
        return false;
      }
    }));
    return known.every(Boolean);
  }, 100);
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
  text: string;
}

async function call(method: string, path: string, body?: unknown, node = 0): Promise<Answer> {
  const url = `${cluster.endpoints[node] as string}${path}`;
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    const text = await res.text();
    const answer = { status: res.status, body: (text.startsWith('{') ? JSON.parse(text) : { text }) as Record<string, unknown>, headers: Object.fromEntries(res.headers), text };
    // An election (or a restarted member catching up) answers 503: try again.
    if (res.status !== 503 || attempt > 50) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const code = (a: Answer): unknown => (a.body['error'] as Record<string, unknown> | undefined)?.['code'];

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(what, timeoutMs, check, 100);
}

describe('the NOSPACE alarm', () => {
  it('refuses growing writes past the quota until disarmed after deletes; reads, deletes and revokes are served', async () => {
    // Every answer below about the quota matches the node's OpenAPI document.
    const checker = new ResponseChecker((await call('GET', '/openapi.json')).body as unknown as OpenApiDocument);
    const lease = await call('POST', '/v1/leases', { ttlMs: 600_000 });
    expect(lease.status).toBe(200);
    expect(await call('PUT', '/v1/kv/leased', { value: 'x', lease: lease.body['id'] })).toMatchObject({ status: 200 });

    // Fill until a put is refused: it raises the alarm.
    let written = 0;
    let refused: Answer | undefined;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      const a = await call('PUT', `/v1/kv/fill/${String(i).padStart(4, '0')}`, { value: VALUE });
      if (a.status === 200) written++;
      else refused = a;
    }
    expect(written).toBeGreaterThan(50);
    checker.check('put', '/v1/kv/{key}', refused as Answer, 429, 'store_full');
    expect(refused?.body['error']).toMatchObject({ code: 'store_full', alarm: 'NOSPACE', maxStoreBytes: QUOTA });

    // Every member agrees (replicated state), in /v1/alarms, /v1/status and /metrics.
    for (let n = 0; n < 3; n++) {
      await eventually(async () => ((await call('GET', '/v1/alarms', undefined, n)).body['alarms'] as unknown[]).length === 1, `n${n + 1} lists the alarm`);
    }
    checker.check('get', '/v1/alarms', await call('GET', '/v1/alarms'), 200);
    const status = checker.check('get', '/v1/status', await call('GET', '/v1/status'), 200);
    expect(status.body).toMatchObject({ quotaBytes: QUOTA, alarms: [{ type: 'NOSPACE' }] });
    expect(status.body['storeBytes'] as number).toBeGreaterThan(QUOTA - VALUE.length - 100);
    const metrics = await (await fetch(`${cluster.endpoints[0] as string}/metrics`)).text();
    expect(metrics).toMatch(/store_alarm_nospace 1/);
    expect(metrics).toMatch(new RegExp(`store_quota_bytes ${QUOTA}`));
    expect(metrics).toMatch(/store_kv_bytes \d+/);

    // Writes that grow the store are refused, even small ones well within the quota; lease grants too.
    expect(code(await call('PUT', '/v1/kv/tiny', { value: 'y' }))).toBe('store_full');
    expect(code(await call('POST', '/v1/txn', { compare: [], success: [{ type: 'put', key: 'tiny', value: 'y' }], failure: [] }))).toBe('store_full');
    expect(code(await call('POST', '/v1/leases', { ttlMs: 10_000 }))).toBe('store_full');
    // Reads are served.
    expect((await call('GET', '/v1/kv/fill%2F0000')).status).toBe(200);
    expect((await call('GET', '/v1/kv?prefix=fill/&limit=5')).status).toBe(200);

    // The alarm survives a member's restart (snapshot every 20 entries, then the WAL).
    const n3 = cluster.process('n3');
    await n3.stop();
    n3.start();
    await eventually(async () => {
      try {
        return ((await call('GET', '/v1/alarms', undefined, 2)).body['alarms'] as unknown[] | undefined)?.length === 1;
      } catch {
        return false;
      }
    }, 'n3 lists the alarm after its restart', 30_000);

    // The refused write would still not fit: the disarm is refused.
    const early = checker.check('post', '/v1/alarms/disarm', await call('POST', '/v1/alarms/disarm'), 409, 'still_over_quota');
    expect(early.body['error']).toMatchObject({ code: 'still_over_quota', alarm: 'NOSPACE' });

    // Deletes and lease revokes are served.
    for (let i = 0; i < 8; i++) expect(await call('DELETE', `/v1/kv/fill%2F${String(i).padStart(4, '0')}`)).toMatchObject({ status: 200, body: { deleted: true } });
    expect(await call('DELETE', `/v1/leases/${String(lease.body['id'])}`)).toMatchObject({ status: 200, body: { revoked: true } });
    expect((await call('GET', '/v1/kv/leased')).status).toBe(404);

    // Now it fits: disarmed (from a follower too: forwarded to the leader), and writes are accepted again.
    const disarm = checker.check('post', '/v1/alarms/disarm', await call('POST', '/v1/alarms/disarm', undefined, 1), 200);
    expect(disarm).toMatchObject({ status: 200, body: { disarmed: true, quotaBytes: QUOTA } });
    expect(await call('POST', '/v1/alarms/disarm')).toMatchObject({ status: 200, body: { disarmed: false } });
    expect((await call('PUT', '/v1/kv/tiny', { value: 'y' })).status).toBe(200);
    expect((await call('POST', '/v1/leases', { ttlMs: 10_000 })).status).toBe(200);
    for (let n = 0; n < 3; n++) {
      await eventually(async () => ((await call('GET', '/v1/alarms', undefined, n)).body['alarms'] as unknown[]).length === 0, `n${n + 1} lists no alarm`);
    }
  }, 120_000);
});
