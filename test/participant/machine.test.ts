// Goal: the pure participant machine keeps the participant's half of the
// protocol (issue 5): work is durable before it is accepted; the vote is
// durable in the local log before it goes to the store (the harness checks
// the disk on every vote it sends); a "no" anywhere aborts at once; a commit
// is applied only over a durable "yes"; each decision is applied once and
// acknowledged; replayed events change nothing. Recovery from the log plus
// the store: work without a vote aborts and votes "no"; a "yes" is
// re-asserted (and a stored "no" wins); in-doubt locks are restored; past
// the deadline the participant helps decide. End to end with the coordinator
// machine on the in-memory store, every participant applies the same outcome.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import { CoordinatorMachine } from '../../coordinator/core/machine.js';
import { ackKey, decisionKey, encodeTxRecord, encodeVote, makeVote, txKey, voteKey, type TxRecord } from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { ParticipantLog } from '../../participant/log.js';
import { isInDoubt, ParticipantTxMachine, phaseOf, type ParticipantEffect } from '../../participant/machine.js';
import { Driver } from '../coordinator/harness.js';
import { ParticipantDriver, T0 } from './harness.js';

const DEADLINE = T0 + 10_000;
let dir = '';
let store: MemoryTxStore;

beforeEach(() => {
  dir = mkdtempSync(join(os.tmpdir(), 'pmachine-'));
  store = new MemoryTxStore();
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const logPath = (name: string): string => join(dir, name, 'log.json');
const open = (name = 'bank-a', txId = 't1'): Promise<ParticipantDriver> => ParticipantDriver.open(name, txId, store, logPath(name));
const types = (effects: readonly ParticipantEffect[]): string[] => effects.map((e) => e.type);

async function frozenTx(names: string[], txId = 't1'): Promise<TxRecord> {
  const r: TxRecord = { participants: names.map((n, i) => ({ name: n, url: `http://127.0.0.1:${5000 + i}` })), state: 'preparing', deadline: DEADLINE, createdAt: T0 };
  await store.casCreate(txKey(txId), encodeTxRecord(r));
  return r;
}

describe('prepare, vote, decision', () => {
  it('the normal path: work durable, validate, vote durable then stored, commit applied, ack', async () => {
    const p = await open();
    expect(await p.receiveWork('w1', { debit: 5 })).toEqual({ kind: 'workAccepted', txId: 't1' });
    await p.step({ type: 'prepareRequested', requestId: 'p1', deadline: DEADLINE });
    expect(p.replies.get('p1')).toEqual({ kind: 'vote', txId: 't1', vote: 'yes' });
    expect(types(p.effects)).toEqual(['logWork', 'reply', 'validate', 'logVote', 'writeVote', 'reply', 'setTimer']);
    expect(store.dump().get(voteKey('t1', 'bank-a'))).toBe(encodeVote(makeVote('yes', 'bank-a')));
    expect(p.machine.phase).toBe('prepared');

    await p.step({ type: 'decisionObserved', decision: 'commit' });
    expect(p.service.calls).toEqual(['prepare', 'commit']);
    expect(store.dump().get(ackKey('t1', 'bank-a'))).toBe(String(T0));
    expect(p.log.get('t1')).toMatchObject({ applied: { decision: 'commit' }, ackedAt: T0 });
    expect(p.machine.phase).toBe('committed');
  });

  it('a "no" from the service is logged, stored, and aborts locally at once', async () => {
    const p = await open();
    p.service.answer = { vote: 'no', reason: 'insufficient funds' };
    await p.receiveWork('w1', { debit: 500 });
    await p.step({ type: 'prepareRequested', requestId: 'p1' });
    expect(p.replies.get('p1')).toMatchObject({ vote: 'no' });
    expect(JSON.parse(store.dump().get(voteKey('t1', 'bank-a'))!)).toEqual({ vote: 'no', by: 'bank-a', reason: 'insufficient funds' });
    expect(p.service.calls).toEqual(['prepare', 'abort']);
    expect(p.log.get('t1')?.ackedAt).toBeDefined();
  });

  it('a "no" the coordinator filled first wins over our durable "yes": we answer no and abort', async () => {
    const p = await open();
    await p.receiveWork('w1', {});
    await store.casCreate(voteKey('t1', 'bank-a'), encodeVote(makeVote('no', 'coord-1', 'no vote before the deadline')));
    await p.step({ type: 'prepareRequested', requestId: 'p1' });
    expect(p.log.get('t1')?.vote?.vote).toBe('yes'); // durable yes ...
    expect(p.replies.get('p1')).toMatchObject({ vote: 'no' }); // ... but the store says no
    expect(p.service.calls).toEqual(['prepare', 'abort']);
  });

  it('prepare without work votes no', async () => {
    const p = await open();
    await p.step({ type: 'prepareRequested', requestId: 'p1' });
    expect(p.replies.get('p1')).toMatchObject({ vote: 'no' });
    expect(p.log.get('t1')).toMatchObject({ work: null, vote: { vote: 'no', reason: 'no work received for this transaction' } });
    expect(p.service.calls).toEqual(['abort']);
  });

  it('an abort decision that arrives while the service validates: no vote, the locks are released', () => {
    const m = new ParticipantTxMachine('t1', { txId: 't1', work: {}, receivedAt: T0 }, { name: 'bank-a' });
    expect(types(m.step({ type: 'prepareRequested' }))).toEqual(['validate']);
    expect(m.step({ type: 'decisionObserved', decision: 'abort' })).toEqual([]); // waits for the callback
    expect(m.step({ type: 'validated', vote: 'yes' })).toEqual([{ type: 'apply', decision: 'abort' }]);
  });

  it('work is refused once the transaction is prepared, and conflicting work is refused', async () => {
    const p = await open();
    await p.receiveWork('w1', { a: 1 });
    expect(await p.receiveWork('w2', { a: 1 })).toEqual({ kind: 'workAccepted', txId: 't1' });
    expect(await p.receiveWork('w3', { a: 2 })).toMatchObject({ kind: 'error', code: 'work_conflict' });
    await p.step({ type: 'prepareRequested' });
    expect(await p.receiveWork('w4', { a: 1 })).toMatchObject({ kind: 'error', code: 'tx_not_active' });
  });

  it('replayed events are idempotent: one validate, one apply, one ack', async () => {
    const p = await open();
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested', requestId: 'p1' });
    await p.step({ type: 'prepareRequested', requestId: 'p2' }); // the watch and the hint both ask
    expect(p.replies.get('p2')).toMatchObject({ vote: 'yes' });
    await p.step({ type: 'decisionObserved', decision: 'commit' });
    const n = p.effects.length;
    await p.step({ type: 'decisionObserved', decision: 'commit' }); // duplicate hint
    await p.step({ type: 'applied', decision: 'commit' }); // stale callback
    await p.step({ type: 'voteWritten', succeeded: true, previous: null }); // stale result
    await p.step({ type: 'ackWritten' });
    expect(p.effects.length).toBe(n);
    expect(p.service.calls).toEqual(['prepare', 'commit']);
    expect(() => p.machine.step({ type: 'decisionObserved', decision: 'abort' })).toThrow(AssertionError);
  });

  it('a commit is never applied without a durable yes', () => {
    const m = new ParticipantTxMachine('t1', { txId: 't1', work: {}, receivedAt: T0, vote: { vote: 'no', at: T0 } }, { name: 'bank-a' });
    expect(() => m.step({ type: 'decisionObserved', decision: 'commit' })).toThrow(AssertionError);
    // A late commit hint for a transaction long acknowledged and compacted: nothing to do.
    expect(new ParticipantTxMachine('t2', undefined, { name: 'bank-a' }).step({ type: 'decisionObserved', decision: 'commit' })).toEqual([]);
  });

  it('excluded (frozen or committed without us): the work is aborted locally, a commit is ignored, no ack is written', async () => {
    const p = await open();
    await p.receiveWork('w1', { amount: 5 });
    await p.step({ type: 'excluded' });
    await p.step({ type: 'decisionObserved', decision: 'commit' });
    expect(p.service.calls).toEqual(['abort']);
    expect(p.machine.phase).toBe('aborted');
    expect(p.machine.logRecord?.ackedAt).toBeDefined();
    expect(store.dump().has(ackKey('t1', 'bank-a'))).toBe(false);
    expect(types(p.effects)).not.toContain('writeVote');
  });

  it('an abort for a transaction never heard of is applied and acknowledged, so nobody waits for us', async () => {
    const p = await open();
    await p.step({ type: 'decisionObserved', decision: 'abort' });
    expect(p.service.calls).toEqual(['abort']);
    expect(store.dump().has(ackKey('t1', 'bank-a'))).toBe(true);
  });

  it('phases and in-doubt, as the operator view shows them', () => {
    expect(phaseOf(undefined)).toBe('new');
    expect(phaseOf({ txId: 't', work: {}, receivedAt: 1 })).toBe('received');
    const prepared = { txId: 't', work: {}, receivedAt: 1, vote: { vote: 'yes' as const, at: 2 } };
    expect(phaseOf(prepared)).toBe('prepared');
    expect(isInDoubt(prepared)).toBe(true);
    expect(isInDoubt({ ...prepared, applied: { decision: 'commit', at: 3 } })).toBe(false);
  });
});

describe('recovery from the log plus the store', () => {
  it('work without a vote: aborted locally and voted "no" by CAS', async () => {
    await frozenTx(['bank-a']);
    const p = await open();
    await p.receiveWork('w1', { debit: 5 });
    const r = await p.restart();
    expect(r.log.get('t1')?.vote).toMatchObject({ vote: 'no', reason: 'participant restarted before the prepare completed' });
    expect(JSON.parse(store.dump().get(voteKey('t1', 'bank-a'))!)).toMatchObject({ vote: 'no', by: 'bank-a' });
    expect(r.service.calls).toEqual(['abort']);
    expect(r.log.get('t1')?.ackedAt).toBeDefined();
  });

  it('killed after the durable prepare and before the vote: re-asserts yes, restores locks, waits', async () => {
    await frozenTx(['bank-a']);
    const p = await open();
    p.crashBefore = (e) => e.type === 'writeVote';
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested', deadline: DEADLINE });
    expect(store.dump().has(voteKey('t1', 'bank-a'))).toBe(false);
    const r = await p.restart(T0 + 1);
    expect(types(r.effects)).toEqual(['restoreLocks', 'writeVote', 'setTimer']);
    expect(store.dump().get(voteKey('t1', 'bank-a'))).toBe(encodeVote(makeVote('yes', 'bank-a')));
    expect(r.service.calls).toEqual(['prepare', 'restoreLocks']); // locks held, no decision yet
    expect(r.timers).toEqual([DEADLINE]);
  });

  it('prepared "yes" but the store holds a "no" (filled at the deadline while we were down): abort', async () => {
    await frozenTx(['bank-a']);
    const p = await open();
    p.crashBefore = (e) => e.type === 'writeVote';
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested' });
    await store.casCreate(voteKey('t1', 'bank-a'), encodeVote(makeVote('no', 'coord-1', 'no vote before the deadline')));
    const r = await p.restart(DEADLINE + 1);
    expect(r.service.calls).toEqual(['prepare', 'restoreLocks', 'abort']);
    expect(types(r.effects)).not.toContain('writeVote');
    expect(r.log.get('t1')?.applied?.decision).toBe('abort');
  });

  it('killed after the decision and before applying it: applies it once on restart', async () => {
    await frozenTx(['bank-a']);
    const p = await open();
    p.crashBefore = (e) => e.type === 'apply';
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested' });
    await store.casCreate(decisionKey('t1'), 'commit');
    await p.observeDecision();
    const r = await p.restart();
    expect(r.service.calls).toEqual(['prepare', 'restoreLocks', 'commit']);
    expect(store.dump().has(ackKey('t1', 'bank-a'))).toBe(true);
  });

  it('killed after applying and before the ack: acknowledges on restart without applying again', async () => {
    await frozenTx(['bank-a']);
    const p = await open();
    p.crashBefore = (e) => e.type === 'writeAck';
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested' });
    await p.step({ type: 'decisionObserved', decision: 'commit' });
    const r = await p.restart();
    expect(types(r.effects)).toEqual(['writeAck', 'logAcked']);
    expect(r.service.calls).toEqual(['prepare', 'commit']);
  });

  it('applied, then the keys were collected before its ack was logged: restarts without writing its vote again', async () => {
    await frozenTx(['bank-a']);
    const p = await open();
    p.crashBefore = (e) => e.type === 'logAcked';
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested' });
    await p.step({ type: 'decisionObserved', decision: 'commit' });
    // Every participant acked, so a coordinator collected the transaction: its keys are gone.
    for (const key of store.dump().keys()) if (key.startsWith('tx/t1')) await store.delete(key);
    const r = await p.restart();
    expect(types(r.effects)).toEqual(['writeAck', 'logAcked']); // the ack again (it cannot know it landed), no vote
    expect(r.service.calls).toEqual(['prepare', 'commit']);
  });

  // docs/CHAOS.md, finding 6: after a restart the watch brought the abort before recovery reached
  // the transaction; the abort released nothing, then recovery restored the hold, held for good.
  it('restarted in doubt, the decision observed before recovery: applied only after the locks are restored', () => {
    const m = new ParticipantTxMachine('t1', { txId: 't1', work: {}, receivedAt: T0, vote: { vote: 'yes', at: T0 } }, { name: 'bank-a' });
    const order: string[] = [];
    const run = (effects: readonly ParticipantEffect[]): void => {
      for (const e of effects) {
        if (e.type === 'restoreLocks' || e.type === 'apply') order.push(e.type);
        if (e.type === 'apply') run(m.step({ type: 'applied', decision: e.decision })); // its log write still in flight
      }
    };
    run(m.step({ type: 'decisionObserved', decision: 'abort' }));
    expect(order).toEqual([]); // waits for recovery
    run(m.step({ type: 'recover', nowMs: T0 + 1, stored: { vote: makeVote('yes', 'bank-a'), decision: 'abort', deadline: DEADLINE } }));
    expect(order).toEqual(['restoreLocks', 'apply']);
  });

  it('in doubt past the deadline with no decision: helps decide, and applies what the store decides', async () => {
    await frozenTx(['bank-a', 'bank-b']);
    await store.casCreate(voteKey('t1', 'bank-b'), encodeVote(makeVote('yes', 'bank-b')));
    const p = await open();
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested', deadline: DEADLINE });
    // The coordinator died before recording a decision. Both votes are yes: the helper must record commit.
    const r = await p.restart(DEADLINE + 1);
    expect(r.helpRequests).toBe(1);
    expect(store.dump().get(decisionKey('t1'))).toBe('commit');
    expect(r.service.calls).toEqual(['prepare', 'restoreLocks', 'commit']);
  });

  it('helping decide with a vote still missing fills it with "no": the transaction aborts', async () => {
    await frozenTx(['bank-a', 'bank-b']);
    const p = await open();
    await p.receiveWork('w1', {});
    await p.step({ type: 'prepareRequested', deadline: DEADLINE });
    await p.step({ type: 'deadlineReached', nowMs: DEADLINE - 1 }); // early: only re-arms
    expect(p.helpRequests).toBe(0);
    p.nowMs = DEADLINE;
    await p.step({ type: 'deadlineReached', nowMs: DEADLINE });
    expect(p.helpRequests).toBe(1);
    expect(JSON.parse(store.dump().get(voteKey('t1', 'bank-b'))!)).toMatchObject({ vote: 'no', by: 'participant:bank-a' });
    expect(store.dump().get(decisionKey('t1'))).toBe('abort');
    expect(p.service.calls).toEqual(['prepare', 'abort']);
  });
});

describe('end to end with the coordinator machine (in-memory store)', () => {
  async function setup(names: string[]) {
    const parts = new Map<string, ParticipantDriver>();
    for (const n of names) parts.set(n, await open(n));
    const coord = new Driver(store, CoordinatorMachine.fresh('t1', { coordinatorId: 'coord-1' }));
    coord.onPrepare = async (p) => {
      await parts.get(p.name)?.step({ type: 'prepareRequested', deadline: DEADLINE });
    };
    coord.onDecision = async (p, decision) => {
      await parts.get(p.name)?.step({ type: 'decisionObserved', decision });
    };
    await coord.step({ type: 'begin', requestId: 'b1', record: { participants: [], state: 'active', deadline: DEADLINE, createdAt: T0 } });
    for (const [i, n] of names.entries()) {
      await coord.step({ type: 'enlist', requestId: `e${n}`, participant: { name: n, url: `http://127.0.0.1:${5000 + i}` } });
      await parts.get(n)!.receiveWork(`w${n}`, { amount: 5 });
    }
    return { parts, coord };
  }

  it('all yes: every participant commits, acks, and the coordinator finishes', async () => {
    const { parts, coord } = await setup(['bank-a', 'bank-b', 'bank-c']);
    await coord.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 1 });
    await coord.observe();
    expect(coord.replies.get('c1')).toMatchObject({ outcome: 'committed' });
    await coord.observe();
    expect(coord.finished).toBe('commit');
    for (const p of parts.values()) expect(p.service.calls).toEqual(['prepare', 'commit']);
  });

  it('one no: every participant aborts', async () => {
    const { parts, coord } = await setup(['bank-a', 'bank-b']);
    parts.get('bank-b')!.service.answer = { vote: 'no', reason: 'insufficient funds' };
    await coord.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 1 });
    await coord.observe();
    expect(coord.replies.get('c1')).toMatchObject({ outcome: 'aborted', reason: 'bank-b voted no: insufficient funds' });
    expect(parts.get('bank-a')!.service.calls).toEqual(['prepare', 'abort']);
    expect(parts.get('bank-b')!.service.calls).toEqual(['prepare', 'abort']);
  });

  it('a participant killed before its vote: filled with "no" at the deadline; it aborts when it comes back', async () => {
    const { parts, coord } = await setup(['bank-a', 'bank-b']);
    parts.get('bank-b')!.crashBefore = (e) => e.type === 'writeVote';
    await coord.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 1 });
    await coord.observe();
    expect(coord.replies.has('c1')).toBe(false); // still waiting for bank-b
    await coord.step({ type: 'deadlineReached', nowMs: DEADLINE });
    expect(coord.replies.get('c1')).toMatchObject({ outcome: 'aborted' });
    const b = await parts.get('bank-b')!.restart(DEADLINE + 5);
    expect(parts.get('bank-a')!.service.calls).toEqual(['prepare', 'abort']);
    expect(b.service.calls).toEqual(['prepare', 'restoreLocks', 'abort']);
    await coord.observe();
    expect(coord.finished).toBe('abort');
  });

  it('the coordinator dies after the votes: a participant past the deadline finishes the commit for everyone', async () => {
    const { parts, coord } = await setup(['bank-a', 'bank-b']);
    coord.crashAfterStoreWrites = coord.storeWrites + 1; // the freeze lands; the decision does not
    await coord.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 1 });
    await coord.observe();
    expect(coord.crashed).toBe(true);
    expect(store.dump().has(decisionKey('t1'))).toBe(false);
    const a = parts.get('bank-a')!;
    a.nowMs = DEADLINE;
    await a.step({ type: 'deadlineReached', nowMs: DEADLINE });
    expect(store.dump().get(decisionKey('t1'))).toBe('commit');
    await parts.get('bank-b')!.observeDecision(); // b learns it from its watch
    for (const p of parts.values()) expect(p.service.calls).toEqual(['prepare', 'commit']);
    expect((await ParticipantLog.open({ path: logPath('bank-b'), participant: 'bank-b' })).get('t1')?.applied?.decision).toBe('commit');
  });
});
