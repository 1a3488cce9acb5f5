// Goal: a coordinator that has not yet seen a transaction's garbage
// collection must not write into it. The 2PC simulation found it
// (`write-after-gc`, seeds 232, 308, 10) and the 30-minute chaos run hit it:
// a stale machine filled "no" into the deleted vote key, answered its client
// "aborted" and wrote "abort" into the deleted decision key, for a
// transaction that had committed and been applied. Vote fills and decisions
// are now created only while the frozen record is still there.
import { describe, expect, it } from 'vitest';
import { systemTimers } from '../../lib/timers.js';
import { SeededRandom } from '../../lib/random.js';
import { DONE_PREFIX } from '../../coordinator/protocol/compacted.js';
import { finishTransaction } from '../../coordinator/runtime/finish.js';
import { Collector } from '../../coordinator/runtime/gc.js';
import { CoordinatorMachine } from '../../coordinator/core/machine.js';
import { ackKey, decisionKey, encodeAck, encodeTxRecord, encodeVote, makeVote, txKey, voteKey } from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { guardedCreate, readTxSnapshot, type TxStore } from '../../coordinator/txstore/txstore.js';
import { Driver, record, T0 } from './harness.js';

const random = new SeededRandom(7);
const retry = { maxAttempts: 3, baseMs: 1, maxMs: 2 };
const FROZEN = encodeTxRecord(record(['a', 'b'], { state: 'preparing' }));

describe('guardedCreate', () => {
  it('creates while the guard holds; reports previous, or a failed guard, otherwise', async () => {
    const store = new MemoryTxStore();
    await store.casCreate(txKey('g'), FROZEN);
    const guard = { key: txKey('g'), value: FROZEN };
    expect(await guardedCreate(store, voteKey('g', 'a'), 'x', guard)).toMatchObject({ succeeded: true, guardFailed: false });
    expect(await guardedCreate(store, voteKey('g', 'a'), 'y', guard)).toMatchObject({ succeeded: false, previous: 'x', guardFailed: false });
    await store.delete(txKey('g'));
    // The key exists but the record is gone: the failed guard wins, the orphan value is not reported.
    expect(await guardedCreate(store, voteKey('g', 'a'), 'y', guard)).toMatchObject({ succeeded: false, previous: null, guardFailed: true });
    expect(await guardedCreate(store, voteKey('g', 'b'), 'y', guard)).toMatchObject({ succeeded: false, guardFailed: true });
    expect(await store.get(voteKey('g', 'b'))).toBeNull();
  });
});

describe('a coordinator behind the garbage collection', () => {
  it('fills no vote and writes no decision into a collected transaction; its client is not told "aborted"', async () => {
    const store = new MemoryTxStore();
    const id = 'late';
    // The stale machine saw the freeze and a's "yes", then its watch fell behind.
    await store.casCreate(txKey(id), FROZEN);
    await store.casCreate(voteKey(id, 'a'), encodeVote(makeVote('yes', 'a')));
    const stale = new Driver(store, new CoordinatorMachine(await readTxSnapshot(store, id), { coordinatorId: 'c-stale' }));
    await stale.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 100 });
    // Meanwhile b voted "yes", another coordinator decided commit, both acked, and it was collected.
    await store.casCreate(voteKey(id, 'b'), encodeVote(makeVote('yes', 'b')));
    await store.casCreate(decisionKey(id), 'commit');
    await store.casCreate(ackKey(id, 'a'), encodeAck(1));
    await store.casCreate(ackKey(id, 'b'), encodeAck(2));
    const gc = new Collector({ store, retentionMs: 60_000, timers: systemTimers, random, retry });
    expect((await gc.collect(id)).collected).toBe(true);

    await stale.step({ type: 'deadlineReached', nowMs: T0 + 10_000 });

    expect(stale.log.filter((e) => e.type === 'writeVote').length).toBe(1); // it tried to fill b's vote
    expect(stale.replies.get('c1')).toMatchObject({ kind: 'error', code: 'tx_not_found' }); // the service then reads the compacted record
    expect([...store.dump().keys()]).toEqual([`${DONE_PREFIX}${id}`]); // nothing recreated
  });

  it('finishTransaction racing the collection returns the compacted decision and writes nothing', async () => {
    const mem = new MemoryTxStore();
    const id = 'race';
    await mem.casCreate(txKey(id), FROZEN);
    await mem.casCreate(voteKey(id, 'a'), encodeVote(makeVote('yes', 'a')));
    // The helper reads its snapshot (a yes, b missing); then, before its first write, b votes yes,
    // the transaction commits, both ack, and it is collected.
    const store = Object.create(mem) as TxStore;
    let collectedOnce = false;
    store.txn = async (guards, writes) => {
      if (!collectedOnce) {
        collectedOnce = true;
        await mem.casCreate(voteKey(id, 'b'), encodeVote(makeVote('yes', 'b')));
        await mem.casCreate(decisionKey(id), 'commit');
        await mem.casCreate(ackKey(id, 'a'), encodeAck(1));
        await mem.casCreate(ackKey(id, 'b'), encodeAck(2));
        const gc = new Collector({ store: mem, retentionMs: 60_000, timers: systemTimers, random, retry });
        expect((await gc.collect(id)).collected).toBe(true);
      }
      return mem.txn(guards, writes);
    };
    expect(await finishTransaction(store, id, { helperId: 'h', nowMs: T0 + 20_000, retry, random, timers: systemTimers })).toBe('commit');
    expect([...mem.dump().keys()]).toEqual([`${DONE_PREFIX}${id}`]);
  });
});
