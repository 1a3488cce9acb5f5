// Goal: a resync snapshot that the store answered before the watch delivered
// newer changes must not roll the coordinator's view back. The chaos runner
// found a coordinator that crashed on "frozen record changed in the store":
// its re-read saw the record `active` after the watch had fed it `preparing`.
// Here the read is held until the watch has fed the newer record, then
// answered with the older one, on the in-memory store model.
import { describe, expect, it } from 'vitest';
import { NO_FAILPOINTS } from '../../lib/failpoints.js';
import { LiveTx } from '../../coordinator/runtime/live-tx.js';
import { silentLogger } from '../../lib/logger.js';
import type { CoordinatorEvent } from '../../coordinator/core/machine.js';
import { encodeTxRecord, txKey, type TxRecord } from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { type TxStore } from '../../coordinator/txstore/txstore.js';
import { WatchFeed } from '../../coordinator/runtime/watch-feed.js';
import { waitUntil } from '../twopc/support/procs.js';

const record = (state: TxRecord['state']): string =>
  encodeTxRecord({ participants: [{ name: 'a', url: 'http://127.0.0.1:1' }], state, deadline: 2_000_000_000_000, createdAt: 1_700_000_000_000 });

/** A store whose range answers are captured when asked and released only when the test says so. */
function heldReads(inner: MemoryTxStore): { store: TxStore; release: () => void; asked: () => number } {
  let gate: (() => void) | undefined;
  let asked = 0;
  const store = Object.create(inner) as TxStore;
  store.range = async (prefix, opts) => {
    asked++;
    const answer = await inner.range(prefix, opts);
    if (asked === 1) await new Promise<void>((r) => (gate = r));
    return answer;
  };
  return { store, release: () => gate?.(), asked: () => asked };
}

describe('WatchFeed.resync', () => {
  it('a snapshot older than what the watch fed is read again, never fed backwards', async () => {
    const mem = new MemoryTxStore();
    const id = 'tx-race';
    const created = await mem.casCreate(txKey(id), record('active'));
    const { store, release, asked } = heldReads(mem);
    const stepped: CoordinatorEvent[] = [];
    const tx = new LiveTx(id);
    tx.knownRevision = created.revision;
    const live = new Map([[id, tx]]);
    const feed = new WatchFeed({ live, step: (_t, e) => stepped.push(e), unload: () => undefined }, store, NO_FAILPOINTS, silentLogger);
    (tx as { machine: unknown }).machine = {}; // loaded: events are fed, not buffered

    const resync = feed.resync(tx); // reads the record while it is still `active`
    await waitUntil('the resync read is taken', 5_000, () => asked() === 1);
    const frozen = await mem.casValue(txKey(id), record('active'), record('preparing'));
    expect(frozen.succeeded).toBe(true);
    feed.feed(tx, { type: 'put', key: txKey(id), value: record('preparing'), revision: frozen.revision });
    release();
    await resync;

    const observed = stepped.filter((e) => e.type === 'txObserved').map((e) => (e.type === 'txObserved' ? JSON.parse(e.raw ?? 'null').state : null));
    expect(observed).toEqual(['preparing', 'preparing']);
    expect(asked()).toBe(2);
    expect(tx.knownRevision).toBe(frozen.revision);
  });
});

describe('WatchFeed.feed', () => {
  it('a lagging watch event of the tx record, older than the record the machine holds, is not fed', async () => {
    const mem = new MemoryTxStore();
    const id = 'tx-lag';
    const created = await mem.casCreate(txKey(id), record('active'));
    const frozen = await mem.casValue(txKey(id), record('active'), record('preparing'));
    const stepped: CoordinatorEvent[] = [];
    const tx = new LiveTx(id);
    (tx as { machine: unknown }).machine = {};
    // The machine froze the record itself (its CAS answered at this revision).
    tx.txRevision = frozen.revision;
    tx.knownRevision = frozen.revision;
    const feed = new WatchFeed({ live: new Map([[id, tx]]), step: (_t, e) => stepped.push(e), unload: () => undefined }, mem, NO_FAILPOINTS, silentLogger);
    // The watch, behind, now delivers the creation and then the freeze.
    feed.feed(tx, { type: 'put', key: txKey(id), value: record('active'), revision: created.revision });
    feed.feed(tx, { type: 'put', key: txKey(id), value: record('preparing'), revision: frozen.revision });
    expect(stepped).toEqual([]);
    // A later change of the record (GC's delete) is fed as usual.
    feed.feed(tx, { type: 'delete', key: txKey(id), value: null, revision: frozen.revision + 5 });
    expect(stepped).toEqual([{ type: 'txObserved', raw: null }]);
  });
});

describe('WatchFeed: keys recreated after garbage collection (orphans)', () => {
  // Found by the 2PC simulation (`orphan-event`) and seen in a chaos run: a
  // late CAS retry recreates a vote key that GC deleted; a coordinator still
  // driving the transaction asserted "vote of X changed" and died.
  const id = 'tx-orphan';
  const vote = (v: 'yes' | 'no', by: string): string => JSON.stringify({ vote: v, by });

  function setup(votes: Map<string, { vote: string; by: string }>): { feed: WatchFeed; tx: LiveTx; stepped: CoordinatorEvent[] } {
    const stepped: CoordinatorEvent[] = [];
    const tx = new LiveTx(id);
    // A machine that knows these votes and no decision.
    (tx as { machine: unknown }).machine = { view: () => ({ votes, decision: undefined }) };
    tx.txRevision = 10;
    tx.knownRevision = 10;
    const feed = new WatchFeed({ live: new Map([[id, tx]]), step: (_t, e) => stepped.push(e), unload: () => undefined }, new MemoryTxStore(), NO_FAILPOINTS, silentLogger);
    return { feed, tx, stepped };
  }

  it('after the record was seen deleted, later votes and acks are not fed', () => {
    const { feed, tx, stepped } = setup(new Map());
    feed.feed(tx, { type: 'delete', key: txKey(id), value: null, revision: 20 });
    feed.feed(tx, { type: 'put', key: `${txKey(id)}/vote/a`, value: vote('no', 'c1'), revision: 21 });
    feed.feed(tx, { type: 'put', key: `${txKey(id)}/ack/a`, value: JSON.stringify({ at: 1 }), revision: 22 });
    expect(stepped).toEqual([{ type: 'txObserved', raw: null }]);
    expect(tx.deletedRevision).toBe(20);
  });

  it('a vote that contradicts the one the machine knows is not fed, even when the deletion was never seen', () => {
    const { feed, tx, stepped } = setup(new Map([['a', { vote: 'yes', by: 'a' }]]));
    feed.feed(tx, { type: 'put', key: `${txKey(id)}/vote/a`, value: vote('no', 'c2'), revision: 30 });
    expect(stepped).toEqual([]);
    // The same vote again is a harmless re-observation and is fed.
    feed.feed(tx, { type: 'put', key: `${txKey(id)}/vote/a`, value: vote('yes', 'a'), revision: 31 });
    expect(stepped).toEqual([{ type: 'voteObserved', participant: 'a', vote: { vote: 'yes', by: 'a' } }]);
  });
});
