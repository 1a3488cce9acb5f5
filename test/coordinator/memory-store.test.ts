// Goal: the in-memory TxStore (pure tests only) passes the same contract as
// the real store, and its own extras behave: lease expiry driven by an
// injected clock, and `compacted` for a watch that starts before the kept
// history, so tests of watch resumption see the real store's failure mode.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { TxStoreError } from '../../coordinator/txstore/txstore.js';
import { collect, txStoreContract } from './txstore.case.js';

txStoreContract('MemoryTxStore', () => new MemoryTxStore());

describe('MemoryTxStore extras', () => {
  it('expires a lease when the clock passes its ttl, deleting its keys through revisions', async () => {
    const clock = new ManualClock();
    const store = new MemoryTxStore({ clock });
    const lease = await store.grantLease(1_000);
    await store.put('owner/t1', 'c1', { lease: lease.id });
    const watched = collect(store, 'owner/', store.currentRevision + 1, 1);
    clock.advance(999);
    expect(await store.get('owner/t1')).not.toBeNull();
    await store.keepAlive(lease.id);
    clock.advance(999);
    expect(await store.get('owner/t1')).not.toBeNull();
    clock.advance(1);
    expect(await store.get('owner/t1')).toBeNull();
    expect((await watched)[0]).toMatchObject({ type: 'delete', key: 'owner/t1', value: null });
  });

  it('answers compacted for a watch older than the kept history', async () => {
    const store = new MemoryTxStore({ maxHistoryEvents: 2 });
    for (let i = 0; i < 5; i++) await store.put(`k/${i}`, String(i));
    const it1 = store.watch('k/', { fromRevision: 1 })[Symbol.asyncIterator]();
    await expect(it1.next()).rejects.toMatchObject({ code: 'compacted', status: 410 });
    expect((await collect(store, 'k/', 4, 2)).map((e) => e.key)).toEqual(['k/3', 'k/4']);
  });

  it('refuses a range limit over its maximum', async () => {
    const store = new MemoryTxStore({ maxRangeLimit: 10 });
    await expect(store.range('', { limit: 11 })).rejects.toBeInstanceOf(TxStoreError);
  });

  it('counts writes (failed CAS are not writes)', async () => {
    const store = new MemoryTxStore();
    await store.casCreate('a', '1');
    await store.casCreate('a', '2');
    await store.casValue('a', 'x', '3');
    await store.put('b', '1');
    expect(store.writes).toBe(2);
  });
});
