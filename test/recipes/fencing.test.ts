// Goal: the Jepsen-style proof of the fenced mutex on real processes. Client
// processes take one lock and append to one register key with fenced writes,
// while a seeded nemesis SIGKILLs store nodes, SIGSTOPs them past the lease,
// partitions them, and SIGSTOPs lock HOLDERS past their lease (Kleppmann's
// paused client). The checker (fencing-check.ts) reads the register's whole
// history from a watch: no stale holder's write accepted, tokens never going
// back in acceptance order, every acknowledged write kept. On the same
// cluster, under store kills and pauses: the queue and counter, exactly once
// (exactly-once.ts), and elections seen in order with no leader missed
// (election-run.ts). etcd-recipes.test.ts runs the fenced-mutex part on etcd.
//
// Replay a run: RECIPES_SEED=<seed printed below> npx vitest run test/recipes/fencing.test.ts
// Check the checker: RECIPES_UNFENCED=1 makes the clients write with plain puts; it must fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuiltinTxStore } from '../../coordinator/txstore/index.js';
import { SeededRandom } from '../../lib/random.js';
import { StoreClient } from '../../store/client/index.js';
import { StoreCluster } from '../support/store-cluster.js';
import { trackFailures } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { builtinTarget } from './fault-targets.js';
import { everyWorker, runFencing } from './fencing-run.js';
import { candidate, checkElection, observer, type ElectionRun } from './election-run.js';
import { checkExactlyOnce, consume, produce, type QueueRun } from './exactly-once.js';
import { Nemesis } from './nemesis.js';
import { Counter } from '../../recipes/index.js';

const BASE_PORT = 28751;
const WORKERS = 4;
/** The nemesis's window; runFencing adds a quiet spell of three TTLs after it. */
const RUN_MS = 7_000;
const TTL_MS = 1_500;
const QUEUE_RUN_MS = 6_000;
const ITEMS_PER_PRODUCER = 30;
const ELECTION_RUN_MS = 5_000;
const SEED = Number(process.env['RECIPES_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

describe('fenced mutex under kills, pauses and partitions (real processes)', () => {
  const failures = trackFailures();
  let cluster: StoreCluster;

  beforeAll(async () => {
    cluster = new StoreCluster({ name: 'recipes-fencing', basePort: BASE_PORT, founders: 3, env: { RAFT2PC_FAULTS: '1' } });
    await cluster.startFounders(60_000);
  }, 90_000);

  afterAll(async () => {
    for (const c of everyWorker) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
    // A failed run keeps the nodes' data and logs (the path is printed).
    await cluster?.destroy(failures.failed || process.env['TWOPC_KEEP'] === '1');
  }, 30_000);

  it(`no stale write accepted, tokens increase in acceptance order (seed ${SEED})`, async () => {
    console.log(`fencing test seed ${SEED} (replay: RECIPES_SEED=${SEED})`);
    const store = new BuiltinTxStore(new StoreClient({ endpoints: cluster.endpoints, requestTimeoutMs: 1_000 }));
    const out = await runFencing({ storeArg: { endpoints: cluster.endpoints }, store, target: builtinTarget(cluster), seed: SEED, workers: WORKERS, runMs: RUN_MS, ttlMs: TTL_MS });
    console.log(`fencing seed ${SEED}: ${out.line}`);
    for (const v of out.report.violations.slice(0, 20)) console.log(`VIOLATION: ${v}`);
    expect(out.report.violations).toEqual([]);
    expect(out.acquisitions).toBeGreaterThan(5);
    expect(out.acquisitionsAfterHeal).toBeGreaterThanOrEqual(2);
    expect(out.report.accepted).toBeGreaterThan(5);
    store.client.close();
  }, 120_000);

  it(`queue and counter: every item taken once, the counter equals the acknowledged increments, under store kills (seed ${SEED})`, async () => {
    const store = new BuiltinTxStore(new StoreClient({ endpoints: cluster.endpoints, requestTimeoutMs: 1_000 }));
    const name = `exactly-once-${SEED}-${Date.now().toString(36)}`;
    const run: QueueRun = { put: [], maybe: [], taken: [], increments: { acked: 0, unknown: 0 }, errors: [] };
    const counter = new Counter(store, name);
    let producing = true;
    const nemesis = new Nemesis(builtinTarget(cluster), new SeededRandom(SEED + 1_000), TTL_MS, () => [], ['kill-store', 'kill-store', 'pause-store']);
    const faults = nemesis.run(QUEUE_RUN_MS);
    const producers = Promise.all([1, 2, 3].map((i) => produce(store, name, `p${i}`, ITEMS_PER_PRODUCER, run, counter))).finally(() => (producing = false));
    const consumers = Promise.all([1, 2, 3].map(() => consume(store, name, run, () => !producing, counter)));
    const [counts] = await Promise.all([faults, producers, consumers]);
    await cluster.waitLeader(cluster.ids, 30_000);
    const violations = checkExactlyOnce(run, await counter.get());
    console.log(`exactly-once seed ${SEED}: put=${run.put.length} maybePut=${run.maybe.length} taken=${run.taken.length} increments acked=${run.increments.acked} unknown=${run.increments.unknown} counter=${await counter.get()} errors=${run.errors.length} faults=${JSON.stringify(counts)}`);
    for (const e of run.errors.slice(0, 5)) console.log(`error: ${e}`);
    for (const v of violations.slice(0, 20)) console.log(`VIOLATION: ${v}`);
    expect(violations).toEqual([]);
    expect(run.taken.length).toBeGreaterThan(ITEMS_PER_PRODUCER);
    store.client.close();
  }, 120_000);

  it(`election: observers see every leader, in order, under store kills and pauses (seed ${SEED})`, async () => {
    const store = new BuiltinTxStore(new StoreClient({ endpoints: cluster.endpoints, requestTimeoutMs: 1_000 }));
    const name = `election-${SEED}-${Date.now().toString(36)}`;
    const run: ElectionRun = { won: [], observed: [[], []], refusedFencedWrites: 0, errors: [] };
    const ac = new AbortController();
    const observers = run.observed.map((into) => observer(store, name, ac.signal, into));
    const nemesis = new Nemesis(builtinTarget(cluster), new SeededRandom(SEED + 2_000), TTL_MS, () => [], ['kill-store', 'pause-store', 'partition-store']);
    const deadline = Date.now() + ELECTION_RUN_MS;
    const [counts] = await Promise.all([nemesis.run(ELECTION_RUN_MS), ...['c1', 'c2', 'c3'].map((c) => candidate(store, name, c, deadline, run))]);
    await cluster.waitLeader(cluster.ids, 30_000);
    const lastWon = Math.max(...run.won);
    await waitFor('the observers to see the last leader', 20_000, () => run.observed.every((o) => o.includes(lastWon)));
    ac.abort();
    await Promise.all(observers);
    const violations = checkElection(run);
    console.log(`election seed ${SEED}: won=${run.won.length} observed=${run.observed.map((o) => o.length).join('/')} refusedFencedWrites=${run.refusedFencedWrites} errors=${run.errors.length} faults=${JSON.stringify(counts)}`);
    for (const v of violations.slice(0, 20)) console.log(`VIOLATION: ${v}`);
    expect(violations).toEqual([]);
    expect(run.won.length).toBeGreaterThan(5);
    store.client.close();
  }, 120_000);
});
