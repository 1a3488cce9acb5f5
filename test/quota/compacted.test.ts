// Goal: 2PC cannot fill its store through its compacted records.
// - The compact `txdone/{id}` record keeps only what a repeated commit,
//   abort or keyed begin (and a late participant) needs: it decodes to the
//   same outcome, votes and reason those answers quote, it is well under
//   the old record's size, and a record in the first format still decodes.
// - Retention is a byte budget as well as a time: the Collector revokes the
//   oldest retention leases (their records go with them) once the records
//   it kept exceed retentionMaxBytes, and keeps the newest.
// - The coordinator config validates the new limits.
// - The store's alarm is in the KV snapshot, so a restored replica has it.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import { compactRecordMaxBytes, decodeDoneRecord, DONE_PREFIX, doneKey, encodeDoneRecord, type DoneRecord } from '../../coordinator/protocol/compacted.js';
import { ackKey, decisionKey, encodeAck, encodeTxRecord, encodeVote, makeVote, txKey, voteKey } from '../../coordinator/protocol/kernel.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/config.js';
import { Collector } from '../../coordinator/runtime/gc.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { KvStateMachine } from '../../store/kv/index.js';

const full = (over: Partial<DoneRecord> = {}): DoneRecord => ({
  id: 'tlq3k2j1a0b1c2d3e4f5a6b7c8',
  outcome: 'committed',
  participants: [
    { name: 'inventory', url: 'http://127.0.0.1:7101' },
    { name: 'payments', url: 'http://127.0.0.1:7102' },
  ],
  votes: { inventory: makeVote('yes', 'inventory'), payments: makeVote('yes', 'payments') },
  acks: { inventory: 1_765_000_000_500, payments: 1_765_000_000_600 },
  createdAt: 1_765_000_000_000,
  deadline: 1_765_000_010_000,
  collectedAt: 1_765_000_001_000,
  metadata: { order: 'o-123', customer: 'c-456', note: 'x'.repeat(100) },
  ...over,
});

describe('the compact record', () => {
  it('keeps what a retry answers: outcome, names, votes implied by a commit, deadline, creation and collection times', () => {
    const r = full();
    const text = encodeDoneRecord(r);
    const back = decodeDoneRecord(text);
    // Every participant had acked by the collection: its ack reads back at collectedAt.
    const acks = { inventory: r.collectedAt, payments: r.collectedAt };
    expect(back).toEqual({ ...r, participants: r.participants.map((p) => ({ name: p.name, url: '' })), acks, metadata: undefined });
    expect(JSON.parse(text)).toMatchObject({ v: 2, o: 'c', p: ['inventory', 'payments'] });
    // Well under the first format (JSON of the whole DoneRecord).
    const before = Buffer.byteLength(JSON.stringify(r)) + Buffer.byteLength(doneKey(r.id));
    const after = Buffer.byteLength(text) + Buffer.byteLength(doneKey(r.id));
    expect(after).toBeLessThan(170); // 157: a 26-character id, two names of 8 and 9 characters
    expect(after * 2).toBeLessThan(before);
    expect(after).toBeLessThan(compactRecordMaxBytes(32));
  });

  it('keeps the yes votes and the first no (with its reason) of an abort', () => {
    const r = full({
      outcome: 'aborted',
      participants: [
        { name: 'a', url: 'http://a' },
        { name: 'b', url: 'http://b' },
        { name: 'c', url: 'http://c' },
      ],
      votes: { a: makeVote('yes', 'a'), b: makeVote('no', 'c1', 'deadline passed'), c: makeVote('no', 'c', 'out of stock') },
    });
    const back = decodeDoneRecord(encodeDoneRecord(r));
    expect(back.outcome).toBe('aborted');
    expect(back.votes).toEqual({ a: { vote: 'yes', by: 'a' }, b: { vote: 'no', by: 'c1', reason: 'deadline passed' } });
  });

  it('still decodes a record in the first format', () => {
    const r = full();
    expect(decodeDoneRecord(JSON.stringify(r))).toEqual(r);
  });

  it('refuses corrupt compact records', () => {
    expect(() => decodeDoneRecord('{"v":2,"id":"t","o":"x","p":[],"t":1,"d":2,"c":3}')).toThrow(/outcome/);
    expect(() => decodeDoneRecord('{"v":2,"id":"t","o":"c","p":["/"],"t":1,"d":2,"c":3}')).toThrow(/participant/);
    expect(() => decodeDoneRecord('{"v":2,"id":"t","o":"c","p":[],"d":2,"c":3}')).toThrow(/bad t/);
  });
});

async function finished(store: MemoryTxStore, id: string): Promise<void> {
  const now = Date.now();
  await store.put(txKey(id), encodeTxRecord({ participants: [{ name: 'p', url: 'http://p' }], state: 'preparing', deadline: now + 60_000, createdAt: now }));
  await store.casCreate(voteKey(id, 'p'), encodeVote(makeVote('yes', 'p')));
  await store.casCreate(decisionKey(id), 'commit');
  await store.casCreate(ackKey(id, 'p'), encodeAck(now));
}

describe('the retention byte budget', () => {
  it('revokes the oldest retention leases once the kept records exceed it, keeping the newest', async () => {
    const store = new MemoryTxStore();
    const budget = 4_000;
    const gc = new Collector({ store, retentionMs: 3_600_000, retentionMaxBytes: budget, timers: systemTimers, random: new SeededRandom(1), retry: { maxAttempts: 3, baseMs: 1, maxMs: 5 } });
    const ids = Array.from({ length: 200 }, (_, i) => `t${String(i).padStart(4, '0')}`);
    for (const id of ids) {
      await finished(store, id);
      expect((await gc.collect(id)).collected).toBe(true);
    }
    const kept = [...store.dump()].filter(([k]) => k.startsWith(DONE_PREFIX));
    const bytes = kept.reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(bytes).toBeLessThanOrEqual(budget);
    expect(bytes).toBeGreaterThan(budget / 2);
    expect(gc.retainedBytes).toBe(bytes);
    expect(gc.budgetRevokes).toBeGreaterThan(0);
    // Oldest first: what is left is a suffix of the collection order.
    const keptIds = kept.map(([k]) => k.slice(DONE_PREFIX.length)).sort();
    expect(keptIds).toEqual(ids.slice(ids.length - keptIds.length));
  });

  it('is validated in the coordinator config', () => {
    expect(makeCoordinatorConfig({ id: 'c' })).toMatchObject({ retentionMaxBytes: 16 * 1024 * 1024, storeHighWaterPercent: 90, storeQuotaBytes: 2 * 1024 ** 3 });
    expect(() => makeCoordinatorConfig({ id: 'c', retentionMaxBytes: 10 })).toThrow(/retentionMaxBytes/);
    expect(() => makeCoordinatorConfig({ id: 'c', storeHighWaterPercent: 101 })).toThrow(/storeHighWaterPercent/);
    expect(() => makeCoordinatorConfig({ id: 'c', storeQuotaBytes: 0 })).toThrow(/storeQuotaBytes/);
  });
});

describe('the NOSPACE alarm in the KV state machine', () => {
  it('is raised by a write past the quota, kept in the snapshot, and disarmed once the refused write fits', () => {
    const kv = new KvStateMachine({ maxStoreBytes: 1_000 });
    let i = 1;
    expect(kv.apply({ type: 'put', key: 'a', value: 'x'.repeat(950) }, i++).result.ok).toBe(true);
    expect(kv.apply({ type: 'put', key: 'b', value: 'x'.repeat(60) }, i++).result).toMatchObject({ ok: false, error: { code: 'store_full', alarm: 'NOSPACE' } });
    expect(kv.alarms).toEqual([{ type: 'NOSPACE', raisedAtRevision: 2, storeBytes: 951, growthBytes: 61 }]);
    // Growing writes are refused even within the quota; lease grants too; deletes and shrinking writes pass.
    expect(kv.apply({ type: 'put', key: 'c', value: 'y' }, i++).result).toMatchObject({ error: { code: 'store_full' } });
    expect(kv.apply({ type: 'leaseGrant', id: 7, ttlMs: 1_000 }, i++).result).toMatchObject({ error: { code: 'store_full' } });
    expect(kv.apply({ type: 'put', key: 'a', value: 'x'.repeat(940) }, i++).result.ok).toBe(true);
    // A replica restored from the snapshot has the alarm.
    const copy = KvStateMachine.restore(kv.snapshot(), { maxStoreBytes: 1_000 });
    expect(copy.alarms).toEqual(kv.alarms);
    expect(copy.apply({ type: 'alarmDisarm' }, i).result).toMatchObject({ ok: false, error: { code: 'still_over_quota' } });
    // 941 stored + the refused 61 is still over 1,000.
    expect(kv.apply({ type: 'alarmDisarm' }, i++).result).toMatchObject({ ok: false, error: { code: 'still_over_quota', storeBytes: 941, growthBytes: 61 } });
    expect(kv.apply({ type: 'delete', key: 'a' }, i++).result.ok).toBe(true);
    expect(kv.apply({ type: 'alarmDisarm' }, i++).result).toMatchObject({ ok: true, disarmed: true });
    expect(kv.alarms).toEqual([]);
    expect(JSON.parse(kv.snapshot())).not.toHaveProperty('alarms');
    expect(kv.apply({ type: 'put', key: 'b', value: 'x'.repeat(60) }, i++).result.ok).toBe(true);
  });

  it('asks a disarm for at most a tenth of the quota, so a write bigger than the quota cannot make the alarm permanent', () => {
    const kv = new KvStateMachine({ maxStoreBytes: 1_000 });
    expect(kv.apply({ type: 'put', key: 'a', value: 'x'.repeat(500) }, 1).result.ok).toBe(true);
    expect(kv.apply({ type: 'put', key: 'b', value: 'x'.repeat(999) }, 2).result).toMatchObject({ error: { code: 'store_full' } });
    expect(kv.apply({ type: 'alarmDisarm' }, 3).result).toMatchObject({ ok: true, disarmed: true });
  });
});
