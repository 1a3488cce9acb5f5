// Goal: one contract every store must pass for the coordination recipes
// (recipes/), run on the built-in 3-node cluster, on a real etcd and on the
// in-memory model: sessions that keep their lease and report its loss at
// once; a mutex that is exclusive, FIFO, fenced (tokens strictly increase,
// a stale holder's write is refused by the store), with tryLock, timeout,
// abort and a wait that fails when the session dies; leader election with
// leaders observed in order. The other recipes are in recipes-more.case.ts.
//
// Every wait is bounded (waitFor, timeouts); time-based checks use the
// session TTL the suite is given (etcd rounds leases up to whole seconds).
import { describe, expect, it } from 'vitest';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { Election, isRecipeError, Mutex, Session, type Hold, type LeaderInfo } from '../../recipes/index.js';
import { systemTimers, type Timers } from '../../lib/timers.js';
import { waitFor } from '../support/wait.js';

export interface RecipeHooks {
  /** The session TTL to test expiry with (ms); the store must grant about this much. */
  readonly ttlMs: number;
}

/** Timers frozen in time: a process paused (SIGSTOP, a long GC) never renews its lease nor notices it expired. */
export const pausedTimers: Timers = { ...systemTimers, after: () => () => {}, every: () => () => {} };

let counter = 0;
/** A name no other test (or earlier run on a kept store) uses. */
export function uniqueName(what: string): string {
  return `${what}-${Date.now().toString(36)}-${process.pid}-${counter++}`;
}

/** Opens sessions and closes them after the test, however it ends. */
export async function withSessions<T>(store: TxStore, ttlMs: number, n: number, f: (s: Session[]) => Promise<T>, timers: Timers = systemTimers): Promise<T> {
  const sessions = await Promise.all(Array.from({ length: n }, () => Session.open({ store, ttlMs, timers })));
  try {
    return await f(sessions);
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

export function recipesContract(name: string, makeStore: () => TxStore, hooks: RecipeHooks): void {
  const ttl = hooks.ttlMs;

  describe(`recipes contract: ${name}`, () => {
    it('txn guard on create revision: holds for the exact creation, fails after a delete and re-create', async () => {
      const store = makeStore();
      const k = `${uniqueName('fence')}/k`;
      const a = await store.casCreate(k, 'v1');
      expect((await store.txn([{ key: k, createRevision: a.revision }], [{ type: 'put', key: `${k}.out`, value: '1' }])).succeeded).toBe(true);
      await store.put(k, 'v2'); // a modification keeps the create revision
      expect((await store.txn([{ key: k, createRevision: a.revision }], [{ type: 'put', key: `${k}.out`, value: '2' }])).succeeded).toBe(true);
      await store.delete(k);
      await store.put(k, 'v3');
      expect((await store.txn([{ key: k, createRevision: a.revision }], [{ type: 'put', key: `${k}.out`, value: '3' }])).succeeded).toBe(false);
      expect((await store.get(`${k}.out`))?.value).toBe('2');
      expect((await store.txn([{ key: `${k}.absent`, createRevision: 0 }], [])).succeeded).toBe(true);
    });

    it('session: keeps its lease alive past the TTL, and close revokes it', async () => {
      const store = makeStore();
      const s = await Session.open({ store, ttlMs: ttl });
      const k = `${uniqueName('session')}/k`;
      await store.put(k, 'v', { lease: s.leaseId });
      const t0 = Date.now();
      await waitFor('1.5 TTL to pass', ttl * 3, () => Date.now() - t0 > s.ttlMs * 1.5);
      expect((await store.get(k))?.value).toBe('v');
      expect(s.isLost).toBe(false);
      await s.close();
      expect(await store.get(k)).toBeNull();
      expect((await s.lost).code).toBe('session_lost');
    });

    it('session: a lease revoked behind its back is reported at once, to every hold on it', async () => {
      const store = makeStore();
      const s = await Session.open({ store, ttlMs: ttl });
      const hold = await new Mutex(s, uniqueName('revoked')).lock();
      await store.revokeLease(s.leaseId);
      const reason = await Promise.race([hold.lost, new Promise<'late'>((r) => setTimeout(() => r('late'), ttl))]);
      expect(reason).not.toBe('late');
      expect(hold.held).toBe(false);
      expect(hold.signal.aborted).toBe(true);
      await s.close();
    });

    it('mutex: exclusive, FIFO by create revision, tokens strictly increasing', async () => {
      const store = makeStore();
      const lockName = uniqueName('fifo');
      await withSessions(store, ttl, 4, async (ss) => {
        const first = await new Mutex(ss[0]!, lockName).lock();
        const order: number[] = [];
        const tokens: number[] = [first.token];
        const waiters = ss.slice(1).map(async (s, i) => {
          // Queue one by one so the create-revision order is known: 1, 2, 3.
          const m = new Mutex(s, lockName);
          const h = await m.lock({ timeoutMs: 20_000 });
          order.push(i + 1);
          tokens.push(h.token);
          expect((await m.holder())?.key).toBe(h.key);
          await h.release();
        });
        await waitFor('three waiters queued', 10_000, async () => (await store.range(new Mutex(ss[0]!, lockName).prefix)).kvs.length === 4);
        expect(order).toEqual([]);
        await first.release();
        await Promise.all(waiters);
        expect(tokens.length).toBe(4);
        for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
        expect(new Set(order).size).toBe(3);
      });
    });

    it('mutex: waiters are served in the order they queued', async () => {
      const store = makeStore();
      const lockName = uniqueName('order');
      await withSessions(store, ttl, 4, async (ss) => {
        const first = await new Mutex(ss[0]!, lockName).lock();
        const order: number[] = [];
        const done: Promise<void>[] = [];
        for (let i = 1; i < 4; i++) {
          done.push(new Mutex(ss[i]!, lockName).lock({ timeoutMs: 20_000 }).then(async (h) => {
            order.push(i);
            await h.release();
          }));
          await waitFor(`waiter ${i} queued`, 10_000, async () => (await store.range(new Mutex(ss[0]!, lockName).prefix)).kvs.length === i + 1);
        }
        await first.release();
        await Promise.all(done);
        expect(order).toEqual([1, 2, 3]);
      });
    });

    it('mutex: tryLock never waits; timeout and abort leave nothing queued', async () => {
      const store = makeStore();
      const lockName = uniqueName('try');
      await withSessions(store, ttl, 2, async ([a, b]) => {
        const ma = new Mutex(a!, lockName);
        const mb = new Mutex(b!, lockName);
        const h = await ma.tryLock();
        expect(h).not.toBeNull();
        expect(await mb.tryLock()).toBeNull();
        const timedOut = await mb.lock({ timeoutMs: 200 }).catch((e: unknown) => e);
        expect(isRecipeError(timedOut, 'timeout')).toBe(true);
        const ac = new AbortController();
        const aborted = mb.lock({ signal: ac.signal }).catch((e: unknown) => e);
        setTimeout(() => ac.abort(), 100);
        expect(isRecipeError(await aborted, 'aborted')).toBe(true);
        expect((await store.range(ma.prefix)).kvs.map((kv) => kv.key)).toEqual([h!.key]);
        await ma.unlock();
        const h2 = await mb.tryLock();
        expect(h2!.token).toBeGreaterThan(h!.token);
      });
    });

    it('mutex: a waiter whose session dies stops waiting at once (etcd #19597, #11408)', async () => {
      const store = makeStore();
      const lockName = uniqueName('dies');
      await withSessions(store, ttl, 2, async ([a, b]) => {
        await new Mutex(a!, lockName).lock();
        const waiting = new Mutex(b!, lockName).lock({ timeoutMs: 30_000 }).catch((e: unknown) => e);
        await waitFor('the waiter queued', 10_000, async () => (await store.range(new Mutex(a!, lockName).prefix)).kvs.length === 2);
        const t0 = Date.now();
        await store.revokeLease(b!.leaseId);
        const err = await waiting;
        expect(isRecipeError(err, 'session_lost')).toBe(true);
        expect(Date.now() - t0).toBeLessThan(ttl + 2_000);
      });
    });

    it('mutex: a holder paused past its lease is refused by the store; the next holder writes with a larger token', async () => {
      const store = makeStore();
      const lockName = uniqueName('paused');
      const register = `${uniqueName('register')}/value`;
      const paused = await Session.open({ store, ttlMs: ttl, timers: pausedTimers });
      await withSessions(store, ttl, 1, async ([live]) => {
        const stale = await new Mutex(paused, lockName).lock();
        expect((await stale.fencedPut(register, `a:${stale.token}`)).succeeded).toBe(true);
        // The paused holder renews nothing: its lease expires in the store, the live contender gets the lock.
        const next = await new Mutex(live!, lockName).lock({ timeoutMs: ttl * 4 + 5_000 });
        expect(next.token).toBeGreaterThan(stale.token);
        // The paused holder wakes up believing it still holds the lock (its timers never fired) and writes.
        expect(stale.held).toBe(true);
        expect((await stale.fencedPut(register, `a:${stale.token}:late`)).succeeded).toBe(false);
        expect((await next.fencedPut(register, `b:${next.token}`)).succeeded).toBe(true);
        expect((await store.get(register))?.value).toBe(`b:${next.token}`);
        await next.release();
        expect((await next.fencedPut(register, 'after-release')).succeeded).toBe(false);
      });
      await paused.close();
    });

    it('election: one leader at a time, proclaim, resign hands over, observe sees leaders in order', async () => {
      const store = makeStore();
      const electionName = uniqueName('elect');
      await withSessions(store, ttl, 3, async (ss) => {
        const seen: LeaderInfo[] = [];
        const ac = new AbortController();
        const observer = (async () => {
          for await (const l of new Election(ss[0]!, electionName).observe(ac.signal)) seen.push(l);
        })();
        const a = await new Election(ss[0]!, electionName).campaign('a');
        const bWins = new Election(ss[1]!, electionName).campaign('b', { timeoutMs: 20_000 });
        await waitFor('b queued', 10_000, async () => (await store.range(new Election(ss[0]!, electionName).prefix)).kvs.length === 2);
        expect((await new Election(ss[2]!, electionName).leader())?.value).toBe('a');
        await a.proclaim('a2');
        expect((await new Election(ss[2]!, electionName).leader())?.value).toBe('a2');
        await a.resign();
        const b: Hold = await bWins;
        expect(b.token).toBeGreaterThan(a.token);
        await expect(a.proclaim('stale')).rejects.toMatchObject({ code: 'not_held' });
        expect((await a.fencedPut(`${electionName}/x`, 'stale')).succeeded).toBe(false);
        await waitFor('observer saw b', 10_000, () => seen.some((l) => l.value === 'b'));
        ac.abort();
        await observer;
        expect(seen.map((l) => l.value)).toEqual(['a', 'a2', 'b']);
        for (let i = 1; i < seen.length; i++) expect(seen[i]!.revision).toBeGreaterThanOrEqual(seen[i - 1]!.revision);
      });
    });
  });
}
