/**
 * Goal: SIGTERM shuts a service down gracefully, as real processes:
 *  - a coordinator with a commit in flight (its one participant never votes,
 *    so the commit waits for the transaction's deadline) stops accepting
 *    connections at once, answers that commit with its outcome, and exits 0;
 *  - a store node with a watch stream open ends the stream at once and exits
 *    0, far sooner than its --shutdown-timeout-ms.
 * Ports: store 32810 (peers 32811), coordinator 32821, and 32831 where
 * nothing listens (the silent participant). Every process is stopped by pid.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { Program } from './processes.js';

const STORE = 'http://127.0.0.1:32810';
const COORDINATOR_PORT = 32821;
const COORDINATOR = `http://127.0.0.1:${COORDINATOR_PORT}`;
const SILENT_PARTICIPANT = 'http://127.0.0.1:32831';
/** Far longer than any step here: exiting well before it shows nothing waited for it. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
const TX_TIMEOUT_MS = 3_000;

const dir = mkdtempSync(join(tmpdir(), 'graceful-'));
let store: Program | undefined;
let coordinator: Program | undefined;

async function healthy(url: string): Promise<boolean> {
  const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
  await res.arrayBuffer();
  return res.status === 200;
}

/** The error code of a request that could not connect (undefined when it connected). */
async function connectError(url: string): Promise<string | undefined> {
  try {
    await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).arrayBuffer();
    return undefined;
  } catch (e) {
    return ((e as Error & { cause?: { code?: string } }).cause?.code ?? String(e)) as string;
  }
}

function startStore(): Program {
  return new Program('store/node/main.ts', ['--id', 'n1', '--cluster', 'n1=127.0.0.1:32810:32811', '--data-dir', join(dir, 'n1'), '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS)]);
}

beforeAll(async () => {
  store = startStore();
  await waitFor('the store node healthy', 60_000, () => healthy(STORE));
  coordinator = new Program('coordinator/service/main.ts', ['--id', 'c1', '--port', String(COORDINATOR_PORT), '--store', STORE, '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS)]);
  await waitFor('the coordinator healthy', 60_000, () => {
    if (!coordinator?.running) throw new Error(`the coordinator exited: ${coordinator?.stderr}`);
    return healthy(COORDINATOR);
  });
}, 120_000);

afterAll(() => {
  coordinator?.kill();
  store?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('graceful shutdown on SIGTERM', () => {
  it('a coordinator finishes the commit in flight, refuses new connections meanwhile, and exits 0', async () => {
    const c = coordinator as Program;
    const begun = await fetch(`${COORDINATOR}/v1/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ participants: [{ name: 'silent', url: SILENT_PARTICIPANT }], timeoutMs: TX_TIMEOUT_MS }),
    });
    expect(begun.status).toBe(201);
    const { id } = (await begun.json()) as { id: string };
    const commit = fetch(`${COORDINATOR}/v1/transactions/${id}/commit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await waitFor('the commit to be under way (preparing)', 10_000, async () => ((await (await fetch(`${COORDINATOR}/v1/transactions/${id}`)).json()) as { state: string }).state === 'preparing');

    const t0 = Date.now();
    process.kill(c.pid, 'SIGTERM');
    await waitFor('the coordinator to refuse new connections', 10_000, async () => (await connectError(`${COORDINATOR}/healthz`)) === 'ECONNREFUSED');
    expect(c.running).toBe(true); // still serving the commit

    const answer = await commit;
    expect(answer.status).toBe(200);
    expect(answer.headers.get('connection')).toBe('close');
    expect(await answer.json()).toMatchObject({ id, outcome: 'aborted' });
    const exit = await c.finished(SHUTDOWN_TIMEOUT_MS);
    expect(exit.code, exit.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(SHUTDOWN_TIMEOUT_MS / 2);
    expect(exit.stderr).toContain('shutting down');
    expect(exit.stderr).not.toContain('shutdown deadline passed');
  });

  it('a store node ends an open watch stream at once and exits 0 well before its deadline', async () => {
    const s = store as Program;
    const watch = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${STORE}/v1/watch?prefix=graceful/`, resolve).on('error', reject);
    });
    expect(watch.statusCode).toBe(200);
    const ended = new Promise<void>((resolve) => {
      watch.on('end', resolve);
      watch.on('close', resolve);
      watch.resume();
    });

    const t0 = Date.now();
    process.kill(s.pid, 'SIGTERM');
    await ended;
    const exit = await s.finished(SHUTDOWN_TIMEOUT_MS);
    expect(exit.code, exit.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(SHUTDOWN_TIMEOUT_MS / 3);
    expect(exit.stderr).not.toContain('shutdown deadline passed');

    // What it stopped was stopped cleanly: it starts again on the same data.
    store = startStore();
    await waitFor('the store node healthy again', 60_000, () => healthy(STORE));
  });
});
