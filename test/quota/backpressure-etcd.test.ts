// Goal: the coordinator's back-pressure works the same on etcd. etcd does not
// report its quota, so the coordinator compares the endpoint status's dbSize
// (the bbolt file etcd's quota limits) with its own storeQuotaBytes: filled
// past 90% of it, a begin gets 429 store_nearly_full with Retry-After, a
// transaction begun before still commits; after deletes, a compaction and a
// defragmentation (etcd's way to give the space back), begins are accepted.
// One etcd member on ports 33950-33951; skipped without etcd (outside CI).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { NO_FAILPOINTS } from '../../lib/failpoints.js';
import { silentLogger } from '../../lib/logger.js';
import { SeededRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/index.js';
import { coordinatorApp } from '../../coordinator/service/routes.js';
import { CoordinatorService } from '../../coordinator/service/service.js';
import { storeUsageSource } from '../../coordinator/service/store-usage.js';
import { EtcdTxStore } from '../../coordinator/txstore/etcd/etcd-store.js';
import { StoreVoters } from '../routes/support.js';
import { etcdForTests } from '../support/etcd.js';

const CLIENT = 'http://127.0.0.1:33950';
const PEER = 'http://127.0.0.1:33951';
const QUOTA = 1024 * 1024;
const bin = etcdForTests('test/quota/backpressure-etcd.test.ts');

let etcd: ChildProcess | undefined;
let dir = '';
let store: EtcdTxStore;
let service: CoordinatorService;

async function gateway(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${CLIENT}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return (await res.json()) as Record<string, unknown>;
}

const dbSize = async (): Promise<number> => Number((await gateway('/v3/maintenance/status', {}))['dbSize']);

beforeAll(async () => {
  if (bin === undefined) return;
  dir = mkdtempSync(join(os.tmpdir(), 'quota-etcd-'));
  const log = openSync(join(dir, 'etcd.log'), 'a');
  const args = ['--name', 'q1', '--data-dir', join(dir, 'data'), '--listen-client-urls', CLIENT, '--advertise-client-urls', CLIENT, '--listen-peer-urls', PEER, '--initial-advertise-peer-urls', PEER, '--initial-cluster', `q1=${PEER}`];
  etcd = spawn(bin, args, { stdio: ['ignore', log, log] });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if (Number.isFinite(await dbSize())) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error('etcd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  store = new EtcdTxStore({ endpoints: [CLIENT] });
  const config = makeCoordinatorConfig({ id: 'ce', storeUsageCheckMs: 200, storeQuotaBytes: QUOTA, recoveryIntervalMs: 60_000 });
  const storeUsage = storeUsageSource({ kind: 'etcd', endpoints: [CLIENT] }, config.storeQuotaBytes);
  service = new CoordinatorService({ config, store, timers: systemTimers, random: new SeededRandom(5), hints: new StoreVoters(store), failpoints: NO_FAILPOINTS, log: silentLogger, storeUsage });
  await service.start();
}, 60_000);

afterAll(async () => {
  await service?.stop();
  store?.close();
  if (etcd !== undefined && etcd.exitCode === null) {
    const exited = new Promise((r) => etcd?.once('exit', r));
    etcd.kill('SIGTERM');
    await exited;
  }
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe.skipIf(bin === undefined)('back-pressure on etcd', () => {
  it('refuses begins above 90% of --store-quota-bytes by dbSize, and accepts them after compaction and defragmentation', async () => {
    const app = coordinatorApp(service, { log: silentLogger });
    const begin = () => request(app).post('/v1/transactions').send({ participants: [{ name: 'a', url: 'http://a' }], timeoutMs: 60_000 });
    const early = await begin();
    expect(early.status).toBe(201);
    const id = (early.body as { id: string }).id;

    const value = 'v'.repeat(16 * 1024);
    let n = 0;
    while ((await dbSize()) <= 0.95 * QUOTA) await store.put(`fill/${String(n++).padStart(4, '0')}`, value);

    const refused = await waitFor('a begin refused with 429', 10_000, async () => {
      const r = await begin();
      return r.status === 429 ? r : undefined;
    }, 100);
    expect(refused?.body).toMatchObject({ error: { code: 'store_nearly_full', quotaBytes: QUOTA } });
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    const commit = await request(app).post(`/v1/transactions/${id}/commit`);
    expect(commit.body).toMatchObject({ id, outcome: 'committed' });

    for (let i = 0; i < n; i++) await store.delete(`fill/${String(i).padStart(4, '0')}`);
    const revision = Number(((await gateway('/v3/kv/range', { key: Buffer.from('x').toString('base64') }))['header'] as Record<string, unknown>)['revision']);
    await gateway('/v3/kv/compaction', { revision, physical: true });
    await gateway('/v3/maintenance/defragment', {});
    expect(await dbSize()).toBeLessThan(0.9 * QUOTA);
    await waitFor('a begin accepted again after compaction and defragmentation', 10_000, async () => (await begin()).status === 201, 100);
  }, 120_000);
});
