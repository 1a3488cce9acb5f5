// Goal: the coordinator runtime's small parts do what their headers say:
// the bounded scan of `tx/` groups keys by transaction even when ids share a
// prefix ('tx/ab.c' sorts between 'tx/ab' and 'tx/ab/vote'), pages without
// losing or repeating a transaction, and the listing merges live and
// compacted records; finishTransaction writes nothing before the deadline
// and decides by the commit rule after it; the collector removes a finished
// transaction's keys atomically and refuses an unfinished one; backoff stays
// within its bounds; failpoints fire on the N-th hit; metrics render in the
// Prometheus text format; configuration is validated at start.
import { describe, expect, it } from 'vitest';
import { systemTimers } from '../../lib/timers.js';
import { SeededRandom } from '../../lib/random.js';
import { decodeDoneRecord, DONE_PREFIX, doneKey } from '../../coordinator/protocol/compacted.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/config.js';
import { FAILPOINT_NAMES, Failpoints, NO_FAILPOINTS } from '../../lib/failpoints.js';
import { finishTransaction } from '../../coordinator/runtime/finish.js';
import { Collector } from '../../coordinator/runtime/gc.js';
import { MetricsRegistry, parseMetrics } from '../../lib/metrics.js';
import { ackKey, decisionKey, encodeAck, encodeTxRecord, encodeVote, makeVote, txKey, voteKey, type TxRecord } from '../../coordinator/protocol/kernel.js';
import { listTransactions, scanTransactions } from '../../coordinator/runtime/query.js';
import { backoffDelayMs } from '../../lib/retry.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';

const random = new SeededRandom(7);
const retry = { maxAttempts: 3, baseMs: 1, maxMs: 10 };

function rec(names: readonly string[], state: TxRecord['state'], deadline: number): TxRecord {
  return { participants: names.map((name) => ({ name, url: 'http://127.0.0.1:9' })), state, deadline, createdAt: 1 };
}

async function frozenWithVotes(store: MemoryTxStore, id: string, votes: Record<string, 'yes' | 'no'>, names: readonly string[], deadline: number): Promise<void> {
  await store.put(txKey(id), encodeTxRecord(rec(names, 'preparing', deadline)));
  for (const [p, v] of Object.entries(votes)) await store.casCreate(voteKey(id, p), encodeVote(makeVote(v, p)));
}

describe('scanning and listing', () => {
  it('groups interleaved keys of ids that share a prefix, and pages without loss or repeats', async () => {
    const store = new MemoryTxStore();
    const ids = ['ab', 'ab-x', 'ab.c', 'abc', 'b'];
    for (const id of ids) await frozenWithVotes(store, id, { p: 'yes', q: 'yes' }, ['p', 'q'], Date.now() + 60_000);
    const whole = await scanTransactions(store, undefined, 1_000);
    expect([...whole.groups.keys()]).toEqual([...ids].sort());
    for (const [id, kvs] of whole.groups) expect(kvs.map((kv) => kv.key).sort()).toEqual([txKey(id), voteKey(id, 'p'), voteKey(id, 'q')].sort());
    // Tiny bounded scans: every id exactly once, each group complete.
    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await scanTransactions(store, after, 2, 2);
      for (const [id, kvs] of page.groups) {
        seen.push(id);
        expect(kvs).toHaveLength(3);
      }
      if (page.exhausted) break;
      after = page.lastKey;
    }
    expect(seen).toEqual([...ids].sort());
  });

  it('lists live and compacted transactions by state, in id order, with a next cursor', async () => {
    const store = new MemoryTxStore();
    const now = Date.now();
    await frozenWithVotes(store, 'a1', { p: 'yes' }, ['p'], now + 60_000); // committed by its votes
    await frozenWithVotes(store, 'a2', {}, ['p'], now - 1); // in doubt
    await store.put(txKey('a3'), encodeTxRecord(rec([], 'active', now + 60_000)));
    await store.put(doneKey('a0'), JSON.stringify({ id: 'a0', outcome: 'aborted', participants: [], votes: {}, acks: {}, createdAt: 1, deadline: 2, collectedAt: 3 }));
    const all = await listTransactions(store, { limit: 10, scanMaxKeys: 100 }, now);
    expect(all.transactions.map((t) => [t.id, t.state])).toEqual([
      ['a0', 'aborted'],
      ['a1', 'committed'],
      ['a2', 'in-doubt'],
      ['a3', 'active'],
    ]);
    expect(all.next).toBeNull();
    const first = await listTransactions(store, { limit: 2, scanMaxKeys: 100 }, now);
    expect(first.transactions.map((t) => t.id)).toEqual(['a0', 'a1']);
    const second = await listTransactions(store, { limit: 2, scanMaxKeys: 100, after: first.next as string }, now);
    expect(second.transactions.map((t) => t.id)).toEqual(['a2', 'a3']);
    expect((await listTransactions(store, { state: 'in-doubt', limit: 10, scanMaxKeys: 100 }, now)).transactions.map((t) => t.id)).toEqual(['a2']);
  });
});

describe('finishTransaction (what a participant runs to help decide)', () => {
  it('writes nothing before the deadline unless the votes decide', async () => {
    const store = new MemoryTxStore();
    const now = Date.now();
    await frozenWithVotes(store, 't', { p: 'yes' }, ['p', 'q'], now + 60_000);
    const writes = store.writes;
    expect(await finishTransaction(store, 't', { helperId: 'h', nowMs: now, retry, random, timers: systemTimers })).toBeUndefined();
    expect(store.writes).toBe(writes);
  });

  it('past the deadline fills missing votes with "no" and records abort; all yes records commit', async () => {
    const store = new MemoryTxStore();
    const now = Date.now();
    await frozenWithVotes(store, 't1', { p: 'yes' }, ['p', 'q'], now - 1);
    await frozenWithVotes(store, 't2', { p: 'yes', q: 'yes' }, ['p', 'q'], now - 1);
    await store.put(txKey('t3'), encodeTxRecord(rec(['p'], 'active', now - 1)));
    expect(await finishTransaction(store, 't1', { helperId: 'h', nowMs: now, retry, random, timers: systemTimers })).toBe('abort');
    expect(JSON.parse((await store.get(voteKey('t1', 'q')))!.value)).toMatchObject({ vote: 'no', by: 'h' });
    expect(await finishTransaction(store, 't2', { helperId: 'h', nowMs: now, retry, random, timers: systemTimers })).toBe('commit');
    expect(await finishTransaction(store, 't3', { helperId: 'h', nowMs: now, retry, random, timers: systemTimers })).toBe('abort'); // froze it first
    expect(JSON.parse((await store.get(txKey('t3')))!.value).state).toBe('preparing');
    expect(await finishTransaction(store, 'missing', { helperId: 'h', nowMs: now, retry, random, timers: systemTimers })).toBeUndefined();
  });
});

describe('Collector', () => {
  it('collects only a finished transaction, atomically, into a compacted record on a retention lease', async () => {
    const store = new MemoryTxStore();
    const gc = new Collector({ store, retentionMs: 60_000, timers: systemTimers, random, retry });
    await frozenWithVotes(store, 't', { p: 'yes', q: 'yes' }, ['p', 'q'], Date.now() + 60_000);
    expect(await gc.collect('t')).toEqual({ collected: false, reason: 'not_finished' });
    await store.casCreate(decisionKey('t'), 'commit');
    await store.casCreate(ackKey('t', 'p'), encodeAck(5));
    expect((await gc.collect('t')).collected).toBe(false); // q has not acked
    await store.casCreate(ackKey('t', 'q'), encodeAck(6));
    const r = await gc.collect('t');
    expect(r.collected).toBe(true);
    expect([...store.dump().keys()]).toEqual([`${DONE_PREFIX}t`]);
    const done = await store.get(doneKey('t'));
    expect(done?.lease).toBeDefined();
    // The compact record (docs/2PC.md): names and the outcome; ack times are not kept (every one had acked by collectedAt).
    const back = decodeDoneRecord(done!.value);
    expect(back).toMatchObject({ id: 't', outcome: 'committed', participants: [{ name: 'p' }, { name: 'q' }] });
    expect(back.acks).toEqual({ p: back.collectedAt, q: back.collectedAt });
    expect(r.collected && r.record.acks).toEqual({ p: 5, q: 6 });
    expect(await gc.collect('t')).toEqual({ collected: false, reason: 'gone' });
  });
});

describe('small parts', () => {
  it('backoff stays between half and all of the capped exponential delay', () => {
    const policy = { maxAttempts: 10, baseMs: 20, maxMs: 500 };
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(500, 20 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelayMs(attempt, policy, random);
        expect(d).toBeGreaterThanOrEqual(Math.floor(cap / 2));
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('failpoints fire on the N-th hit, once, and refuse bad specs and unknown names', () => {
    const fired: string[] = [];
    const fp = new Failpoints('coordinator.afterVotes@2, participant.afterWork', (n) => fired.push(n));
    fp.hit('coordinator.afterVotes');
    fp.hit('participant.afterWork');
    fp.hit('coordinator.afterVotes');
    fp.hit('coordinator.afterVotes');
    expect(fired).toEqual(['participant.afterWork', 'coordinator.afterVotes']);
    expect(new Failpoints('').enabled).toBe(false);
    expect(() => new Failpoints('coordinator.afterVotes@0')).toThrow(/bad failpoint/);
    expect(() => new Failpoints('coordinator.afterVotes@1@2')).toThrow(/bad failpoint/);
    expect(() => new Failpoints('coordinator.afterVote')).toThrow(/unknown failpoint "coordinator.afterVote"/);
    expect(() => Failpoints.fromEnv({ TWOPC_FAILPOINTS: 'nope' })).toThrow(/TWOPC_FAILPOINTS/);
    expect(FAILPOINT_NAMES).toHaveLength(11);
    NO_FAILPOINTS.hit('coordinator.afterBegin'); // does nothing
  });

  it('metrics render in the Prometheus text format and parse back', async () => {
    const r = new MetricsRegistry();
    r.counter('x_total', 'X.').inc(3);
    r.gauge('y', 'Y.', () => 7);
    const h = r.histogram('z_seconds', 'Z.', [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    const text = await r.render();
    expect(text).toContain('# TYPE x_total counter');
    const m = parseMetrics(text);
    expect(m.get('x_total')).toBe(3);
    expect(m.get('y')).toBe(7);
    expect(m.get('z_seconds_bucket{le="0.1"}')).toBe(1);
    expect(m.get('z_seconds_bucket{le="1"}')).toBe(2);
    expect(m.get('z_seconds_bucket{le="+Inf"}')).toBe(3);
    expect(m.get('z_seconds_count')).toBe(3);
    expect(() => r.counter('x_total', 'again')).toThrow();
  });

  it('configuration is validated at start, naming every problem', () => {
    expect(makeCoordinatorConfig({ id: 'c1' }).maxParticipants).toBe(32);
    expect(() => makeCoordinatorConfig({ id: 'bad id' })).toThrow(/id must match/);
    expect(() => makeCoordinatorConfig({ id: 'c1', maxParticipants: 0, defaultTimeoutMs: 5 })).toThrow(/maxParticipants.*defaultTimeoutMs|defaultTimeoutMs.*maxParticipants/);
  });
});
