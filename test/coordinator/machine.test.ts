// Goal: the pure coordinator machine does what docs/API.md and issue 5
// say, effect by effect: begin and enlist by CAS on tx/{id}; commit freezes
// the list (CAS active -> preparing) and sends prepare to everyone at once;
// the client hears the outcome as soon as the votes decide it, before the
// decision key; at the deadline missing votes are filled with a CAS "no"
// that loses to a "yes" already there; the decision key is CAS
// create-if-absent; abort after commit is refused; replayed events change
// nothing; and a second machine built from the store after a crash at any
// write finishes with the same decision the first one announced.
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import { CoordinatorMachine, type CoordinatorEffect } from '../../coordinator/core/machine.js';
import {
  decisionKey,
  encodeTxRecord,
  encodeVote,
  makeVote,
  txKey,
  voteKey,
  type TxRecord,
  type TxSnapshot,
  type Vote,
} from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { readTxSnapshot } from '../../coordinator/txstore/txstore.js';
import { Driver, record, T0 } from './harness.js';

const OPTS = { coordinatorId: 'coord-1' };
const DEADLINE = T0 + 10_000;
const yes = (p: string): Vote => makeVote('yes', p);

function snapshotOf(r: TxRecord, votes: [string, Vote][] = [], decision?: 'commit' | 'abort'): TxSnapshot {
  return { id: 't1', tx: { raw: encodeTxRecord(r), record: r }, votes: new Map(votes), decision, acks: new Map(), revision: 1 };
}

function types(effects: readonly CoordinatorEffect[]): string[] {
  return effects.map((e) => (e.type === 'reply' ? `reply:${e.reply.kind}` : e.type));
}

/** A preparing machine for participants a and b, with commit already requested. */
/** The record `preparing()` starts from, as the store holds it. */
const FROZEN = encodeTxRecord(record(['a', 'b'], { state: 'preparing' }));

function preparing(): { m: CoordinatorMachine; effects: CoordinatorEffect[] } {
  const m = new CoordinatorMachine(snapshotOf(record(['a', 'b'], { state: 'preparing' })), OPTS);
  return { m, effects: m.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 100 }) };
}

describe('begin and enlist', () => {
  it('begin writes tx/{id} by CAS create-if-absent, answers, and arms the deadline timer', () => {
    const m = CoordinatorMachine.fresh('t1', OPTS);
    const r = record([]);
    const e1 = m.step({ type: 'begin', requestId: 'b1', record: r });
    expect(e1).toEqual([{ type: 'writeTx', key: 'tx/t1', expected: null, value: encodeTxRecord(r) }]);
    const e2 = m.step({ type: 'txWritten', value: encodeTxRecord(r), succeeded: true, previous: null });
    expect(e2).toEqual([
      { type: 'reply', requestId: 'b1', reply: { kind: 'begun', id: 't1', state: 'active', deadline: DEADLINE } },
      { type: 'setTimer', atMs: DEADLINE },
    ]);
  });

  it('a repeated begin (idempotency key) answers from the stored record without writing', () => {
    const m = new CoordinatorMachine(snapshotOf(record(['a'])), OPTS);
    const effects = m.step({ type: 'begin', requestId: 'b2', record: record([], { deadline: T0 + 99_999 }) });
    expect(effects[0]).toEqual({ type: 'reply', requestId: 'b2', reply: { kind: 'begun', id: 't1', state: 'active', deadline: DEADLINE } });
    expect(types(effects)).not.toContain('writeTx');
  });

  it('enlists by CAS on the exact stored text; concurrent enlists share one write', () => {
    const r = record([]);
    const m = new CoordinatorMachine(snapshotOf(r), OPTS);
    const a = { name: 'a', url: 'http://127.0.0.1:4000' };
    const b = { name: 'b', url: 'http://127.0.0.1:4001' };
    const e1 = m.step({ type: 'enlist', requestId: 'e1', participant: a });
    const write = e1.find((e) => e.type === 'writeTx');
    expect(write).toMatchObject({ expected: encodeTxRecord(r), value: encodeTxRecord({ ...r, participants: [a] }) });
    expect(m.step({ type: 'enlist', requestId: 'e2', participant: b })).toEqual([]); // waits for the write in flight
    const e3 = m.step({ type: 'txWritten', value: encodeTxRecord({ ...r, participants: [a] }), succeeded: true, previous: null });
    expect(e3[0]).toMatchObject({ type: 'reply', requestId: 'e1', reply: { kind: 'enlisted' } });
    expect(e3[1]).toMatchObject({ type: 'writeTx', value: encodeTxRecord({ ...r, participants: [a, b] }) });
  });

  it('enlist is idempotent for the same name and url, and refuses another url or too many', () => {
    const m = new CoordinatorMachine(snapshotOf(record(['a'])), { ...OPTS, maxParticipants: 1 });
    expect(m.step({ type: 'enlist', requestId: 'e1', participant: { name: 'a', url: 'http://127.0.0.1:4000' } })[0]).toMatchObject({ reply: { kind: 'enlisted' } });
    expect(m.step({ type: 'enlist', requestId: 'e2', participant: { name: 'a', url: 'http://other:1' } })[0]).toMatchObject({ reply: { kind: 'error', code: 'participant_conflict' } });
    expect(m.step({ type: 'enlist', requestId: 'e3', participant: { name: 'z', url: 'http://z:1' } })[0]).toMatchObject({ reply: { kind: 'error', code: 'too_many_participants' } });
  });

  it('a lost enlist CAS adopts what another coordinator wrote and retries on top of it', async () => {
    const store = new MemoryTxStore();
    const r = record([]);
    await store.casCreate(txKey('t1'), encodeTxRecord(r));
    const d = await Driver.recover(store, 't1', 'coord-1');
    // Another coordinator enlists b meanwhile; this machine still believes the list is empty.
    const b = { name: 'b', url: 'http://127.0.0.1:4001' };
    await store.casValue(txKey('t1'), encodeTxRecord(r), encodeTxRecord({ ...r, participants: [b] }));
    await d.step({ type: 'enlist', requestId: 'e1', participant: { name: 'a', url: 'http://127.0.0.1:4000' } });
    expect(d.replies.get('e1')).toMatchObject({ kind: 'enlisted' });
    const snap = await readTxSnapshot(store, 't1');
    expect(snap.tx?.record.participants.map((p) => p.name)).toEqual(['b', 'a']);
  });

  it('after the freeze, enlisting a newcomer is tx_not_active; a member gets its idempotent answer', () => {
    const { m } = preparing();
    expect(m.step({ type: 'enlist', requestId: 'e1', participant: { name: 'c', url: 'http://c:1' } })[0]).toMatchObject({ reply: { kind: 'error', code: 'tx_not_active' } });
    expect(m.step({ type: 'enlist', requestId: 'e2', participant: { name: 'a', url: 'http://127.0.0.1:4000' } })[0]).toMatchObject({ reply: { kind: 'enlisted' } });
  });

  it('requests for a transaction the store does not hold answer tx_not_found', () => {
    const m = CoordinatorMachine.fresh('t1', OPTS);
    expect(m.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 })).toEqual([
      { type: 'reply', requestId: 'c1', reply: { kind: 'error', code: 'tx_not_found', message: 'no transaction t1' } },
    ]);
  });
});

describe('commit', () => {
  it('freezes the list by CAS active -> preparing, then sends prepare to all participants at once', () => {
    const r = record(['a', 'b']);
    const m = new CoordinatorMachine(snapshotOf(r), OPTS);
    const e1 = m.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 });
    const frozen = encodeTxRecord({ ...r, state: 'preparing' });
    expect(e1.filter((e) => e.type === 'writeTx')).toEqual([{ type: 'writeTx', key: 'tx/t1', expected: encodeTxRecord(r), value: frozen }]);
    const e2 = m.step({ type: 'txWritten', value: frozen, succeeded: true, previous: null });
    expect(e2.filter((e) => e.type === 'sendPrepare').map((e) => (e.type === 'sendPrepare' ? e.participant.name : ''))).toEqual(['a', 'b']);
  });

  it('answers the client when the last yes lands, before writing the decision; then tells participants', () => {
    const { m } = preparing();
    expect(m.step({ type: 'voteObserved', participant: 'a', vote: yes('a') })).toEqual([]);
    const e = m.step({ type: 'voteObserved', participant: 'b', vote: yes('b') });
    expect(types(e)).toEqual(['reply:outcome', 'writeDecision']);
    expect(e[0]).toMatchObject({ requestId: 'c1', reply: { outcome: 'committed', votes: { a: 'yes', b: 'yes' } } });
    // Guarded by the frozen record: nothing is written into a collected transaction.
    expect(e[1]).toEqual({ type: 'writeDecision', key: decisionKey('t1'), decision: 'commit', value: 'commit', guard: FROZEN });
    const told = m.step({ type: 'decisionWritten', succeeded: true, previous: null });
    expect(types(told)).toEqual(['sendDecision', 'sendDecision']);
    expect(m.step({ type: 'ackObserved', participant: 'a' })).toEqual([]);
    expect(m.step({ type: 'ackObserved', participant: 'b' })).toEqual([{ type: 'finished', txId: 't1', decision: 'commit' }]);
  });

  it('one no vote aborts at once, with the reason, even while other votes are missing', () => {
    const { m } = preparing();
    const e = m.step({ type: 'voteObserved', participant: 'b', vote: makeVote('no', 'b', 'insufficient funds') });
    expect(e[0]).toMatchObject({ reply: { kind: 'outcome', outcome: 'aborted', votes: { a: null, b: 'no' }, reason: 'b voted no: insufficient funds' } });
    expect(e[1]).toMatchObject({ type: 'writeDecision', decision: 'abort' });
  });

  it('the normal path end to end on the in-memory store: 1 begin + 1 enlist + 1 freeze + 1 decision write', async () => {
    const store = new MemoryTxStore();
    const d = new Driver(store, CoordinatorMachine.fresh('t1', OPTS));
    d.scripts = new Map([['a', 'yes'], ['b', 'yes']]);
    await d.step({ type: 'begin', requestId: 'b1', record: record([]) });
    for (const [i, name] of ['a', 'b'].entries()) await d.step({ type: 'enlist', requestId: `e${i}`, participant: { name, url: `http://127.0.0.1:${4000 + i}` } });
    await d.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 1 });
    expect(d.prepared).toEqual(['a', 'b']);
    await d.observe(); // the watch delivers both votes
    expect(d.replies.get('c1')).toMatchObject({ outcome: 'committed' });
    await d.observe(); // ... and the acks
    expect(d.finished).toBe('commit');
    expect(d.storeWrites).toBe(5); // begin, enlist a, enlist b, freeze, decision
    expect(store.dump().get(decisionKey('t1'))).toBe('commit');
  });
});

describe('the deadline', () => {
  it('fills every missing vote with a CAS "no" and aborts', () => {
    const { m } = preparing();
    m.step({ type: 'voteObserved', participant: 'a', vote: yes('a') });
    const e = m.step({ type: 'deadlineReached', nowMs: DEADLINE });
    expect(e).toEqual([{ type: 'writeVote', key: voteKey('t1', 'b'), participant: 'b', value: encodeVote(makeVote('no', 'coord-1', 'no vote before the deadline')), guard: FROZEN }]);
    const after = m.step({ type: 'voteWritten', participant: 'b', succeeded: true, previous: null });
    expect(after[0]).toMatchObject({ reply: { outcome: 'aborted', reason: 'b vote filled with no by coord-1: no vote before the deadline' } });
  });

  it('a CAS "no" loses to a yes that landed first: the decision follows the store', async () => {
    const store = new MemoryTxStore();
    const r = record(['a', 'b'], { state: 'preparing' });
    await store.casCreate(txKey('t1'), encodeTxRecord(r));
    const d = await Driver.recover(store, 't1', 'coord-1');
    await d.step({ type: 'voteObserved', participant: 'a', vote: yes('a') });
    await store.casCreate(voteKey('t1', 'a'), encodeVote(yes('a')));
    // b's yes is in the store, but the watch has not delivered it yet.
    await store.casCreate(voteKey('t1', 'b'), encodeVote(yes('b')));
    await d.step({ type: 'commitRequested', requestId: 'c1', nowMs: DEADLINE + 1 });
    expect(d.log.filter((e) => e.type === 'writeVote').map((e) => (e.type === 'writeVote' ? e.participant : ''))).toEqual(['b']);
    expect(d.replies.get('c1')).toMatchObject({ outcome: 'committed', votes: { a: 'yes', b: 'yes' } });
    expect(store.dump().get(decisionKey('t1'))).toBe('commit');
  });

  it('a timer that fires early re-arms and writes nothing', () => {
    const { m } = preparing();
    expect(m.step({ type: 'deadlineReached', nowMs: DEADLINE - 5 })).toEqual([{ type: 'setTimer', atMs: DEADLINE }]);
  });

  it('an active transaction abandoned by its client is frozen and aborted at the deadline', () => {
    const r = record(['a']);
    const m = new CoordinatorMachine(snapshotOf(r), OPTS);
    const e = m.step({ type: 'deadlineReached', nowMs: DEADLINE });
    const frozen = encodeTxRecord({ ...r, state: 'preparing' });
    expect(e).toEqual([{ type: 'writeTx', key: 'tx/t1', expected: encodeTxRecord(r), value: frozen }]);
    expect(types(m.step({ type: 'txWritten', value: frozen, succeeded: true, previous: null }))).toEqual(['writeVote']);
  });
});

describe('abort', () => {
  it('abort after commit is refused with already_committed', () => {
    const { m } = preparing();
    m.step({ type: 'voteObserved', participant: 'a', vote: yes('a') });
    m.step({ type: 'voteObserved', participant: 'b', vote: yes('b') });
    expect(m.step({ type: 'abortRequested', requestId: 'x1' })).toEqual([
      { type: 'reply', requestId: 'x1', reply: { kind: 'error', code: 'already_committed', message: 'transaction t1 is committed' } },
    ]);
  });

  it('abort racing the last yes: the CAS "no" loses, so the abort is refused', () => {
    const { m } = preparing();
    m.step({ type: 'voteObserved', participant: 'a', vote: yes('a') });
    expect(types(m.step({ type: 'abortRequested', requestId: 'x1' }))).toEqual(['writeVote']);
    const e = m.step({ type: 'voteWritten', participant: 'b', succeeded: false, previous: encodeVote(yes('b')) });
    expect(e.find((x) => x.type === 'reply' && x.requestId === 'x1')).toMatchObject({ reply: { code: 'already_committed' } });
    expect(e.find((x) => x.type === 'reply' && x.requestId === 'c1')).toMatchObject({ reply: { outcome: 'committed' } });
  });

  it('abort of an active transaction freezes it and fills no votes; a later commit returns aborted', async () => {
    const store = new MemoryTxStore();
    await store.casCreate(txKey('t1'), encodeTxRecord(record(['a', 'b'])));
    const d = await Driver.recover(store, 't1', 'coord-1');
    await d.step({ type: 'abortRequested', requestId: 'x1', reason: 'user cancelled' });
    expect(d.replies.get('x1')).toMatchObject({ outcome: 'aborted', reason: 'a vote filled with no by coord-1: user cancelled' });
    await d.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 });
    expect(d.replies.get('c1')).toMatchObject({ outcome: 'aborted' });
    expect(d.prepared).toEqual([]); // nobody was asked to prepare a doomed transaction
  });

  // Before, the freeze and the "no" fills were separate writes: a participant preparing from its
  // watch in between, with every other yes, turned an explicit abort into a commit.
  it('an explicit abort freezes the record and writes the first participant\'s "no" in one txn', async () => {
    const store = new MemoryTxStore();
    await store.casCreate(txKey('t1'), encodeTxRecord(record(['a', 'b'])));
    const d = await Driver.recover(store, 't1', 'coord-1');
    const seen: (string | undefined)[] = [];
    const txn = store.txn.bind(store);
    store.txn = async (guards, writes) => {
      const r = await txn(guards, writes);
      // Right after the freeze lands, a's vote is already "no": there is no moment to vote yes in.
      seen.push((await store.get(voteKey('t1', 'a')))?.value);
      return r;
    };
    await d.step({ type: 'abortRequested', requestId: 'x1' });
    const freeze = d.log.find((e) => e.type === 'writeTx');
    expect(freeze).toMatchObject({ withVote: { participant: 'a', key: voteKey('t1', 'a') } });
    expect(seen[0]).toBe(encodeVote(makeVote('no', 'coord-1', 'aborted by request')));
    // One "no" decides: b's vote is not filled at all.
    expect(d.log.filter((e) => e.type === 'writeVote')).toEqual([]);
    expect(d.replies.get('x1')).toMatchObject({ outcome: 'aborted' });
    expect(store.dump().get(decisionKey('t1'))).toBe('abort');
  });

  it('a transaction with no participants: commit and abort race on the decision key, first writer wins', async () => {
    for (const first of ['commit', 'abort'] as const) {
      const store = new MemoryTxStore();
      await store.casCreate(txKey('t1'), encodeTxRecord(record([])));
      const d = await Driver.recover(store, 't1', 'coord-1');
      const commit = { type: 'commitRequested', requestId: 'c1', nowMs: T0 } as const;
      const abort = { type: 'abortRequested', requestId: 'x1' } as const;
      await d.step(first === 'commit' ? commit : abort);
      await d.step(first === 'commit' ? abort : commit);
      expect(store.dump().get(decisionKey('t1'))).toBe(first);
      expect(d.replies.get('c1')).toMatchObject({ outcome: first === 'commit' ? 'committed' : 'aborted' });
      expect(d.replies.get('x1')).toMatchObject(first === 'commit' ? { code: 'already_committed' } : { outcome: 'aborted' });
    }
  });
});

describe('idempotence', () => {
  it('replayed and duplicate events produce nothing new', () => {
    const { m, effects } = preparing();
    expect(types(effects)).toEqual(['sendPrepare', 'sendPrepare', 'setTimer']);
    expect(m.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 })).toEqual([]); // same request replayed
    expect(m.step({ type: 'commitRequested', requestId: 'c2', nowMs: T0 })).toEqual([]); // a second commit: prepares already sent
    m.step({ type: 'voteObserved', participant: 'a', vote: yes('a') });
    expect(m.step({ type: 'voteObserved', participant: 'a', vote: yes('a') })).toEqual([]);
    const decided = m.step({ type: 'voteObserved', participant: 'b', vote: yes('b') });
    expect(types(decided)).toEqual(['reply:outcome', 'reply:outcome', 'writeDecision']);
    expect(m.step({ type: 'voteObserved', participant: 'b', vote: yes('b') })).toEqual([]);
    expect(m.step({ type: 'deadlineReached', nowMs: DEADLINE })).toEqual([]);
    expect(types(m.step({ type: 'decisionWritten', succeeded: true, previous: null }))).toEqual(['sendDecision', 'sendDecision']);
    expect(m.step({ type: 'decisionWritten', succeeded: true, previous: null })).toEqual([]); // no write in flight: stale
    expect(m.step({ type: 'decisionObserved', decision: 'commit' })).toEqual([]);
    expect(m.step({ type: 'txWritten', value: 'anything', succeeded: true, previous: null })).toEqual([]);
    m.step({ type: 'ackObserved', participant: 'a' });
    expect(m.step({ type: 'ackObserved', participant: 'b' })).toEqual([{ type: 'finished', txId: 't1', decision: 'commit' }]);
    expect(m.step({ type: 'ackObserved', participant: 'b' })).toEqual([]);
    // A new commit call after the outcome gets the same outcome at once, and writes nothing.
    expect(m.step({ type: 'commitRequested', requestId: 'c3', nowMs: DEADLINE + 1 })).toMatchObject([{ type: 'reply', requestId: 'c3', reply: { outcome: 'committed' } }]);
  });

  it('observing the whole store again and again is a no-op', async () => {
    const store = new MemoryTxStore();
    const d = new Driver(store, CoordinatorMachine.fresh('t1', OPTS));
    d.scripts = new Map([['a', 'yes']]);
    await d.step({ type: 'begin', requestId: 'b1', record: record(['a']) });
    await d.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 });
    await d.observe();
    await d.observe();
    const n = d.log.length;
    await d.observe();
    await d.observe();
    expect(d.log.length).toBe(n);
    expect(d.finished).toBe('commit');
  });

  it('refuses a store whose decision contradicts its votes (stable decisions)', () => {
    const r = record(['a'], { state: 'preparing' });
    expect(() => new CoordinatorMachine(snapshotOf(r, [['a', yes('a')]], 'abort'), OPTS)).toThrow(AssertionError);
    const m = new CoordinatorMachine(snapshotOf(r, [['a', yes('a')]]), OPTS);
    expect(() => m.step({ type: 'voteObserved', participant: 'a', vote: makeVote('no', 'coord-2') })).toThrow(AssertionError);
  });
});

describe('crash and takeover', () => {
  /**
   * Runs begin, enlist a and b, commit with both voting yes, on a driver that
   * dies after `crashAfter` store writes; returns the store and what the
   * client heard. Writes in order: begin 1, enlist 2-3, freeze 4, decision 5.
   */
  async function crashRun(crashAfter: number, scripts: Record<string, 'yes' | 'no' | 'silent'>) {
    const store = new MemoryTxStore();
    const d = new Driver(store, CoordinatorMachine.fresh('t1', OPTS));
    d.crashAfterStoreWrites = crashAfter;
    d.scripts = new Map(Object.entries(scripts));
    await d.step({ type: 'begin', requestId: 'b1', record: record([]) });
    for (const [i, name] of ['a', 'b'].entries()) await d.step({ type: 'enlist', requestId: `e${i}`, participant: { name, url: `http://127.0.0.1:${4000 + i}` } });
    await d.step({ type: 'commitRequested', requestId: 'c1', nowMs: T0 + 1 });
    await d.observe();
    await d.observe();
    return { store, heard: d.replies.get('c1'), first: d };
  }

  /** A second coordinator takes over from the store alone, at `nowMs`, and runs to the end. */
  async function takeOver(store: MemoryTxStore, nowMs: number, scripts: Record<string, 'yes' | 'no' | 'silent'>) {
    const d = await Driver.recover(store, 't1', 'coord-2');
    d.scripts = new Map(Object.entries(scripts));
    await d.step({ type: 'recover', nowMs });
    await d.observe();
    if (d.machine.view().verdict === 'pending') await d.step({ type: 'deadlineReached', nowMs: Math.max(nowMs, DEADLINE) });
    await d.observe();
    await d.observe();
    return d;
  }

  for (let crashAfter = 0; crashAfter <= 5; crashAfter++) {
    it(`a coordinator killed after ${crashAfter} store writes: the next one decides the same, and the client's answer holds`, async () => {
      const scripts = { a: 'yes', b: 'yes' } as const;
      const { store, heard, first } = await crashRun(crashAfter, scripts);
      expect(first.crashed).toBe(crashAfter < 5);
      const snap = await readTxSnapshot(store, 't1');
      if (snap.tx === null) {
        // Killed before begin landed: nothing exists, nothing to finish, and nobody was told otherwise.
        expect(first.replies.size).toBe(0);
        return;
      }
      const second = await takeOver(store, T0 + 2, scripts);
      const decision = store.dump().get(decisionKey('t1'));
      expect(decision).toBeDefined();
      if (heard?.kind === 'outcome') expect(heard.outcome).toBe(decision === 'commit' ? 'committed' : 'aborted');
      // Commit iff every frozen participant's vote is yes.
      const final = await readTxSnapshot(store, 't1');
      const allYes = final.tx!.record.state === 'preparing' && final.tx!.record.participants.length > 0 && final.tx!.record.participants.every((p) => final.votes.get(p.name)?.vote === 'yes');
      expect(decision).toBe(allYes ? 'commit' : 'abort');
      expect(second.finished).toBe(decision);
    });
  }

  it('killed after the votes and before the decision key: the client heard committed; the next one records commit', async () => {
    const { store, heard, first } = await crashRun(4, { a: 'yes', b: 'yes' });
    expect(first.crashed).toBe(true);
    expect(heard).toMatchObject({ outcome: 'committed' });
    expect(store.dump().has(decisionKey('t1'))).toBe(false);
    await takeOver(store, T0 + 2, { a: 'yes', b: 'yes' });
    expect(store.dump().get(decisionKey('t1'))).toBe('commit');
  });

  it('two coordinators race to recover at the deadline: one decision, both agree', async () => {
    const store = new MemoryTxStore();
    await store.casCreate(txKey('t1'), encodeTxRecord(record(['a', 'b'], { state: 'preparing' })));
    await store.casCreate(voteKey('t1', 'a'), encodeVote(yes('a')));
    const d1 = await Driver.recover(store, 't1', 'coord-1');
    const d2 = await Driver.recover(store, 't1', 'coord-2');
    await Promise.all([d1.step({ type: 'recover', nowMs: DEADLINE }), d2.step({ type: 'recover', nowMs: DEADLINE })]);
    await Promise.all([d1.observe(), d2.observe()]);
    expect(store.dump().get(decisionKey('t1'))).toBe('abort');
    expect(d1.machine.view().decision).toBe('abort');
    expect(d2.machine.view().decision).toBe('abort');
    // Exactly one of them filled b's vote; the other adopted it.
    const filler = JSON.parse(store.dump().get(voteKey('t1', 'b'))!) as { by: string };
    expect(['coord-1', 'coord-2']).toContain(filler.by);
  });
});
