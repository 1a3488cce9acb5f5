/**
 * Goal: with `--sweep-election`, exactly one coordinator runs the recovery
 * sweep at a time, on real processes (a 3-node built-in store and three
 * coordinator processes). Each coordinator's /healthz names the same leader,
 * term and fencing token; only the leader's pass counter moves, and only the
 * leader adopts an abandoned transaction. A leader whose session is lost
 * (its lease revoked under it) stops sweeping at once and queues again.
 * After SIGKILL of the leader,
 * another is elected with a strictly larger token within the lease TTL plus
 * a bound, and it sweeps; a leader stopped with SIGTERM hands over at once
 * (its lease is revoked, not left to expire).
 *
 * Ports 37500-37502 (store clients), 37600-37602 (store peers),
 * 37701/37703/37705 (coordinators, odd: see test/twopc/support/procs.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTxRecord, txKey } from '../../coordinator/protocol/index.js';
import { currentLeader, electionPrefix } from '../../recipes/index.js';
import type { SweepElectionStatus } from '../../coordinator/runtime/sweep-election.js';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { parseMetrics } from '../../lib/metrics.js';
import { systemTimers } from '../../lib/timers.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { ResponseChecker } from '../openapi/support.js';
import { closedPort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { coordinatorProc, openStore, startStore, stopAll, type Proc, type Stack } from '../twopc/support/procs.js';

const STORE_BASE_PORT = 37500;
const COORDINATOR_PORTS = [37701, 37703, 37705];
const ELECTION = 'sweep-test';
const TTL_MS = 2_000;
/** Past the TTL: the store's lease check (100 ms), the candidate's watch and re-read, our 100 ms polling, a loaded 2-core machine. */
const TAKEOVER_BOUND_MS = 4_000;
const RECOVERY_INTERVAL_MS = 200;

interface Health {
  readonly id: string;
  readonly sweep: SweepElectionStatus;
}

async function health(p: Proc): Promise<Health | undefined> {
  try {
    const res = await fetch(`${p.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return res.status === 200 ? ((await res.json()) as Health) : undefined;
  } catch {
    return undefined;
  }
}

async function metrics(p: Proc): Promise<Map<string, number>> {
  const res = await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(2_000) });
  return parseMetrics(await res.text());
}

/** The one leader every running coordinator agrees on (and exactly one says it leads), or undefined. */
async function agreedLeader(procs: readonly Proc[]): Promise<{ proc: Proc; token: number } | undefined> {
  const hs = await Promise.all(procs.map(health));
  if (hs.some((h) => h === undefined)) return undefined;
  const all = hs as Health[];
  const leaders = all.filter((h) => h.sweep.leading);
  if (leaders.length !== 1) return undefined;
  const l = leaders[0] as Health;
  const token = l.sweep.leader?.token;
  if (token === undefined || !all.every((h) => h.sweep.leader?.id === l.id && h.sweep.leader.token === token && h.sweep.leader.term === token)) return undefined;
  return { proc: procs[all.indexOf(l)] as Proc, token };
}

/** Samples every coordinator's pass counter for `ms`; returns by how much each moved. */
async function passesDuring(procs: readonly Proc[], ms: number): Promise<number[]> {
  const before = await Promise.all(procs.map(async (p) => (await metrics(p)).get('twopc_recovery_passes_total') ?? 0));
  await systemTimers.sleep(ms);
  const after = await Promise.all(procs.map(async (p) => (await metrics(p)).get('twopc_recovery_passes_total') ?? 0));
  return after.map((a, i) => a - (before[i] as number));
}

describe('the recovery sweep election on real processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sweep-election-'));
  let stack: Stack;
  let store: TxStore;
  let procs: Proc[] = [];

  beforeAll(async () => {
    stack = await startStore(dir, STORE_BASE_PORT);
    store = await openStore(stack, 'sweep-test');
    const extra = ['--sweep-election', ELECTION, '--sweep-election-ttl-ms', String(TTL_MS), '--recovery-interval-ms', String(RECOVERY_INTERVAL_MS)];
    procs = COORDINATOR_PORTS.map((port, i) => coordinatorProc(stack, `s${i + 1}`, port, extra));
    for (const p of procs) p.start();
    await Promise.all(procs.map((p) => p.waitHealthy()));
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  let first: { proc: Proc; token: number };

  it('elects one sweeper: every coordinator names it, only its passes run, only it adopts', async () => {
    first = await waitFor('one agreed sweep leader', 30_000, () => agreedLeader(procs), 100);
    const moved = await passesDuring(procs, 2_000);
    const li = procs.indexOf(first.proc);
    expect(moved[li]).toBeGreaterThanOrEqual(2);
    expect(moved.filter((_, i) => i !== li)).toEqual([0, 0]);
    const m = await Promise.all(procs.map(metrics));
    expect(m.map((x) => x.get('twopc_sweep_leader'))).toEqual(procs.map((_, i) => (i === li ? 1 : 0)));
    expect(m[li]?.get('twopc_sweep_elections_total')).toBe(1);
    expect(m.map((x) => x.get('twopc_sweep_leader_token'))).toEqual([first.token, first.token, first.token]);

    // /healthz with `sweep` is what the OpenAPI document says.
    const doc = (await (await fetch(`${first.proc.url}/openapi.json`)).json()) as OpenApiDocument;
    const checker = new ResponseChecker(doc);
    for (const p of procs) {
      const res = await fetch(`${p.url}/healthz`);
      const text = await res.text();
      checker.check('get', '/healthz', { status: res.status, text, headers: { 'content-type': res.headers.get('content-type') ?? '' }, body: JSON.parse(text) as unknown }, 200);
    }

    // An abandoned transaction (no coordinator drives it, past its deadline): only the leader adopts it.
    const url = `http://127.0.0.1:${await closedPort()}`;
    const now = Date.now();
    await store.put(txKey('sweep-abandoned-1'), encodeTxRecord({ participants: [{ name: 'p1', url }], state: 'active', deadline: now - 1, createdAt: now - 1_000 }));
    await waitFor('the leader adopts it', 20_000, async () => ((await metrics(first.proc)).get('twopc_recovery_adopted_total') ?? 0) >= 1, 100);
    const adopted = await Promise.all(procs.map(async (p) => (await metrics(p)).get('twopc_recovery_adopted_total') ?? 0));
    expect(adopted.filter((_, i) => i !== li)).toEqual([0, 0]);
  }, 60_000);

  it('a leader whose session is lost stops sweeping at once, and another leads with a larger token', async () => {
    const info = await currentLeader(store, ELECTION);
    expect(info?.revision).toBe(first.token);
    // The candidate key is {prefix}{leaseId}_{nonce} (recipes/line-lock.ts): revoke that lease under the leader.
    const leaseId = (info?.key ?? '').slice(electionPrefix(ELECTION).length).split('_')[0] as string;
    const revokedAt = Date.now();
    await store.revokeLease(leaseId);
    const deposed = await waitFor('the leader to notice', TTL_MS, async () => {
      const h = await health(first.proc);
      return h !== undefined && !h.sweep.leading && h.sweep.losses === 1 ? h : undefined;
    }, 50);
    const noticedMs = Date.now() - revokedAt;
    expect(deposed.sweep.elections).toBe(1);
    const next = await waitFor('a new agreed sweep leader', TTL_MS + TAKEOVER_BOUND_MS, async () => {
      const l = await agreedLeader(procs);
      return l !== undefined && l.token > first.token ? l : undefined;
    }, 100);
    expect(next.proc).not.toBe(first.proc);
    console.log(`lease of sweep leader ${first.proc.name} (token ${first.token}) revoked: it stopped leading after ${noticedMs} ms; ${next.proc.name} leads with token ${next.token} after ${Date.now() - revokedAt} ms`);
    const moved = await passesDuring(procs, 1_500);
    expect(moved[procs.indexOf(first.proc)]).toBe(0);
    expect(moved[procs.indexOf(next.proc)]).toBeGreaterThanOrEqual(2);
    first = next;
  }, 60_000);

  it('after SIGKILL of the leader, another takes over with a larger token within the TTL plus a bound, and sweeps', async () => {
    const killedAt = Date.now();
    await first.proc.kill9();
    const rest = procs.filter((p) => p !== first.proc);
    const next = await waitFor('a new agreed sweep leader', TTL_MS + TAKEOVER_BOUND_MS, async () => {
      const l = await agreedLeader(rest);
      return l !== undefined && l.token !== first.token ? l : undefined;
    }, 100);
    const tookMs = Date.now() - killedAt;
    console.log(`sweep leader ${first.proc.name} (token ${first.token}) SIGKILLed; ${next.proc.name} leads with token ${next.token} after ${tookMs} ms (TTL ${TTL_MS} ms)`);
    expect(next.token).toBeGreaterThan(first.token);
    const moved = await passesDuring(rest, 1_500);
    const ni = rest.indexOf(next.proc);
    expect(moved[ni]).toBeGreaterThanOrEqual(2);
    expect(moved[1 - ni]).toBe(0);
    first = next;
  }, 60_000);

  it('a leader stopped with SIGTERM hands over at once: its lease is revoked, not left to expire', async () => {
    const rest = procs.filter((p) => p.running && p !== first.proc);
    expect(rest).toHaveLength(1);
    const stoppedAt = Date.now();
    await first.proc.stop();
    const next = await waitFor('the last coordinator leads', TTL_MS + TAKEOVER_BOUND_MS, async () => {
      const l = await agreedLeader(rest);
      return l !== undefined && l.token > first.token ? l : undefined;
    }, 50);
    const tookMs = Date.now() - stoppedAt;
    console.log(`sweep leader stopped with SIGTERM; ${next.proc.name} leads with token ${next.token} after ${tookMs} ms`);
    expect(tookMs).toBeLessThan(TTL_MS);
  }, 60_000);
});
