/**
 * Goal: KV operations are linearizable through crashes (docs/API.md,
 * "Invariants"). Several concurrent StoreClients, each preferring a different
 * node, run random get/set/cas/delete on a few keys for about 20 s (longer
 * on a loaded machine, until three kill/restart cycles are done) while a
 * seeded schedule kills nodes with SIGKILL and restarts them (one at a time,
 * so a majority stays up). Every operation goes into a history
 * (test/lincheck): a timeout or unavailable outcome is "unknown", a 4xx is a
 * definite "fail". The history is written to
 * .artifacts/lincheck-history-<seed>.json and must check as linearizable.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { StoreClient, StoreError } from '../../store/client/index.js';
import { HistoryRecorder, checkHistory, type OperationSpec } from '../lincheck/index.js';
import { TestCluster, useTestCluster } from './support/cluster.js';
import { delay, testSeed, waitFor } from './support/poll.js';

const BASE_PORT = 31800;
/** The workload runs at least this long, and until MIN_FAULTS faults are done, but at most MAX_WORKLOAD_MS. */
const WORKLOAD_MS = 20_000;
const MIN_FAULTS = 3;
const MAX_WORKLOAD_MS = 60_000;
const CLIENTS = 6;
const KEYS = ['lin/a', 'lin/b', 'lin/c', 'lin/d'];
const ARTIFACTS = fileURLToPath(new URL('../../.artifacts/', import.meta.url));

let tc: TestCluster;
useTestCluster({ name: 'linearizability', basePort: BASE_PORT }, (c) => (tc = c));

/** One client's random operation; `recent` holds values seen or written, so CAS often hits. */
function nextOp(rnd: SeededRandom, client: number, n: number, recent: Map<string, string | null>): OperationSpec {
  const key = rnd.pick(KEYS);
  const roll = rnd.int(100);
  if (roll < 40) return { op: 'get', key };
  const value = `c${client}-${n}`;
  if (roll < 65) return { op: 'set', key, value };
  if (roll < 90) {
    const known = recent.get(key);
    const expected = rnd.chance(0.2) ? null : rnd.chance(0.8) && known !== undefined ? known : `c${rnd.int(CLIENTS)}-${rnd.int(n + 1)}`;
    return { op: 'cas', key, expected, value };
  }
  return { op: 'delete', key };
}

/** 4xx: the store refused the request, so it definitely did not take effect. */
function definitelyNotApplied(e: unknown): boolean {
  return e instanceof StoreError && e.status >= 400 && e.status < 500;
}

async function runClient(index: number, seed: number, rec: HistoryRecorder, running: () => boolean): Promise<void> {
  // Each client prefers a different node first; all know every node for failover.
  const endpoints = tc.endpoints.map((_, i) => tc.endpoints[(i + index) % tc.endpoints.length] as string);
  const client = new StoreClient({ endpoints, requestTimeoutMs: 1_000, deadlineMs: 4_000, maxAttempts: 50, clientId: `lin-${seed}-${index}` });
  const rnd = new SeededRandom(seed * 31 + index);
  const recent = new Map<string, string | null>();
  const name = `c${index}`;
  for (let n = 0; running(); n++) {
    const spec = nextOp(rnd, index, n, recent);
    const h = rec.begin(name, spec);
    try {
      switch (spec.op) {
        case 'get': {
          const kv = await client.get(spec.key);
          rec.ok(h, { value: kv?.value ?? null });
          recent.set(spec.key, kv?.value ?? null);
          break;
        }
        case 'set': {
          const r = await client.put(spec.key, spec.value);
          rec.ok(h, { previous: r.previous });
          recent.set(spec.key, spec.value);
          break;
        }
        case 'cas': {
          const r = await client.cas(spec.key, spec.expected, spec.value);
          rec.ok(h, { succeeded: r.succeeded, previous: r.previous });
          recent.set(spec.key, r.succeeded ? spec.value : r.previous);
          break;
        }
        case 'delete': {
          const r = await client.delete(spec.key);
          rec.ok(h, { deleted: r.deleted, previous: r.previous });
          recent.set(spec.key, null);
          break;
        }
      }
    } catch (e) {
      const note = e instanceof StoreError ? `${e.status} ${e.code}: ${e.message}` : String(e);
      if (definitelyNotApplied(e)) rec.fail(h, note);
      else rec.unknown(h, note);
    }
  }
}

interface Fault {
  readonly atMs: number;
  readonly target: 'leader' | 'node';
  readonly node: string;
  readonly downMs: number;
}

/** The seeded fault schedule: a kill every 2.5-4.5 s (at the earliest), down for 0.5-2 s, half of them aimed at the leader. */
function faultSchedule(rnd: SeededRandom, ids: readonly string[]): Fault[] {
  const faults: Fault[] = [];
  for (let at = 1_000 + rnd.int(1_000); at < MAX_WORKLOAD_MS; at += 2_500 + rnd.int(2_000)) {
    faults.push({ atMs: at, target: rnd.chance(0.5) ? 'leader' : 'node', node: rnd.pick(ids), downMs: 500 + rnd.int(1_500) });
  }
  return faults;
}

/**
 * Runs the schedule: one node down at a time, restarted and with a leader
 * again before the next kill, so a majority is always up. It goes on until
 * WORKLOAD_MS have passed and at least MIN_FAULTS faults are done (restarts
 * are slow on a loaded machine, so that can take longer), within
 * MAX_WORKLOAD_MS.
 */
async function runNemesis(faults: readonly Fault[], start: number, log: string[]): Promise<number> {
  let done = 0;
  for (const f of faults) {
    const elapsed = performance.now() - start;
    if ((elapsed >= WORKLOAD_MS - 2_000 && done >= MIN_FAULTS) || elapsed >= MAX_WORKLOAD_MS - 5_000) break;
    const wait = start + f.atMs - performance.now();
    if (wait > 0) await delay(wait);
    const victim = f.target === 'leader' ? await tc.leader(10_000) : f.node;
    const t = (performance.now() - start).toFixed(0);
    await tc.kill9(victim);
    log.push(`${t} ms: kill -9 ${victim}${f.target === 'leader' ? ' (leader)' : ''}`);
    await delay(f.downMs);
    await tc.restart(victim, 30_000);
    log.push(`${(performance.now() - start).toFixed(0)} ms: ${victim} restarted`);
    // A majority again, with a leader, before the next fault.
    await tc.leader(15_000);
    done++;
  }
  return done;
}

describe('linearizability', () => {
  it('random get/set/cas/delete from concurrent clients under kill -9 and restart is linearizable', async () => {
    const seed = testSeed();
    console.log(`linearizability seed=${seed} (rerun with STORE_TEST_SEED=${seed})`);
    const rnd = new SeededRandom(seed);
    const faults = faultSchedule(rnd, tc.ids);
    const rec = new HistoryRecorder();
    const nemesisLog: string[] = [];

    const start = performance.now();
    let stopped = false;
    const clients = Array.from({ length: CLIENTS }, (_, i) => runClient(i, seed, rec, () => !stopped));
    let nemesisError: unknown;
    const faultsDone = await runNemesis(faults, start, nemesisLog).catch((e: unknown) => {
      nemesisError = e;
      return 0;
    });
    // Some load on the whole cluster after the last restart, then stop.
    const rest = Math.max(1_000, start + WORKLOAD_MS - performance.now());
    await delay(rest);
    stopped = true;
    await Promise.all(clients);
    console.log(`linearizability seed=${seed}: ${((performance.now() - start) / 1000).toFixed(1)} s of workload; faults\n  ${nemesisLog.join('\n  ')}`);
    expect(nemesisError, `seed=${seed}: the fault schedule could not run`).toBeUndefined();
    expect(faultsDone, `seed=${seed}: kill -9 and restart cycles`).toBeGreaterThanOrEqual(MIN_FAULTS);

    const history = rec.toJSON();
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = `${ARTIFACTS}lincheck-history-${seed}.json`;
    writeFileSync(file, JSON.stringify(history, null, 1));
    const ops = history.operations;
    const count = (s: string): number => ops.filter((o) => o.status === s).length;
    console.log(`linearizability seed=${seed}: ${ops.length} operations (${count('ok')} ok, ${count('fail')} fail, ${count('unknown')} unknown) in ${file}`);
    expect(count('ok'), `seed=${seed}: too few successful operations to mean anything`).toBeGreaterThan(200);

    const result = checkHistory(history, { timeoutMs: 60_000 });
    console.log(`linearizability seed=${seed}: check ${result.result} in ${result.elapsedMs.toFixed(0)} ms, ${result.steps} steps`);
    expect(result.result, `seed=${seed}: ${result.counterexample?.message ?? result.limit ?? ''} (history: ${file})`).toBe('ok');

    // The cluster is whole again at the end.
    await waitFor(`seed=${seed}: every node healthy`, 20_000, async () => (await Promise.all(tc.ids.map((id) => tc.healthy(id)))).every(Boolean));
  }, 180_000); // the workload stretches on a loaded machine (see runNemesis)
});
