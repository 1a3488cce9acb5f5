// Goal: EtcdTxStore, the adapter that runs the 2PC on an existing etcd
// cluster, passes the same TxStore contract as the built-in store and the
// in-memory model, on a REAL 3-member etcd cluster (Debian's etcd-server) on
// loopback, opened the way the processes open it (`etcd://...` through
// coordinator/txstore/open.ts). Then what only etcd needs proving: int64 lease ids kept
// exact, etcd's compaction surfacing as `compacted`, bad input refused with
// the built-in store's codes, a watch that survives the death of the member
// it streams from with no gap and no duplicate, and a cluster without quorum
// answering 5xx instead of hanging.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdTxStore } from '../../coordinator/txstore/etcd/etcd-store.js';
import { openTxStore, parseStoreSpec, storeSpecFrom, type OpenedStore } from '../../coordinator/txstore/open.js';
import { TxStoreError, type TxWatchEvent } from '../../coordinator/txstore/txstore.js';
import { etcdForTests, etcdVersion, startEtcdCluster, trackFailures, type EtcdCluster } from '../support/etcd.js';
import { collect, txStoreContract } from './txstore.case.js';

const BASE_PORT = 37000;
const BIN = etcdForTests('test/coordinator/etcd-store.test.ts');

describe.skipIf(BIN === undefined)('etcd', () => {
  const failures = trackFailures();
  /** Set when beforeAll finished: a start that failed keeps its logs too. */
  let started = false;
  let cluster: EtcdCluster;
  let opened: OpenedStore;
  let store: EtcdTxStore;

  beforeAll(async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'txstore-etcd-'));
    console.log(`etcd ${etcdVersion(BIN as string)}, 3 members on ${BASE_PORT}-${BASE_PORT + 5}, data and logs in ${dir}`);
    cluster = await startEtcdCluster(BIN as string, dir, BASE_PORT);
    opened = await openTxStore(parseStoreSpec(cluster.storeFlag), 'contract');
    if (!(opened.store instanceof EtcdTxStore)) throw new Error(`${cluster.storeFlag} opened ${opened.store.constructor.name}`);
    store = opened.store;
    started = true;
  }, 60_000);

  afterAll(async () => {
    await opened?.close();
    await cluster?.stop();
    cluster?.dispose(failures.failed || !started || process.env['TWOPC_KEEP'] === '1');
  }, 30_000);

  txStoreContract('EtcdTxStore on a 3-member etcd cluster', () => store, {
    changeLeader: async () => {
      await cluster.transferLeader();
    },
  });

  describe('EtcdTxStore specifics', () => {
    it('is what --store etcd://... and TWOPC_STORE=etcd://... select', async () => {
      const spec = storeSpecFrom(undefined, { TWOPC_STORE: cluster.storeFlag });
      expect(spec).toEqual({ kind: 'etcd', endpoints: cluster.endpoints });
      expect(storeSpecFrom('http://127.0.0.1:2379', { TWOPC_STORE: cluster.storeFlag })?.kind).toBe('builtin');
    });

    it('keeps int64 lease ids exact as decimal strings', async () => {
      // etcd's lease ids are random int64s, most beyond 2^53: as numbers they would round to another lease.
      const leases = await Promise.all([1, 2, 3, 4].map(() => store.grantLease(60_000)));
      expect(leases.some((l) => BigInt(l.id) > BigInt(Number.MAX_SAFE_INTEGER))).toBe(true);
      for (const l of leases) {
        expect(l.id).toMatch(/^[1-9][0-9]*$/);
        await store.put(`lease-id/${l.id}`, 'v', { lease: l.id });
        expect((await store.get(`lease-id/${l.id}`))?.lease).toBe(l.id);
        expect(await store.keepAlive(l.id)).toEqual({ id: l.id, ttlMs: 60_000 });
        expect(await store.revokeLease(l.id)).toEqual({ revoked: true });
        expect(await store.get(`lease-id/${l.id}`)).toBeNull();
      }
      // An id one off from a real one is another lease: not found.
      const last = leases[leases.length - 1]?.id as string;
      expect(await store.revokeLease((BigInt(last) + 1n).toString())).toEqual({ revoked: false });
    });

    it('a watch from before the compacted history throws compacted (410) with the oldest revision', async () => {
      const first = await store.put('compact/a', '1');
      await store.put('compact/b', '2');
      const last = await store.put('compact/c', '3');
      await store.client.kv.compact({ revision: last.revision, physical: true });
      const iterator = store.watch('compact/', { fromRevision: first.revision })[Symbol.asyncIterator]();
      const err = await iterator.next().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TxStoreError);
      expect(err).toMatchObject({ code: 'compacted', status: 410, details: { oldestRevision: last.revision } });
      // From the oldest kept revision on, the history is there.
      expect((await collect(store, 'compact/', last.revision, 1)).map((e) => e.key)).toEqual(['compact/c']);
    });

    it('refuses bad input with the built-in store codes before etcd sees it', async () => {
      const cases: [Promise<unknown>, string, number][] = [
        [store.put('k'.repeat(1025), 'v'), 'key_too_large', 413],
        [store.put('', 'v'), 'invalid_key', 400],
        [store.put('big', 'v'.repeat(1024 * 1024 + 1)), 'value_too_large', 413],
        [store.put('lone', '\uD800'), 'invalid_value', 400],
        [store.range('x/', { limit: 10_001 }), 'limit_too_large', 400],
        [store.range('x/', { limit: 0 }), 'limit_too_large', 400],
        [store.txn([], [{ type: 'delete', key: 'd' }, { type: 'put', key: 'd', value: 'v' }]), 'duplicate_key_in_txn', 400],
        [store.put('leased', 'v', { lease: 'abc' }), 'lease_not_found', 404],
        [store.grantLease(0), 'invalid_ttl', 400],
      ];
      for (const [call, code, status] of cases) {
        const err = await call.catch((e: unknown) => e);
        expect(err, code).toBeInstanceOf(TxStoreError);
        expect(err, code).toMatchObject({ code, status });
      }
    });

    it('CAS on the empty string compares exactly', async () => {
      await store.put('empty/k', 'x');
      expect(await store.casValue('empty/k', '', 'y')).toMatchObject({ succeeded: false, previous: 'x' });
      await store.put('empty/k', '');
      expect(await store.casValue('empty/k', '', 'y')).toMatchObject({ succeeded: true, previous: '' });
      expect((await store.get('empty/k'))?.value).toBe('y');
    });

    it('a watch survives SIGKILL of the member it streams from: after the restart, no gap and no duplicate', async () => {
      const victim = cluster.members[0];
      if (victim === undefined) throw new Error('no member');
      // A store that knows only the victim, so its watch stream is surely on it.
      const pinned = new EtcdTxStore({ endpoints: [victim.clientUrl] });
      const ac = new AbortController();
      const seen: TxWatchEvent[] = [];
      try {
        const from = (await store.range('survive/', { limit: 1 })).revision + 1;
        // The watch must never give up here: its error, if any, is the test's failure.
        const watching = (async () => {
          for await (const e of pinned.watch('survive/', { fromRevision: from, signal: ac.signal })) seen.push(e);
        })().catch((e: unknown) => e);
        const written: string[] = [];
        const write = async (k: string): Promise<void> => {
          await store.put(`survive/${k}`, k);
          written.push(`survive/${k}`);
        };
        for (const k of ['a', 'b']) await write(k);
        await until('the first events', 10_000, async () => seen.length >= 2 || (await isSettled(watching)));
        await victim.kill9();
        // Written while the member is dead: the majority commits them, the watch must get them later.
        for (const k of ['c', 'd', 'e']) await write(k);
        cluster.restart(victim);
        await cluster.waitHealthy(30_000);
        for (const k of ['f', 'g']) await write(k);
        await until('every event after the restart', 30_000, async () => seen.length >= written.length || (await isSettled(watching)));
        ac.abort();
        expect(await watching).toBeUndefined();
        expect(seen.map((e) => e.key)).toEqual(written);
        for (let i = 1; i < seen.length; i++) expect((seen[i] as TxWatchEvent).revision).toBeGreaterThan((seen[i - 1] as TxWatchEvent).revision);
      } finally {
        ac.abort();
        pinned.close();
      }
    });

    it('without a quorum, calls fail with a 5xx store error within their deadlines instead of hanging, and work again once it is back', async () => {
      const quick = new EtcdTxStore({ endpoints: cluster.endpoints, requestTimeoutMs: 1_000, callDeadlineMs: 3_000 });
      const frozen = cluster.members.slice(1);
      try {
        await quick.put('quorum/before', 'v');
        for (const m of frozen) m.pause();
        const t0 = performance.now();
        const err = await quick.put('quorum/during', 'v').catch((e: unknown) => e);
        // Each attempt ends within 1 s, the retries within the 3 s call deadline (plus one last attempt), on a loaded machine.
        expect(performance.now() - t0).toBeLessThan(15_000);
        expect(err).toBeInstanceOf(TxStoreError);
        expect(['unavailable', 'no_leader', 'request_timeout', 'outcome_unknown']).toContain((err as TxStoreError).code);
        expect((err as TxStoreError).status).toBeGreaterThanOrEqual(500);
      } finally {
        for (const m of frozen) m.resume();
      }
      try {
        await cluster.waitHealthy(30_000);
        await until('a write after the quorum is back', 30_000, async () => {
          try {
            await quick.put('quorum/after', 'v');
            return true;
          } catch {
            return false;
          }
        });
        expect((await store.get('quorum/after'))?.value).toBe('v');
      } finally {
        quick.close();
      }
    });
  });
});

/** Whether `p` has settled (a failed watch ends the wait at once, and the test shows its error). */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);
}

/** Polls `check` every 50 ms until true; fails with `what` past the deadline. */
async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
