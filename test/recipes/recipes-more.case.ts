// Goal: the rest of the recipes contract (recipes.case.ts has sessions,
// the mutex and elections), on every store: the read-write lock and the
// semaphore admit who they should and no more; barriers hold and let go;
// the counter counts every concurrent increment once; the queue hands each
// item to exactly one taker, FIFO or by priority, and a blocking take waits
// for a put or times out; group members vanish with their session and the
// watch shows it; the config tree decodes typed values and reports bad ones.
import { describe, expect, it } from 'vitest';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { Barrier, ConfigTree, Counter, DoubleBarrier, Group, isRecipeError, Queue, RWMutex, Semaphore, Session, type Member } from '../../recipes/index.js';
import { waitFor } from '../support/wait.js';
import { uniqueName, withSessions, type RecipeHooks } from './recipes.case.js';

export function recipesMoreContract(name: string, makeStore: () => TxStore, hooks: RecipeHooks): void {
  const ttl = hooks.ttlMs;

  describe(`recipes contract (more): ${name}`, () => {
    it('rwmutex: readers share, a writer excludes, a queued writer holds back later readers', async () => {
      const store = makeStore();
      const n = uniqueName('rw');
      await withSessions(store, ttl, 4, async ([a, b, c, d]) => {
        const r1 = await new RWMutex(a!, n).rLock();
        const r2 = await new RWMutex(b!, n).tryRLock();
        expect(r2).not.toBeNull();
        expect(await new RWMutex(c!, n).tryLock()).toBeNull();
        let writerIn = false;
        const writer = new RWMutex(c!, n).lock({ timeoutMs: 20_000 }).then((h) => ((writerIn = true), h));
        await waitFor('writer queued', 10_000, async () => (await store.range(new RWMutex(a!, n).prefix)).kvs.length === 3);
        expect(await new RWMutex(d!, n).tryRLock()).toBeNull(); // behind the queued writer
        await r1.release();
        expect(writerIn).toBe(false);
        await r2!.release();
        const w = await writer;
        expect(w.token).toBeGreaterThan(r2!.token);
        await w.release();
        expect(await new RWMutex(d!, n).tryRLock()).not.toBeNull();
      });
    });

    it('semaphore: at most N holders, the next one gets in when one leaves', async () => {
      const store = makeStore();
      const n = uniqueName('sem');
      await withSessions(store, ttl, 3, async ([a, b, c]) => {
        const h1 = await new Semaphore(a!, n, 2).acquire();
        const h2 = await new Semaphore(b!, n, 2).acquire();
        expect(await new Semaphore(c!, n, 2).tryAcquire()).toBeNull();
        const third = new Semaphore(c!, n, 2).acquire({ timeoutMs: 20_000 });
        await waitFor('third queued', 10_000, async () => (await store.range(new Semaphore(a!, n, 2).prefix)).kvs.length === 3);
        await h1.release();
        const h3 = await third;
        expect(h3.token).toBeGreaterThan(h2.token);
        const timedOut = await new Semaphore(a!, n, 2).acquire({ timeoutMs: 200 }).catch((e: unknown) => e);
        expect(isRecipeError(timedOut, 'timeout')).toBe(true);
        // A contender with another count is refused rather than let a third holder in.
        await expect(new Semaphore(a!, n, 3).acquire({ timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'invalid_value' });
        expect((await store.range(new Semaphore(a!, n, 2).prefix)).kvs.length).toBe(2);
      });
    });

    it('barrier: wait returns only once it is released', async () => {
      const store = makeStore();
      const barrier = new Barrier(store, uniqueName('barrier'));
      expect(await barrier.hold()).toBe(true);
      expect(await barrier.hold()).toBe(false);
      let passed = false;
      const waiting = barrier.wait({ timeoutMs: 20_000 }).then(() => (passed = true));
      const early = await barrier.wait({ timeoutMs: 200 }).catch((e: unknown) => e);
      expect(isRecipeError(early, 'timeout')).toBe(true);
      expect(passed).toBe(false);
      await barrier.release();
      await waiting;
      await barrier.wait({ timeoutMs: 1_000 }); // down: returns at once
    });

    it('double barrier: nobody enters before N did, nobody leaves before all did', async () => {
      const store = makeStore();
      const n = uniqueName('double');
      await withSessions(store, ttl, 3, async (ss) => {
        const entered: number[] = [];
        const barriers = ss.map((s) => new DoubleBarrier(s, n, 3));
        const enters = barriers.slice(0, 2).map((b, i) => b.enter({ timeoutMs: 20_000 }).then(() => entered.push(i)));
        await waitFor('two waiting', 10_000, async () => (await store.range(barriers[0]!.prefix)).kvs.length === 2);
        expect(entered).toEqual([]);
        await Promise.all([barriers[2]!.enter({ timeoutMs: 20_000 }), ...enters]);
        const left: number[] = [];
        const leaves = [0, 1].map((i) => barriers[i]!.leave({ timeoutMs: 20_000 }).then(() => left.push(i)));
        await waitFor('two left their keys', 10_000, async () => (await store.range(`${barriers[0]!.prefix}waiters/`)).kvs.length === 1);
        expect(left).toEqual([]);
        await Promise.all([barriers[2]!.leave({ timeoutMs: 20_000 }), ...leaves]);
        expect((await store.range(barriers[0]!.prefix)).kvs).toEqual([]);
      });
    });

    it('counter: concurrent increments are each counted once', async () => {
      const store = makeStore();
      const n = uniqueName('counter');
      const counters = [0, 1, 2].map(() => new Counter(store, n));
      const results = await Promise.all(counters.flatMap((c) => Array.from({ length: 5 }, () => c.increment())));
      expect(new Set(results).size).toBe(15);
      expect(await counters[0]!.get()).toBe(15);
      expect(await counters[1]!.add(-5)).toBe(10);
    });

    it('queue: FIFO, priorities first, each item to exactly one taker, blocking take', async () => {
      const store = makeStore();
      const n = uniqueName('queue');
      await withSessions(store, ttl, 3, async ([a, b, c]) => {
        const q = new Queue(a!, n);
        for (const d of ['1', '2', '3']) await q.put(d);
        await q.put('urgent', -1);
        expect((await q.list()).map((i) => i.data)).toEqual(['urgent', '1', '2', '3']);
        expect((await q.take()).data).toBe('urgent');
        const takers = [new Queue(b!, n), new Queue(c!, n), q];
        const got = await Promise.all([...takers, ...takers].map((t) => t.tryTake()));
        expect(got.filter((i) => i !== null).map((i) => i!.data).sort()).toEqual(['1', '2', '3']);
        expect(await q.tryTake()).toBeNull();
        const timedOut = await q.take({ timeoutMs: 200 }).catch((e: unknown) => e);
        expect(isRecipeError(timedOut, 'timeout')).toBe(true);
        const waiting = new Queue(b!, n).take({ timeoutMs: 20_000 });
        await q.put('later');
        expect((await waiting).data).toBe('later');
        expect((await store.range(q.prefix)).kvs).toEqual([]); // items gone, claims removed
      });
    });

    it('group: members join under their lease, vanish with their session, and the watch shows it', async () => {
      const store = makeStore();
      const g = new Group(store, uniqueName('group'));
      const a = await Session.open({ store, ttlMs: ttl });
      const b = await Session.open({ store, ttlMs: ttl });
      const views: Member[][] = [];
      const ac = new AbortController();
      const watching = (async () => {
        for await (const m of g.watch(ac.signal)) views.push(m);
      })();
      // The watch's first view is the membership before any join; from there every change is a view of its own.
      // (Joining before it is read let a slow etcd start the watch after b had left, with no view holding a and b.)
      await waitFor('the watch to show the empty group', 10_000, () => views.length > 0);
      expect(views[0]).toEqual([]);
      await g.join(a, 'a', 'http://a');
      const mb = await g.join(b, 'b', 'http://b');
      await expect(g.join(a, 'b', 'x')).rejects.toMatchObject({ code: 'locked' });
      await mb.update('http://b2');
      expect((await g.members()).map((m) => [m.id, m.value])).toEqual([['a', 'http://a'], ['b', 'http://b2']]);
      await b.close();
      await waitFor('b gone from the watch', 10_000, () => views.at(-1)?.map((m) => m.id).join() === 'a');
      ac.abort();
      await watching;
      expect(views.map((v) => v.map((m) => m.id).join())).toContain('a,b');
      await a.close();
      expect(await g.members()).toEqual([]);
    });

    it('config: typed values checked against the schema, bad stored values reported, changes watched', async () => {
      const store = makeStore();
      interface Limits { readonly maxConnections: number; readonly mode: 'fast' | 'safe' }
      const schema = { type: 'object', properties: { maxConnections: { type: 'integer', minimum: 1 }, mode: { enum: ['fast', 'safe'] } }, required: ['maxConnections', 'mode'], additionalProperties: false };
      const tree = new ConfigTree<Limits>(store, uniqueName('config'), schema);
      await tree.set('db/primary', { maxConnections: 10, mode: 'safe' });
      await expect(tree.set('db/bad', { maxConnections: 0, mode: 'safe' })).rejects.toMatchObject({ code: 'invalid_value' });
      expect(await tree.get('db/primary')).toEqual({ maxConnections: 10, mode: 'safe' });
      expect(await tree.get('db/none')).toBeNull();
      await store.put(`${tree.prefix}db/corrupt`, '{"maxConnections":"many"}');
      await expect(tree.get('db/corrupt')).rejects.toMatchObject({ code: 'invalid_value' });
      const ac = new AbortController();
      const seen: number[] = [];
      const watching = (async () => {
        for await (const v of tree.watch(ac.signal)) {
          expect(v.invalid.has('db/corrupt')).toBe(true);
          seen.push(v.values.get('db/primary')?.maxConnections ?? -1);
        }
      })();
      await waitFor('the first view', 10_000, () => seen.length >= 1);
      await tree.set('db/primary', { maxConnections: 20, mode: 'fast' });
      await waitFor('the change', 10_000, () => seen.includes(20));
      ac.abort();
      await watching;
      expect(seen).toEqual([10, 20]);
    });
  });
}
