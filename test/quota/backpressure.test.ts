// Goal: the coordinator applies back-pressure before the store's quota is
// reached. On a real 3-node store cluster with a 1 MiB --quota-bytes, filled
// with plain keys to above the coordinator's high-water mark (90%): a begin
// gets 429 store_nearly_full with Retry-After (its answer as documented), a
// transaction begun before still commits (its writes are never refused), and
// after the keys are deleted begins are accepted again. The store's NOSPACE
// alarm is never raised on the way.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { HttpApp } from '../../lib/http.js';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { NO_FAILPOINTS } from '../../lib/failpoints.js';
import { silentLogger } from '../../lib/logger.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { SeededRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/index.js';
import { coordinatorApp } from '../../coordinator/service/routes.js';
import { CoordinatorService } from '../../coordinator/service/service.js';
import { storeUsageSource } from '../../coordinator/service/store-usage.js';
import { BuiltinTxStore } from '../../coordinator/txstore/index.js';
import { StoreClient } from '../../store/client/index.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { ResponseChecker } from '../openapi/support.js';
import { StoreVoters } from '../routes/support.js';

const BASE_PORT = 33810; // clients 33810-33812, peers 33910-33912
const QUOTA = 1024 * 1024;
const VALUE = 'v'.repeat(16 * 1024);

let cluster: LocalCluster;
let dataDir = '';
let client: StoreClient;
let service: CoordinatorService;
let app: HttpApp;

beforeAll(async () => {
  dataDir = mkdtempSync(join(os.tmpdir(), 'quota-bp-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir, logToFiles: true, extraArgs: ['--quota-bytes', String(QUOTA)] });
  cluster.start();
  await cluster.waitForLeader(30_000);
  client = new StoreClient({ endpoints: cluster.endpoints });
  const store = new BuiltinTxStore(client);
  const config = makeCoordinatorConfig({ id: 'cq', storeUsageCheckMs: 200, storeHighWaterPercent: 90, recoveryIntervalMs: 60_000 });
  const storeUsage = storeUsageSource({ kind: 'builtin', endpoints: cluster.endpoints }, config.storeQuotaBytes);
  service = new CoordinatorService({ config, store, timers: systemTimers, random: new SeededRandom(3), hints: new StoreVoters(store), failpoints: NO_FAILPOINTS, log: silentLogger, storeUsage });
  await service.start();
  app = coordinatorApp(service, { log: silentLogger });
}, 60_000);

afterAll(async () => {
  await service?.stop();
  client?.close();
  await cluster?.stop();
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

async function status(): Promise<{ storeBytes: number; quotaBytes: number; alarms: unknown[] }> {
  const res = await fetch(`${cluster.endpoints[0] as string}/v1/status`);
  return (await res.json()) as { storeBytes: number; quotaBytes: number; alarms: unknown[] };
}

describe('back-pressure on begin', () => {
  it('answers 429 with Retry-After above the high-water mark, lets begun transactions commit, and recovers after deletes', async () => {
    const begin = () => request(app).post('/v1/transactions').send({ participants: [{ name: 'a', url: 'http://a' }], timeoutMs: 60_000 });
    const early = await begin();
    expect(early.status).toBe(201);
    const earlyId = (early.body as { id: string }).id;

    // Plain keys up to above 90% of the quota, short of it.
    const keys: string[] = [];
    while ((await status()).storeBytes < 0.93 * QUOTA) {
      const key = `fill/${String(keys.length).padStart(4, '0')}`;
      await client.put(key, VALUE);
      keys.push(key);
    }
    expect((await status()).alarms).toEqual([]);

    const doc = (await request(app).get('/openapi.json')).body as OpenApiDocument;
    const checker = new ResponseChecker(doc);
    const refused = await waitFor('a begin refused with 429', 10_000, async () => {
      const r = await begin();
      return r.status === 429 ? r : undefined;
    }, 100);
    checker.check('post', '/v1/transactions', refused as request.Response, 429, 'store_nearly_full');
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused?.body).toMatchObject({ error: { code: 'store_nearly_full', quotaBytes: QUOTA, highWaterPercent: 90 } });

    // The transaction begun before goes on: enlist, commit.
    expect((await request(app).post(`/v1/transactions/${earlyId}/participants`).send({ name: 'b', url: 'http://b' })).status).toBe(200);
    const commit = await request(app).post(`/v1/transactions/${earlyId}/commit`);
    expect(commit.status).toBe(200);
    expect(commit.body).toMatchObject({ id: earlyId, outcome: 'committed' });

    // Room again: begins are accepted.
    for (const key of keys) await client.delete(key);
    await waitFor('a begin accepted again after the deletes', 10_000, async () => (await begin()).status === 201, 100);
    expect(await service.metricsText()).toMatch(/twopc_begins_refused_store_full_total [1-9]/);
  }, 120_000);
});
