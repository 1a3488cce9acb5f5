// Goal: one contract every TxStore implementation must pass (shared/STYLE.md,
// "a shared contract suite"), so the in-memory model used by the pure tests
// cannot drift from the real store: CAS create-if-absent and CAS on value with
// `previous`, put/delete results, ordered paged ranges, watches that replay
// from a revision with no gaps, and leases whose keys vanish on revoke.
import { describe, expect, it } from 'vitest';
import { rangeAll, TxStoreError, type TxStore, type TxWatchEvent } from '../../coordinator/store.js';

/** Collects `count` events from a watch, or fails after `timeoutMs`. */
export async function collect(store: TxStore, prefix: string, fromRevision: number, count: number, timeoutMs = 5_000): Promise<TxWatchEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const out: TxWatchEvent[] = [];
  try {
    for await (const e of store.watch(prefix, { fromRevision, signal: ac.signal })) {
      out.push(e);
      if (out.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return out;
}

/** `makeStore` returns a store; `ns` isolates each test's keys when the store is shared. */
export function txStoreContract(name: string, makeStore: () => TxStore): void {
  let counter = 0;
  const ns = (): string => `contract-${Date.now().toString(36)}-${counter++}/`;

  describe(`TxStore contract: ${name}`, () => {
    it('casCreate: first writer wins, and previous tells the loser what is there', async () => {
      const store = makeStore();
      const k = `${ns()}vote`;
      const a = await store.casCreate(k, 'yes');
      const b = await store.casCreate(k, 'no');
      expect(a).toMatchObject({ succeeded: true, previous: null });
      expect(b).toMatchObject({ succeeded: false, previous: 'yes' });
      expect(b.revision).toBeGreaterThanOrEqual(a.revision);
      expect((await store.get(k))?.value).toBe('yes');
    });

    it('casValue: swaps only on the exact value, and fails on an absent key', async () => {
      const store = makeStore();
      const k = `${ns()}tx`;
      expect(await store.casValue(k, 'x', 'y')).toMatchObject({ succeeded: false, previous: null });
      await store.casCreate(k, 'active');
      expect(await store.casValue(k, 'other', 'preparing')).toMatchObject({ succeeded: false, previous: 'active' });
      expect(await store.casValue(k, 'active', 'preparing')).toMatchObject({ succeeded: true, previous: 'active' });
      const kv = await store.get(k);
      expect(kv).toMatchObject({ key: k, value: 'preparing', version: 2 });
      expect(kv!.modRevision).toBeGreaterThan(kv!.createRevision);
    });

    it('put and delete report the previous value; get of a missing key is null', async () => {
      const store = makeStore();
      const k = `${ns()}k`;
      expect(await store.get(k)).toBeNull();
      expect((await store.put(k, '1')).previous).toBeNull();
      expect((await store.put(k, '2')).previous).toBe('1');
      expect(await store.delete(k)).toMatchObject({ deleted: true, previous: '2' });
      expect(await store.delete(k)).toMatchObject({ deleted: false, previous: null });
      expect(await store.get(k)).toBeNull();
    });

    it('range: ordered by key, paged with limit and after, prefix-exact', async () => {
      const store = makeStore();
      const p = ns();
      for (const k of ['c', 'a', 'b', 'd']) await store.put(`${p}r/${k}`, k);
      await store.put(`${p}rx`, 'outside');
      const first = await store.range(`${p}r/`, { limit: 3 });
      expect(first.kvs.map((kv) => kv.value)).toEqual(['a', 'b', 'c']);
      expect(first.more).toBe(true);
      const rest = await store.range(`${p}r/`, { limit: 3, after: first.kvs[2]!.key });
      expect(rest.kvs.map((kv) => kv.value)).toEqual(['d']);
      expect(rest.more).toBe(false);
      const all = await rangeAll(store, `${p}r/`, 2);
      expect(all.kvs.map((kv) => kv.value)).toEqual(['a', 'b', 'c', 'd']);
    });

    it('watch: replays from a revision in order, then follows live changes, only under the prefix', async () => {
      const store = makeStore();
      const p = ns();
      const r1 = await store.put(`${p}w/1`, 'one');
      await store.put(`${p}other`, 'skip');
      await store.casCreate(`${p}w/2`, 'two');
      const live = collect(store, `${p}w/`, r1.revision, 4);
      await new Promise((r) => setTimeout(r, 50));
      await store.delete(`${p}w/1`);
      await store.put(`${p}w/3`, 'three');
      const events = await live;
      expect(events.map((e) => [e.type, e.key.slice(p.length), e.value])).toEqual([
        ['put', 'w/1', 'one'],
        ['put', 'w/2', 'two'],
        ['delete', 'w/1', null],
        ['put', 'w/3', 'three'],
      ]);
      for (let i = 1; i < events.length; i++) expect(events[i]!.revision).toBeGreaterThan(events[i - 1]!.revision);
    });

    it('watch ends when its signal aborts', async () => {
      const store = makeStore();
      const ac = new AbortController();
      const done = (async () => {
        const seen: TxWatchEvent[] = [];
        for await (const e of store.watch(`${ns()}quiet/`, { signal: ac.signal })) seen.push(e);
        return seen;
      })();
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      expect(await done).toEqual([]);
    });

    it('txn: applies every write at one revision only when every guard holds (value or absence)', async () => {
      const store = makeStore();
      const p = ns();
      await store.put(`${p}tx`, 'frozen');
      await store.put(`${p}tx/vote`, 'yes');
      const from = (await store.range(p)).revision + 1;
      const refused = await store.txn([{ key: `${p}tx`, value: 'other' }], [{ type: 'delete', key: `${p}tx` }]);
      expect(refused.succeeded).toBe(false);
      const notAbsent = await store.txn([{ key: `${p}tx`, value: null }], [{ type: 'put', key: `${p}done`, value: 'x' }]);
      expect(notAbsent.succeeded).toBe(false);
      expect(await store.get(`${p}done`)).toBeNull();
      const ok = await store.txn(
        [
          { key: `${p}tx`, value: 'frozen' },
          { key: `${p}done`, value: null },
        ],
        [
          { type: 'put', key: `${p}done`, value: 'committed' },
          { type: 'delete', key: `${p}tx` },
          { type: 'delete', key: `${p}tx/vote` },
        ],
      );
      expect(ok.succeeded).toBe(true);
      expect((await store.get(`${p}done`))?.value).toBe('committed');
      expect(await store.get(`${p}tx`)).toBeNull();
      const events = await collect(store, p, from, 3);
      expect(events.map((e) => e.revision)).toEqual([ok.revision, ok.revision, ok.revision]);
      expect(events.map((e) => [e.type, e.key]).sort()).toEqual([
        ['delete', `${p}tx`],
        ['delete', `${p}tx/vote`],
        ['put', `${p}done`],
      ]);
    });

    it('leases: keys attached to a revoked lease are deleted; unknown leases are refused', async () => {
      const store = makeStore();
      const p = ns();
      const lease = await store.grantLease(60_000);
      expect(lease.ttlMs).toBe(60_000);
      await store.put(`${p}owner`, 'c1', { lease: lease.id });
      expect((await store.get(`${p}owner`))?.lease).toBe(lease.id);
      expect((await store.keepAlive(lease.id)).id).toBe(lease.id);
      expect((await store.revokeLease(lease.id)).revoked).toBe(true);
      expect(await store.get(`${p}owner`)).toBeNull();
      await expect(store.keepAlive(lease.id)).rejects.toBeInstanceOf(TxStoreError);
      await expect(store.put(`${p}x`, 'v', { lease: lease.id })).rejects.toMatchObject({ code: 'lease_not_found' });
    });
  });
}
