/**
 * Goal: `/readyz` tells an orchestrator whether a service can serve, and
 * why not, while `/healthz` keeps saying only that the process answers.
 *
 * - A store node (real processes): not ready alone (no leader), ready once a
 *   second node makes a quorum and a linearizable read succeeds.
 * - A coordinator (in-process server over that real store): ready while the
 *   store answers; not ready once every store node is down; ready again
 *   when they are back. Not ready before start or once stopping.
 * - A participant (in-process, real log file): not ready until its
 *   start-up recovery finished (held here by a `restore` that waits).
 *
 * Ports: store clients 32200-32202, peers 32300-32302, coordinator 32210.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCoordinatorConfig } from '../../coordinator/runtime/config.js';
import { CoordinatorServer } from '../../coordinator/service/server.js';
import { MemoryTxStore, openTxStore, type OpenedStore } from '../../coordinator/txstore/index.js';
import { silentLogger } from '../../lib/logger.js';
import { parseMetrics } from '../../lib/metrics.js';
import { ParticipantNode } from '../../participant/participant.js';
import { participantApp } from '../../participant/routes.js';
import { StoreCluster } from '../support/store-cluster.js';
import { waitFor } from '../support/wait.js';
import { RecordingService } from '../twopc/support/inprocess.js';

const STORE_BASE_PORT = 32200;
const COORDINATOR_PORT = 32210;
const PROBE_TIMEOUT_MS = 3_000;

interface Probe {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function get(url: string): Promise<Probe> {
  const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.startsWith('application/json') === true ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

/** Polls `url` until it answers `status`; returns that answer. */
function until(url: string, status: number, timeoutMs = 20_000): Promise<Probe> {
  return waitFor(`${url} to answer ${status}`, timeoutMs, async () => {
    const p = await get(url);
    return p.status === status ? p : undefined;
  });
}

describe('store node and coordinator readiness (real store processes)', () => {
  let cluster: StoreCluster;
  let opened: OpenedStore | undefined;
  let coordinator: CoordinatorServer | undefined;
  let failed = true;

  beforeAll(() => {
    cluster = new StoreCluster({ name: 'readiness', basePort: STORE_BASE_PORT, founders: 3 });
  });

  afterAll(async () => {
    await coordinator?.stop();
    await opened?.close();
    await cluster.destroy(failed);
  });

  it('a store node alone is alive but not ready; with a quorum it is ready', async () => {
    await cluster.launch('n1');
    const n1 = cluster.url('n1');
    expect((await get(`${n1}/healthz`)).status).toBe(200);
    const alone = await get(`${n1}/readyz`);
    expect(alone).toMatchObject({ status: 503, body: { ready: false, id: 'n1', leaderId: null, reason: 'no leader known' } });

    await cluster.launch('n2');
    const leader = await cluster.waitLeader(['n1', 'n2']);
    for (const id of ['n1', 'n2']) {
      const ready = await until(`${cluster.url(id)}/readyz`, 200);
      expect(ready.body).toMatchObject({ ready: true, id, leaderId: leader });
      expect(ready.body['appliedIndex']).toBeGreaterThan(0);
    }
    // A store node is its own process: its /metrics carries the process metrics beside the Raft ones.
    const metrics = await fetch(`${n1}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await metrics.text());
    expect(m.get('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(m.get('store_leader_changes_total')).toBeGreaterThanOrEqual(1);
    // Entries were applied, so the loop that persists and applies them ran.
    expect(m.get('store_applied_entries_total')).toBeGreaterThan(0);
    expect(m.get('store_ready_loops_total')).toBeGreaterThan(0);
    failed = false;
  });

  it('a coordinator is ready while its store answers, and not while the store is down', async () => {
    failed = true;
    opened = await openTxStore({ kind: 'builtin', endpoints: [cluster.url('n1'), cluster.url('n2')] }, 'readiness-test');
    coordinator = new CoordinatorServer({ config: makeCoordinatorConfig({ id: 'c1' }), store: opened.store, log: silentLogger });
    expect((await request(coordinator.app).get('/readyz')).body).toMatchObject({ ready: false, id: 'c1', reason: 'not started' });
    await coordinator.start({ port: COORDINATOR_PORT });
    const c1 = `http://127.0.0.1:${COORDINATOR_PORT}`;
    expect((await until(`${c1}/readyz`, 200)).body).toEqual({ ready: true, id: 'c1' });

    await Promise.all([cluster.stop('n1'), cluster.stop('n2')]);
    const down = await until(`${c1}/readyz`, 503);
    expect(down.body).toMatchObject({ ready: false, id: 'c1' });
    expect(down.body['reason']).toMatch(/^the store does not answer/);
    const health = await get(`${c1}/healthz`);
    expect(health).toMatchObject({ status: 200, body: { ok: true, id: 'c1', liveTransactions: 0 } });

    await Promise.all([cluster.restart('n1'), cluster.restart('n2')]);
    expect((await until(`${c1}/readyz`, 200, 30_000)).body).toEqual({ ready: true, id: 'c1' });

    const stopping = coordinator.stop();
    expect(await coordinator.service.readiness()).toMatchObject({ ready: false, reason: 'stopping' });
    await stopping;
    coordinator = undefined;
    failed = false;
  });
});

describe('participant readiness', () => {
  const dir = mkdtempSync(join(tmpdir(), 'readiness-participant-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A service whose `restore` (run by start-up recovery for an in-doubt transaction) waits until released. */
  class HeldRestore extends RecordingService {
    release: () => void = () => undefined;
    private readonly held = new Promise<void>((resolve) => (this.release = resolve));
    override restore(txId: string): Promise<void> {
      super.restore(txId);
      return this.held;
    }
  }

  it('is not ready until start-up recovery finished, and not once stopped', async () => {
    const store = new MemoryTxStore();
    const open = (service: RecordingService): Promise<ParticipantNode> =>
      ParticipantNode.open({ name: 'bank-a', store, logPath: join(dir, 'bank-a.log'), service, logger: silentLogger });

    // A first life leaves an in-doubt transaction (voted yes, undecided) in the log.
    const first = await open(new RecordingService());
    await first.start();
    await first.receiveWork('t1', { amount: 5 });
    expect(await first.prepare('t1')).toMatchObject({ vote: 'yes' });
    await first.stop();

    const service = new HeldRestore();
    const node = await open(service);
    const app = participantApp(node);
    const before = await request(app).get('/readyz');
    expect(before.status).toBe(503);
    expect(before.body).toMatchObject({ ready: false, participant: 'bank-a', code: 'not_ready' });

    const started = node.start();
    await waitFor('recovery to ask for the locks back', 5_000, () => service.calls.includes('restore t1'));
    const recovering = await request(app).get('/readyz');
    expect(recovering.status).toBe(503);
    expect(recovering.body).toMatchObject({ ready: false, code: 'not_ready' });
    expect(recovering.body.reason).toMatch(/recovering/);

    service.release();
    await started;
    const ready = await request(app).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, participant: 'bank-a' });

    await node.stop();
    const stopped = await request(app).get('/readyz');
    expect([stopped.status, stopped.body.code]).toEqual([503, 'shutting_down']);
  });
});
