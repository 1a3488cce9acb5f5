// Goal: one test per rule of Figure 2 (AppendEntries, "Rules for Servers:
// Leaders") and of §5.3 of the Raft paper about log replication, in the
// manner of etcd-io/raft's raft_paper_test.go: the leader appends then
// replicates, commits on a majority, the consistency check, conflict
// resolution, commit propagation, and Figure 7's repair of divergent logs.
import { describe, expect, it } from 'vitest';
import type { Entry, Message } from '../../store/raft/index.js';
import { Cluster } from './harness.js';
import {
  PAPER,
  appMsg,
  appResp,
  drainReadies,
  electLeader,
  ent,
  ents,
  logOf,
  newNode,
  ofType,
  pump,
  takeMsgs,
  termsOf,
  voteResp,
} from './paper-helpers.js';

/** A leader of term 2 for {1,2,3} whose followers have acknowledged its no-op (index 1) and are streaming. */
function streamingLeader() {
  const n = newNode('1', { term: 1 });
  electLeader(n);
  n.step(appResp('2', '1', 2, 1));
  n.step(appResp('3', '1', 2, 1));
  takeMsgs(n);
  return n;
}

describe('§5.3 log replication', () => {
  it('§5.3 a new leader appends a no-op of its term and sends it to every follower', () => {
    const n = newNode('1', { term: 1, entries: ents(1, 1), commit: 1 });
    const sent = electLeader(n);
    expect(logOf(n)).toEqual([...ents(1, 1), { index: 3, term: 2, type: 'normal', data: '' }]);
    const apps = ofType(sent, 'app');
    expect(apps.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of apps) {
      expect(m).toMatchObject({ term: 2, prevIndex: 2, prevTerm: 1, commit: 1 });
      expect(m.entries).toEqual([{ index: 3, term: 2, type: 'normal', data: '' }]);
    }
  });

  it('§5.3 leader appends the proposal to its log then replicates', () => {
    const n = streamingLeader();
    expect(n.propose('x')).toEqual({ ok: true, index: 2, term: 2 });
    const rd = n.ready();
    const x: Entry = { index: 2, term: 2, type: 'normal', data: 'x' };
    // The entry to persist and the appends carrying it come in the same Ready: persisted, then sent.
    expect(rd.entries).toEqual([x]);
    const apps = ofType(rd.messages, 'app');
    expect(apps.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of apps) expect(m).toMatchObject({ term: 2, prevIndex: 1, prevTerm: 2, entries: [x], commit: 1 });
    // Not committed, hence not applied, until a majority stores it.
    expect(rd.committedEntries).toEqual([]);
    n.advance(rd);
    expect(n.status()).toMatchObject({ lastIndex: 2, commitIndex: 1 });
  });

  it('§5.3 leader commits once a majority stores the entry, followers learn commit from the leader', () => {
    const leader = newNode('1', { term: 1 });
    const f2 = newNode('2', { term: 1 });
    const f3 = newNode('3', { term: 1 });
    pump([leader, f2, f3], { initial: electLeader(leader) });
    leader.propose('x');
    // The appends reach both followers, but only 2's acknowledgement comes back.
    const appends = takeMsgs(leader);
    for (const m of appends) (m.to === '2' ? f2 : f3).step(m);
    const ack2 = takeMsgs(f2);
    takeMsgs(f3); // 3's acknowledgement is lost
    expect(ack2).toMatchObject([{ type: 'appResp', index: 2, reject: false }]);
    expect(leader.status().commitIndex).toBe(1);
    leader.step(ack2[0] as Message);
    expect(leader.status().commitIndex).toBe(2);
    const rds = drainReadies(leader);
    expect(rds.flatMap((rd) => rd.committedEntries).map((e) => e.data)).toEqual(['x']);
    expect(rds.some((rd) => rd.hardState?.commit === 2)).toBe(true);
    // Followers still think 1 is committed, and learn 2 from the leader's next AppendEntries.
    expect(f2.status().commitIndex).toBe(1);
    expect(f3.status().commitIndex).toBe(1);
    const tell = ofType(
      rds.flatMap((rd) => rd.messages),
      'app',
    );
    expect(tell.map((m) => [m.to, m.commit])).toEqual(
      expect.arrayContaining([
        ['2', 2],
        ['3', 2],
      ]),
    );
    for (const m of tell) (m.to === '2' ? f2 : f3).step(m);
    for (const f of [f2, f3]) {
      expect(f.status().commitIndex).toBe(2);
      expect(
        drainReadies(f)
          .flatMap((rd) => rd.committedEntries)
          .map((e) => e.data),
      ).toEqual(['x']);
    }
  });

  const acks: { size: number; acceptors: string[]; commit: boolean }[] = [
    { size: 1, acceptors: [], commit: true },
    { size: 3, acceptors: [], commit: false },
    { size: 3, acceptors: ['2'], commit: true },
    { size: 3, acceptors: ['2', '3'], commit: true },
    { size: 4, acceptors: ['2'], commit: false },
    { size: 4, acceptors: ['2', '3'], commit: true },
    { size: 5, acceptors: [], commit: false },
    { size: 5, acceptors: ['2'], commit: false },
    { size: 5, acceptors: ['2', '3'], commit: true },
    { size: 5, acceptors: ['2', '3', '4', '5'], commit: true },
  ];
  for (const tc of acks) {
    it(`§5.3 an entry is committed once the leader has replicated it on a majority (${tc.size} servers, acks from [${tc.acceptors.join(' ')}] -> ${tc.commit})`, () => {
      const voters = Array.from({ length: tc.size }, (_, i) => String(i + 1));
      const n = newNode('1', { voters, term: 1 });
      electLeader(n);
      const res = n.propose('x');
      if (!res.ok) throw new Error('propose failed');
      takeMsgs(n);
      for (const id of tc.acceptors) n.step(appResp(id, '1', 2, res.index));
      expect(n.status().commitIndex >= res.index).toBe(tc.commit);
    });
  }

  it('§5.3 committing an entry also commits all preceding entries, those of earlier leaders included', () => {
    const n = newNode('1', { term: 2, entries: ents(1, 2), commit: 0 });
    electLeader(n); // term 3, no-op at 3
    n.step(appResp('2', '1', 3, 3));
    expect(n.status().commitIndex).toBe(3);
    const applied = drainReadies(n).flatMap((rd) => rd.committedEntries);
    expect(applied.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  const checks: { prevIndex: number; prevTerm: number; accept: boolean; index: number; hint?: [number, number] }[] = [
    { prevIndex: 0, prevTerm: 0, accept: true, index: 1 }, // before the commit point: everything up to commit matches
    { prevIndex: 1, prevTerm: 1, accept: true, index: 1 },
    { prevIndex: 2, prevTerm: 2, accept: true, index: 2 },
    { prevIndex: 1, prevTerm: 2, accept: false, index: 1, hint: [1, 1] }, // same index, different term
    { prevIndex: 2, prevTerm: 1, accept: false, index: 2, hint: [1, 1] },
    { prevIndex: 3, prevTerm: 2, accept: false, index: 3, hint: [2, 2] }, // we have no entry at prevIndex
    { prevIndex: 3, prevTerm: 3, accept: false, index: 3, hint: [2, 2] },
  ];
  for (const tc of checks) {
    it(`§5.3 AppendEntries consistency check rejects a mismatched prevLogIndex/term (prev ${tc.prevIndex}/${tc.prevTerm} -> ${tc.accept ? 'accept' : 'reject'})`, () => {
      const n = newNode('1', { term: 2, entries: ents(1, 2), commit: 1 });
      n.step(appMsg('2', '1', 2, tc.prevIndex, tc.prevTerm, [], 1));
      const resp = ofType(takeMsgs(n), 'appResp');
      expect(resp).toHaveLength(1);
      expect(resp[0]).toMatchObject({ to: '2', term: 2, reject: !tc.accept, index: tc.index });
      if (tc.hint) expect([resp[0]?.hintIndex, resp[0]?.hintTerm]).toEqual(tc.hint);
      // A rejected append changes nothing.
      expect(termsOf(logOf(n))).toEqual([1, 2]);
    });
  }

  const e = (index: number, term: number) => ent(index, term, `t${term}`);
  const appends: { name: string; base: number[]; prev: [number, number]; entries: Entry[]; want: number[]; persist: Entry[] }[] = [
    { name: 'append after a match', base: [1, 2], prev: [2, 2], entries: [e(3, 3)], want: [1, 2, 3], persist: [e(3, 3)] },
    { name: 'replace a conflicting suffix', base: [1, 2], prev: [1, 1], entries: [e(2, 3), e(3, 4)], want: [1, 3, 4], persist: [e(2, 3), e(3, 4)] },
    { name: 'replace from the first entry', base: [1, 2], prev: [0, 0], entries: [e(1, 3)], want: [3], persist: [e(1, 3)] },
    { name: 'an entry we already have changes nothing', base: [1, 2], prev: [0, 0], entries: [e(1, 1)], want: [1, 2], persist: [] },
    { name: 'an empty append truncates nothing', base: [1, 2], prev: [1, 1], entries: [], want: [1, 2], persist: [] },
    { name: 'a stale, shorter append truncates nothing', base: [1, 2, 2], prev: [1, 1], entries: [e(2, 2)], want: [1, 2, 2], persist: [] },
    { name: 'conflict in the middle of the entries', base: [1, 2, 2, 2], prev: [1, 1], entries: [e(2, 2), e(3, 3)], want: [1, 2, 3], persist: [e(3, 3)] },
  ];
  for (const tc of appends) {
    it(`§5.3 follower deletes conflicting entries and appends new ones (${tc.name})`, () => {
      const base = tc.base.map((t, i) => e(i + 1, t));
      const n = newNode('1', { term: 4, entries: base, commit: 0 });
      n.step(appMsg('2', '1', 4, tc.prev[0], tc.prev[1], tc.entries, 0));
      const rds = drainReadies(n);
      expect(termsOf(logOf(n))).toEqual(tc.want);
      // Entries kept are the very same entries; new ones are what the leader sent.
      expect(logOf(n)).toEqual(tc.want.map((_, i) => (tc.entries.find((x) => x.index === i + 1) ?? base[i]) as Entry));
      expect(rds.flatMap((rd) => rd.entries)).toEqual(tc.persist);
      const acks = ofType(
        rds.flatMap((rd) => rd.messages),
        'appResp',
      );
      expect(acks).toMatchObject([{ reject: false, index: tc.prev[0] + tc.entries.length }]);
    });
  }

  it('Figure 2: follower sets commitIndex = min(leaderCommit, index of last new entry)', () => {
    // Entry 3 (term 2) came from a leader that lost; the leader of term 3 has a different log.
    const n = newNode('1', { term: 3, entries: ents(1, 1, 2), commit: 0 });
    n.step(appMsg('2', '1', 3, 1, 1, [], 3));
    expect(n.status().commitIndex).toBe(1); // never commit entry 3: it may not be the leader's
    n.step(appMsg('2', '1', 3, 1, 1, [ent(2, 3)], 3));
    expect(termsOf(logOf(n))).toEqual([1, 3]);
    expect(n.status().commitIndex).toBe(2);
    n.step(appMsg('2', '1', 3, 2, 3, [ent(3, 3), ent(4, 3)], 3));
    expect(n.status().commitIndex).toBe(3);
    // A stale append with a smaller leaderCommit never moves commitIndex back.
    n.step(appMsg('2', '1', 3, 2, 3, [ent(3, 3)], 1));
    expect(n.status().commitIndex).toBe(3);
    expect(n.status().lastIndex).toBe(4);
  });

  it('§5.3 after a rejection the leader decrements nextIndex and retries, one term at a time', () => {
    const leader = newNode('1', { term: 3, entries: ents(1, 1, 2, 2, 3), commit: 2 });
    const follower = newNode('2', { term: 3, entries: ents(1, 1, 1, 1, 1, 1, 1), commit: 2 });
    const delivered = pump([leader, follower], { initial: electLeader(leader) }); // term 4, no-op at 6
    const apps = ofType(delivered, 'app').filter((m) => m.to === '2' && m.entries.length > 0);
    // The first append (prev 5/3) is refused; the follower's hint lets the leader skip
    // all of term 2 and retry from the last index where the terms can agree.
    expect(apps.map((m) => [m.prevIndex, m.prevTerm])).toEqual([
      [5, 3],
      [2, 1],
    ]);
    expect(ofType(delivered, 'appResp').filter((m) => m.reject)).toHaveLength(1);
    expect(logOf(follower)).toEqual(logOf(leader));
    expect(termsOf(logOf(leader))).toEqual([1, 1, 2, 2, 3, 4]);
    expect(follower.status().commitIndex).toBe(6);
  });

  it('§5.3 the leader retries AppendEntries indefinitely until every follower stores every entry', () => {
    const c = new Cluster(['a', 'b', 'c'], PAPER);
    c.node('a').campaign();
    c.stabilize();
    // Every append to c is lost for a while; a and b still commit.
    const dropToC = (m: Message) => !(m.to === 'c' && m.type === 'app');
    for (let i = 0; i < 5; i++) {
      c.node('a').propose(`v${i}`);
      c.stabilize(10_000, dropToC);
      c.tickAll(1);
      c.stabilize(10_000, dropToC);
    }
    expect(c.peer('b').app.count).toBe(5);
    expect(c.peer('c').app.count).toBe(0);
    // The network heals: with nothing but time passing, the leader brings c up to date.
    for (let i = 0; i < 3 * (PAPER.electionTicks as number) && c.peer('c').app.count < 5; i++) {
      c.tickAll(1);
      c.stabilize();
    }
    expect(c.peer('c').app).toEqual(c.peer('a').app);
    expect(c.leader()).toBe('a');
  });
});

describe('§5.3 Figure 7: a leader brings divergent follower logs into agreement', () => {
  // Figure 7's logs: index 1..3 are term 1 (here: the bootstrap membership entries).
  const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    '(a) missing entries': [1, 1, 1, 4, 4, 5, 5, 6, 6],
    '(b) missing many entries': [1, 1, 1, 4],
    '(c) an extra uncommitted entry of the current term': [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    '(d) extra entries of a later term': [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    '(e) missing entries and extra ones of an old term': [1, 1, 1, 4, 4, 4, 4],
    '(f) entries of terms the leader never saw': [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, followerTerms] of Object.entries(followers)) {
    it(`§5.3 leader forces the follower's log to duplicate its own ${name}`, () => {
      const c = new Cluster(['L', 'F', 'X'], PAPER);
      const boot = c.peer('L').storage.entries.slice(0, 3);
      const log = (terms: number[]): Entry[] => [
        ...boot,
        ...terms.slice(3).map((t, i) => ({ index: i + 4, term: t, type: 'normal' as const, data: `t${t}i${i + 4}` })),
      ];
      c.peer('L').storage.entries = log(leaderTerms);
      c.peer('L').storage.hardState = { term: 8, vote: '', commit: 3 };
      c.peer('F').storage.entries = log(followerTerms);
      c.peer('F').storage.hardState = { term: Math.max(...followerTerms), vote: '', commit: 3 };
      c.restart('L');
      c.restart('F');
      c.crash('X');
      c.node('L').campaign();
      c.stabilize();
      // X's vote (as in etcd's test): F may refuse, its log being more up-to-date.
      c.deliver(voteResp('X', 'L', 9));
      c.stabilize();
      expect(c.leader()).toBe('L');
      const want = [...log(leaderTerms), { index: 11, term: 9, type: 'normal' as const, data: '' }];
      // Leader Append-Only: the leader's own entries are untouched.
      expect(logOf(c.node('L'))).toEqual(want);
      // Log Matching: the follower's log is now identical, the extra entries gone.
      expect(logOf(c.node('F'))).toEqual(want);
      expect(c.node('F').status().commitIndex).toBe(11);
      expect(c.peer('F').app).toEqual(c.peer('L').app);
    });
  }
});
