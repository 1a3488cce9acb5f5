// Goal: the 2PC protocol module keeps the key layout of docs/API.md
// exactly, refuses values it never writes, and implements the commit rule:
// commit only if every frozen participant voted yes, any "no" aborts, and on
// the vote keys the first writer wins forever, so the decision follows what
// the store holds rather than what a late writer meant.
import { describe, expect, it } from 'vitest';
import {
  ackKey,
  decide,
  decisionKey,
  decodeAck,
  decodeDecision,
  decodeTxRecord,
  decodeVote,
  encodeAck,
  encodeDecision,
  encodeTxRecord,
  encodeVote,
  listedState,
  makeVote,
  parseKey,
  ProtocolError,
  snapshotFromKvs,
  toParticipant,
  txKey,
  verdictOf,
  voteKey,
  type TxRecord,
  type Vote,
} from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { readTxSnapshot } from '../../coordinator/txstore/txstore.js';

const record: TxRecord = {
  participants: [
    { name: 'bank-a', url: 'http://127.0.0.1:4001' },
    { name: 'bank-b', url: 'http://127.0.0.1:4002' },
  ],
  state: 'active',
  deadline: 1_700_000_010_000,
  createdAt: 1_700_000_000_000,
};

const yes = (by: string): Vote => makeVote('yes', by);
const no = (by: string, reason?: string): Vote => makeVote('no', by, reason);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof ProtocolError ? e.code : `not a ProtocolError: ${String(e)}`;
  }
  return undefined;
}

describe('key layout', () => {
  it('builds the keys of docs/API.md and parses them back', () => {
    expect(txKey('t1')).toBe('tx/t1');
    expect(voteKey('t1', 'bank-a')).toBe('tx/t1/vote/bank-a');
    expect(decisionKey('t1')).toBe('tx/t1/decision');
    expect(ackKey('t1', 'bank-a')).toBe('tx/t1/ack/bank-a');
    expect(parseKey('tx/t1')).toEqual({ kind: 'tx', id: 't1' });
    expect(parseKey('tx/t1/vote/bank-a')).toEqual({ kind: 'vote', id: 't1', participant: 'bank-a' });
    expect(parseKey('tx/t1/decision')).toEqual({ kind: 'decision', id: 't1' });
    expect(parseKey('tx/t1/ack/bank-a')).toEqual({ kind: 'ack', id: 't1', participant: 'bank-a' });
  });

  it('refuses ids and names that would break the layout', () => {
    expect(codeOf(() => txKey('a/b'))).toBe('invalid_tx_id');
    expect(codeOf(() => txKey(''))).toBe('invalid_tx_id');
    expect(codeOf(() => txKey('x'.repeat(129)))).toBe('invalid_tx_id');
    expect(codeOf(() => voteKey('t1', 'a/b'))).toBe('invalid_participant');
    expect(codeOf(() => voteKey('t1', '..'))).toBe('invalid_participant');
    expect(codeOf(() => txKey('550e8400-e29b-41d4-a716-446655440000'))).toBeUndefined();
  });

  it('returns null for keys outside the layout', () => {
    for (const key of ['other/t1', 'tx/', 'tx/t1/vote', 'tx/t1/vote/a/b', 'tx/t1/unknown/a', 'tx/t1/decision/x', 'tx/a b']) {
      expect(parseKey(key), key).toBeNull();
    }
  });
});

describe('codecs', () => {
  it('round-trips a tx record, and equal records encode to equal text (CAS compares text)', () => {
    const raw = encodeTxRecord(record);
    expect(decodeTxRecord(raw)).toEqual(record);
    const reordered = { createdAt: record.createdAt, deadline: record.deadline, state: record.state, participants: record.participants };
    expect(encodeTxRecord(reordered)).toBe(raw);
    const withMeta = { ...record, metadata: { purpose: 'transfer', amount: 5 } };
    expect(decodeTxRecord(encodeTxRecord(withMeta))).toEqual(withMeta);
  });

  it('refuses bad tx records: 400 when encoding, corrupt_value (500) when decoding', () => {
    expect(codeOf(() => encodeTxRecord({ ...record, deadline: -1 }))).toBe('invalid_argument');
    expect(codeOf(() => encodeTxRecord({ ...record, participants: [record.participants[0]!, record.participants[0]!] }))).toBe('invalid_argument');
    const bad = [
      'not json',
      '[]',
      '{"participants":[],"state":"committed","deadline":1,"createdAt":1}',
      '{"participants":[{"name":"a/b","url":"http://x"}],"state":"active","deadline":1,"createdAt":1}',
      '{"participants":[{"name":"a","url":"ftp://x"}],"state":"active","deadline":1,"createdAt":1}',
      '{"participants":[],"state":"active","deadline":1.5,"createdAt":1}',
      '{"participants":[],"state":"active","deadline":1}',
    ];
    for (const raw of bad) expect(codeOf(() => decodeTxRecord(raw)), raw).toBe('corrupt_value');
    try {
      decodeTxRecord('nope');
    } catch (e) {
      expect((e as ProtocolError).status).toBe(500);
    }
  });

  it('round-trips votes and refuses malformed ones', () => {
    for (const v of [yes('bank-a'), no('coord-1', 'deadline')]) expect(decodeVote(encodeVote(v))).toEqual(v);
    expect(encodeVote(yes('bank-a'))).toBe('{"vote":"yes","by":"bank-a"}');
    for (const raw of ['{"vote":"maybe","by":"a"}', '{"vote":"yes"}', '{"vote":"yes","by":""}', '{"vote":"no","by":"a","reason":5}', '"yes"']) {
      expect(codeOf(() => decodeVote(raw)), raw).toBe('corrupt_value');
    }
    expect(makeVote('no', 'a', 'x'.repeat(5000)).reason).toHaveLength(1024);
  });

  it('stores the decision as plain text and the ack as epoch ms', () => {
    expect(encodeDecision('commit')).toBe('commit');
    expect(decodeDecision('abort')).toBe('abort');
    expect(codeOf(() => decodeDecision('"commit"'))).toBe('corrupt_value');
    expect(encodeAck(1_700_000_000_123)).toBe('1700000000123');
    expect(decodeAck('1700000000123')).toBe(1_700_000_000_123);
    for (const raw of ['', '-1', '1e3', 'soon']) expect(codeOf(() => decodeAck(raw)), raw).toBe('corrupt_value');
  });

  it('validates participants from requests', () => {
    expect(toParticipant({ name: 'bank-a', url: 'https://bank.example/2pc' })).toEqual({ name: 'bank-a', url: 'https://bank.example/2pc' });
    for (const p of [null, {}, { name: 'a' }, { name: 'a/b', url: 'http://x' }, { name: 'a', url: 'not a url' }, { name: 'a', url: 'file:///etc/passwd' }]) {
      expect(codeOf(() => toParticipant(p)), JSON.stringify(p)).toBe('invalid_participant');
    }
  });
});

describe('the commit rule', () => {
  const frozen = ['bank-a', 'bank-b', 'bank-c'];

  it('commits only when every frozen participant voted yes', () => {
    const votes = new Map([
      ['bank-a', yes('bank-a')],
      ['bank-b', yes('bank-b')],
    ]);
    expect(decide(frozen, votes)).toBe('pending');
    votes.set('bank-c', yes('bank-c'));
    expect(decide(frozen, votes)).toBe('commit');
  });

  it('aborts on any no, even while other votes are missing', () => {
    expect(decide(frozen, new Map([['bank-b', no('bank-b')]]))).toBe('abort');
    expect(decide(frozen, new Map([['bank-a', yes('bank-a')], ['bank-b', yes('bank-b')], ['bank-c', no('coord-1', 'deadline')]]))).toBe('abort');
  });

  it('ignores votes of names outside the frozen list', () => {
    const votes = new Map([
      ['bank-a', yes('bank-a')],
      ['intruder', no('intruder')],
    ]);
    expect(decide(['bank-a'], votes)).toBe('commit');
  });

  it('leaves an empty list to the decision key', () => {
    expect(decide([], new Map())).toBe('pending');
    const empty: TxRecord = { participants: [], state: 'preparing', deadline: 2, createdAt: 1 };
    expect(verdictOf(empty, new Map(), 'abort')).toBe('abort');
    expect(verdictOf(empty, new Map(), 'commit')).toBe('commit');
  });

  it('the verdict of a snapshot: the decision key, else the votes of a frozen record, else pending', () => {
    const participants = frozen.map((name) => ({ name, url: 'http://127.0.0.1:9' }));
    const active: TxRecord = { participants, state: 'active', deadline: 2, createdAt: 1 };
    const preparing: TxRecord = { ...active, state: 'preparing' };
    const allYes = new Map(frozen.map((n) => [n, yes(n)]));
    expect(verdictOf(preparing, allYes, undefined)).toBe('commit');
    expect(verdictOf(active, allYes, undefined)).toBe('pending'); // early votes decide nothing before the freeze
    expect(verdictOf(null, allYes, undefined)).toBe('pending');
    expect(verdictOf(undefined, new Map(), 'abort')).toBe('abort');
    expect(verdictOf(preparing, new Map([['bank-a', no('bank-a')]]), undefined)).toBe('abort');
  });

  it('first writer wins on a vote key: a late "no" by CAS cannot replace a "yes"', async () => {
    const store = new MemoryTxStore();
    const key = voteKey('t1', 'bank-a');
    const first = await store.casCreate(key, encodeVote(yes('bank-a')));
    const late = await store.casCreate(key, encodeVote(no('coord-1', 'deadline')));
    expect(first.succeeded).toBe(true);
    expect(late).toMatchObject({ succeeded: false, previous: encodeVote(yes('bank-a')) });
    // The decision follows the store, not the loser's intent.
    const stored = decodeVote((await store.get(key))!.value);
    expect(decide(['bank-a'], new Map([['bank-a', stored]]))).toBe('commit');
  });
});

describe('snapshots', () => {
  it('reads one transaction, skipping others that share its prefix', async () => {
    const store = new MemoryTxStore();
    const frozen = { ...record, state: 'preparing' as const };
    await store.casCreate(txKey('t1'), encodeTxRecord(frozen));
    await store.casCreate(voteKey('t1', 'bank-a'), encodeVote(yes('bank-a')));
    await store.casCreate(decisionKey('t1'), 'abort');
    await store.casCreate(ackKey('t1', 'bank-a'), '1700000000500');
    await store.casCreate(txKey('t10'), encodeTxRecord(record));
    await store.casCreate(voteKey('t10', 'bank-a'), encodeVote(no('bank-a')));
    await store.casCreate(voteKey('t1', 'bank-b'), encodeVote(no('bank-b')));
    const snap = await readTxSnapshot(store, 't1');
    expect(snap.tx?.record).toEqual(frozen);
    expect([...snap.votes.keys()].sort()).toEqual(['bank-a', 'bank-b']);
    expect(snap.decision).toBe('abort');
    expect(snap.acks.get('bank-a')).toBe(1_700_000_000_500);
    expect(snap.revision).toBe(store.currentRevision);
    expect(snapshotFromKvs('t2', [], 0).tx).toBeNull();
  });

  it('lists states: active, preparing, decided by votes or key, in-doubt past the deadline', () => {
    const at = (r: TxRecord, votes: [string, Vote][] = [], decision?: 'commit' | 'abort') => ({
      id: 't1',
      tx: { raw: encodeTxRecord(r), record: r },
      votes: new Map(votes),
      decision,
      acks: new Map(),
      revision: 1,
    });
    const before = record.deadline - 1;
    const preparing = { ...record, state: 'preparing' as const };
    expect(listedState(at(record), before)).toBe('active');
    expect(listedState(at(preparing), before)).toBe('preparing');
    expect(listedState(at(preparing), record.deadline)).toBe('in-doubt');
    expect(listedState(at(preparing, [['bank-a', yes('bank-a')], ['bank-b', yes('bank-b')]]), record.deadline)).toBe('committed');
    expect(listedState(at(preparing, [['bank-a', no('bank-a')]]), before)).toBe('aborted');
    expect(listedState(at(preparing, [], 'abort'), before)).toBe('aborted');
  });
});
