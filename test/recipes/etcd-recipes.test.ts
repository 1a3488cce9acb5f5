// Goal: the recipes contract on a REAL 3-member etcd (Debian's etcd-server)
// on loopback, through the same EtcdTxStore the processes open with
// --store etcd://...; skipped with a message when etcd is absent (an error
// in CI, as every etcd test: test/support/etcd.ts). Also kvctl's recipe
// commands with --store etcd://..., and last the fenced-mutex fault run of
// fencing.test.ts on etcd: client processes lock and append under etcd's
// Compare(CreateRevision(key) == token) while a seeded nemesis SIGKILLs and
// restarts members, SIGSTOPs them past the lease, and SIGSTOPs lock holders
// past their lease (RECIPES_UNFENCED=1 shows the checker failing without fencing).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdTxStore } from '../../coordinator/txstore/etcd/etcd-store.js';
import { etcdForTests, etcdVersion, trackFailures } from '../support/etcd.js';
import { RecipesEtcd } from './etcd-cluster.js';
import { etcdTarget } from './fault-targets.js';
import { everyWorker, runFencing } from './fencing-run.js';
import { recipesContract, uniqueName } from './recipes.case.js';
import { runCommand } from '../../lib/cli.js';
import { kvctlCommand } from '../../store/cli/kvctl.js';
import { waitFor } from '../support/wait.js';
import { recipesMoreContract } from './recipes-more.case.js';

/** Odd: every member's ports are then odd, so the fault run may kill any (fault-targets.ts says why). */
const BASE_PORT = 28941;
const SEED = Number(process.env['RECIPES_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const BIN = etcdForTests('test/recipes/etcd-recipes.test.ts');

describe.skipIf(BIN === undefined)('recipes on etcd', () => {
  const failures = trackFailures();
  let cluster: RecipesEtcd | undefined;
  let store: EtcdTxStore;

  beforeAll(async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'recipes-etcd-'));
    console.log(`etcd ${etcdVersion(BIN as string)}, 3 members from port ${BASE_PORT}, data in ${dir}`);
    cluster = new RecipesEtcd(BIN as string, dir, BASE_PORT);
    await cluster.start();
    store = new EtcdTxStore({ endpoints: cluster.endpoints });
  }, 60_000);

  afterAll(async () => {
    for (const c of everyWorker) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
    store?.close();
    await cluster?.stop(failures.failed || process.env['TWOPC_KEEP'] === '1');
  }, 30_000);

  // etcd's TTLs are whole seconds (1 s is its minimum with these election timeouts); 2 s leaves room for a loaded machine.
  recipesContract('EtcdTxStore on a 3-member etcd', () => store, { ttlMs: 2_000 });
  recipesMoreContract('EtcdTxStore on a 3-member etcd', () => store, { ttlMs: 2_000 });

  it('kvctl lock and watch take --store etcd://... (in process)', async () => {
    const flag = `etcd://${cluster!.endpoints.map((e) => e.replace('http://', '')).join(',')}`;
    const io = (out: string[]) => ({ env: {}, out: (l: string) => out.push(l), err: (l: string) => out.push(l) });
    const name = uniqueName('etcd-cli');
    const lines: string[] = [];
    expect(await runCommand(kvctlCommand, ['lock', name, '--store', flag, '--ttl-ms', '2000', '--', 'sh', '-c', 'test -n "$LOCK_TOKEN" && exit 7'], io(lines), 'kvctl')).toBe(7);
    const watched: string[] = [];
    const watch = runCommand(kvctlCommand, ['watch', '--store', flag, '--prefix', `${name}/`, '--count', '1'], io(watched), 'kvctl');
    await waitFor('the watch to see a put', 20_000, async () => {
      await store.put(`${name}/k`, 'v');
      return watched.length >= 1;
    }, 200);
    expect(await watch).toBe(0);
    expect(watched[0]).toMatch(new RegExp(`^PUT ${name}/k v`));
  });

  // Last: it kills and pauses members. The same fault run as fencing.test.ts, under etcd's CreateRevision compare.
  it(`fenced mutex under member kills and pauses, real client processes: no stale write accepted (seed ${SEED})`, async () => {
    const e = cluster as RecipesEtcd;
    console.log(`etcd fencing seed ${SEED} (replay: RECIPES_SEED=${SEED} npx vitest run test/recipes/etcd-recipes.test.ts -t fenced)`);
    const storeFlag = `etcd://${e.endpoints.map((u) => u.replace('http://', '')).join(',')}`;
    // etcd grants whole seconds: 2 s, and holders are paused 2.5 TTLs.
    const out = await runFencing({ storeArg: { store: storeFlag }, store, target: etcdTarget(e), seed: SEED, workers: 3, runMs: 7_000, ttlMs: 2_000, kinds: ['kill-store', 'pause-store', 'pause-holder', 'pause-holder'] });
    console.log(`etcd fencing seed ${SEED}: ${out.line}`);
    for (const v of out.report.violations.slice(0, 20)) console.log(`VIOLATION: ${v}`);
    expect(out.report.violations).toEqual([]);
    expect(out.acquisitions).toBeGreaterThan(5);
    // Under two 5-second member pauses the lock may barely move; once whole, it must serve again.
    expect(out.acquisitionsAfterHeal).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
