// Goal: one test per rule of Figure 2 ("Rules for Servers", RequestVote) and
// of §5.1-§5.2 of the Raft paper (Ongaro & Ousterhout 2014) about terms and
// leader election, in the manner of etcd-io/raft's raft_paper_test.go. Each
// test drives a single RawNode with hand-built messages and checks what it
// really does: its role, term, vote, and the messages it emits. PreVote and
// CheckQuorum are off here (the paper's algorithm); features.test.ts covers them.
import { describe, expect, it } from 'vitest';
import { NONE, type Message, type RawNode } from '../../store/raft/index.js';
import {
  PAPER,
  appMsg,
  drainReadies,
  electLeader,
  ents,
  heartbeat,
  newNode,
  ofType,
  takeMsgs,
  voteMsg,
  voteResp,
} from './paper-helpers.js';

const T = PAPER.electionTicks as number;

/** Ticks until the node leaves the follower (or candidate) role it is in, at most `max`. */
function ticksUntilCampaign(n: RawNode, max = 10 * T): number {
  const term = n.status().term;
  for (let i = 1; i <= max; i++) {
    n.tick();
    if (n.status().term > term) return i;
  }
  return -1;
}

describe('§5.1 terms', () => {
  const roles = ['follower', 'candidate', 'leader'] as const;
  const kinds = ['app', 'heartbeat', 'vote'] as const;

  for (const role of roles) {
    for (const kind of kinds) {
      it(`§5.1 a server that sees a higher term reverts to follower (${role}, ${kind})`, () => {
        const n = newNode('1', { term: 1 });
        if (role === 'candidate') n.campaign();
        if (role === 'leader') electLeader(n);
        takeMsgs(n);
        expect(n.status().role).toBe(role);
        const higher = n.status().term + 1;
        const m: Message =
          kind === 'app' ? appMsg('2', '1', higher, 0, 0) : kind === 'heartbeat' ? heartbeat('2', '1', higher) : voteMsg('2', '1', higher, 10, higher - 1);
        n.step(m);
        const st = n.status();
        expect(st.role).toBe('follower');
        expect(st.term).toBe(higher);
        // A message from a leader names the leader; a vote request does not.
        expect(st.leaderId).toBe(kind === 'vote' ? NONE : '2');
        // The new term is persisted before anything that depends on it is sent.
        const rds = drainReadies(n);
        expect(rds.some((rd) => rd.hardState?.term === higher)).toBe(true);
      });
    }
  }

  it('§5.1 a server with a stale term rejects the request', () => {
    for (const cfg of [PAPER, { ...PAPER, checkQuorum: true }]) {
      const n = newNode('1', { term: 3, entries: ents(1, 2), commit: 1, cfg });
      drainReadies(n);
      // AppendEntries from a deposed leader of term 2: nothing changes.
      n.step(appMsg('2', '1', 2, 2, 2, [{ index: 3, term: 2, type: 'normal', data: 'stale' }], 3));
      // RequestVote from a candidate of term 2: no vote granted.
      n.step(voteMsg('3', '1', 2, 10, 2));
      const st = n.status();
      expect(st.term).toBe(3);
      expect(st.vote).toBe(NONE);
      expect(st.leaderId).toBe(NONE);
      expect(st.lastIndex).toBe(2);
      expect(st.commitIndex).toBe(1);
      const msgs = takeMsgs(n);
      expect(ofType(msgs, 'voteResp').filter((m) => !m.reject)).toEqual([]);
      // Whatever it answers carries its current term, which makes the sender step down.
      for (const m of msgs) expect(m.term).toBe(3);
      if (cfg.checkQuorum) expect(ofType(msgs, 'appResp').map((m) => m.to)).toEqual(['2']);
    }
  });

  it('§5.1 a leader or candidate that learns of a newer term from a response steps down', () => {
    const n = newNode('1', { term: 1 });
    electLeader(n);
    n.step({ type: 'appResp', from: '2', to: '1', term: 5, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
    expect(n.status()).toMatchObject({ role: 'follower', term: 5, leaderId: NONE });
    const cand = newNode('1', { term: 1 });
    cand.campaign();
    cand.step(voteResp('2', '1', 4, true));
    expect(cand.status()).toMatchObject({ role: 'follower', term: 4, vote: NONE });
  });
});

describe('§5.2 leader election', () => {
  it('§5.2 servers start as followers, keeping their persisted term and vote', () => {
    const fresh = newNode('1');
    expect(fresh.status()).toMatchObject({ role: 'follower', term: 0, vote: NONE, leaderId: NONE });
    const restarted = newNode('1', { term: 5, vote: '2', entries: ents(1, 5), commit: 1 });
    expect(restarted.status()).toMatchObject({ role: 'follower', term: 5, vote: '2', leaderId: NONE, commitIndex: 1, lastIndex: 2 });
  });

  it('§5.2 leader sends periodic heartbeats to every follower to keep its authority', () => {
    const n = newNode('1', { term: 1, cfg: { heartbeatTicks: 2 } });
    electLeader(n);
    n.tick();
    expect(ofType(takeMsgs(n), 'heartbeat')).toEqual([]);
    n.tick();
    const hbs = ofType(takeMsgs(n), 'heartbeat');
    expect(hbs.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of hbs) expect(m.term).toBe(2);
    // It keeps doing so; a leader never times out into an election.
    for (let i = 0; i < 5 * T; i++) n.tick();
    expect(n.status()).toMatchObject({ role: 'leader', term: 2 });
    expect(ofType(takeMsgs(n), 'heartbeat').length).toBe(2 * Math.floor((5 * T) / 2));
  });

  it('§5.2 follower that hears nothing for an election timeout starts an election', () => {
    const n = newNode('1', { term: 1, entries: ents(1, 1), commit: 2 });
    drainReadies(n);
    const ticks = ticksUntilCampaign(n);
    expect(ticks).toBeGreaterThanOrEqual(T);
    expect(ticks).toBeLessThan(2 * T);
    // It increments its term, votes for itself and asks every other server for its vote.
    expect(n.status()).toMatchObject({ role: 'candidate', term: 2, vote: '1' });
    const rds = drainReadies(n);
    const votes = ofType(
      rds.flatMap((rd) => rd.messages),
      'vote',
    );
    expect(votes.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of votes) expect(m).toMatchObject({ term: 2, lastLogIndex: 2, lastLogTerm: 1, force: false });
  });

  it('§5.2 a follower that keeps hearing from the leader never starts an election', () => {
    const n = newNode('1', { term: 1 });
    for (let i = 0; i < 10 * T; i++) {
      n.step(heartbeat('2', '1', 1));
      n.tick();
    }
    expect(n.status()).toMatchObject({ role: 'follower', term: 1, leaderId: '2' });
    // And the same holds for AppendEntries carrying entries.
    for (let i = 0; i < 3 * T; i++) {
      n.step(appMsg('2', '1', 1, i, i === 0 ? 0 : 1, [{ index: i + 1, term: 1, type: 'normal', data: 'x' }]));
      n.tick();
    }
    expect(n.status()).toMatchObject({ role: 'follower', term: 1, leaderId: '2', lastIndex: 3 * T });
  });

  it('Figure 2: granting a vote resets the election timer; refusing one does not', () => {
    // Two identical nodes have identical randomized timeouts: measure it on one.
    const t = ticksUntilCampaign(newNode('1', { term: 1, seed: 3 }));
    expect(t).toBeGreaterThan(1);

    const granting = newNode('1', { term: 1, seed: 3 });
    for (let i = 0; i < t - 1; i++) granting.tick();
    granting.step(voteMsg('2', '1', 1, 0, 0));
    expect(ofType(takeMsgs(granting), 'voteResp')).toMatchObject([{ reject: false }]);
    for (let i = 0; i < t - 1; i++) granting.tick();
    expect(granting.status()).toMatchObject({ role: 'follower', term: 1 });
    granting.tick();
    expect(granting.status()).toMatchObject({ role: 'candidate', term: 2 });

    const refusing = newNode('1', { term: 1, vote: '3', seed: 3 });
    for (let i = 0; i < t - 1; i++) refusing.tick();
    refusing.step(voteMsg('2', '1', 1, 0, 0));
    expect(ofType(takeMsgs(refusing), 'voteResp')).toMatchObject([{ reject: true }]);
    refusing.tick();
    expect(refusing.status()).toMatchObject({ role: 'candidate', term: 2 });
  });

  const wins: { size: number; votes: Record<string, boolean>; role: string }[] = [
    { size: 1, votes: {}, role: 'leader' },
    { size: 3, votes: { '2': true, '3': true }, role: 'leader' },
    { size: 3, votes: { '2': true }, role: 'leader' },
    { size: 5, votes: { '2': true, '3': true, '4': true, '5': true }, role: 'leader' },
    { size: 5, votes: { '2': true, '3': true, '4': true }, role: 'leader' },
    { size: 5, votes: { '2': true, '3': true }, role: 'leader' },
    { size: 5, votes: { '2': false, '3': true, '4': false, '5': true }, role: 'leader' },
    // A majority refused: the election is lost.
    { size: 3, votes: { '2': false, '3': false }, role: 'follower' },
    { size: 5, votes: { '2': false, '3': false, '4': false, '5': false }, role: 'follower' },
    { size: 5, votes: { '2': true, '3': false, '4': false, '5': false }, role: 'follower' },
    // Neither: still waiting.
    { size: 3, votes: {}, role: 'candidate' },
    { size: 3, votes: { '2': false }, role: 'candidate' },
    { size: 5, votes: { '2': true }, role: 'candidate' },
    { size: 5, votes: { '2': false, '3': false }, role: 'candidate' },
    { size: 5, votes: { '2': true, '3': false, '4': false }, role: 'candidate' },
    { size: 5, votes: {}, role: 'candidate' },
  ];
  for (const tc of wins) {
    const desc = Object.entries(tc.votes)
      .map(([id, v]) => `${id}:${v ? 'yes' : 'no'}`)
      .join(' ');
    it(`§5.2 candidate wins with votes from a majority (${tc.size} servers, votes {${desc}} -> ${tc.role})`, () => {
      const voters = Array.from({ length: tc.size }, (_, i) => String(i + 1));
      const n = newNode('1', { voters, term: 1 });
      n.campaign();
      takeMsgs(n);
      for (const [id, granted] of Object.entries(tc.votes)) n.step(voteResp(id, '1', 2, !granted));
      const st = n.status();
      expect(st.role).toBe(tc.role);
      expect(st.term).toBe(2);
      if (tc.role === 'leader') {
        // The winner sends AppendEntries to every other server at once to establish its authority.
        const apps = ofType(takeMsgs(n), 'app');
        expect(apps.map((m) => m.to).sort()).toEqual(voters.filter((v) => v !== '1'));
        expect(st.leaderId).toBe('1');
      }
    });
  }

  const votes: { vote: string; from: string; grant: boolean }[] = [
    { vote: NONE, from: '2', grant: true },
    { vote: NONE, from: '3', grant: true },
    { vote: '2', from: '2', grant: true },
    { vote: '3', from: '3', grant: true },
    { vote: '2', from: '3', grant: false },
    { vote: '3', from: '2', grant: false },
  ];
  for (const tc of votes) {
    it(`§5.2 each server votes for at most one candidate per term (voted ${tc.vote || 'none'}, asked by ${tc.from})`, () => {
      const n = newNode('1', { term: 1, vote: tc.vote });
      n.step(voteMsg(tc.from, '1', 1, 0, 0));
      const resp = ofType(takeMsgs(n), 'voteResp');
      expect(resp).toEqual([{ type: 'voteResp', from: '1', to: tc.from, term: 1, reject: !tc.grant }]);
      expect(n.status().vote).toBe(tc.vote === NONE ? tc.from : tc.vote);
    });
  }

  it('§5.2 each server votes for at most one candidate per term (first come, first served)', () => {
    const n = newNode('1', { voters: ['1', '2', '3', '4', '5'], term: 1 });
    n.step(voteMsg('2', '1', 2, 0, 0));
    n.step(voteMsg('3', '1', 2, 0, 0));
    n.step(voteMsg('2', '1', 2, 0, 0)); // a retransmission gets the same answer
    const resp = ofType(takeMsgs(n), 'voteResp');
    expect(resp.map((m) => [m.to, m.reject])).toEqual([
      ['2', false],
      ['3', true],
      ['2', false],
    ]);
    // A candidate votes for itself and so refuses everyone else in its term; so does a leader.
    const cand = newNode('1', { term: 1 });
    cand.campaign();
    takeMsgs(cand);
    cand.step(voteMsg('2', '1', 2, 5, 1));
    expect(ofType(takeMsgs(cand), 'voteResp')).toMatchObject([{ to: '2', reject: true }]);
    expect(cand.status()).toMatchObject({ role: 'candidate', vote: '1' });
    const lead = newNode('1', { term: 1 });
    electLeader(lead);
    lead.step(voteMsg('3', '1', 2, 5, 1));
    expect(ofType(takeMsgs(lead), 'voteResp')).toMatchObject([{ to: '3', reject: true }]);
    expect(lead.status()).toMatchObject({ role: 'leader', term: 2 });
  });

  it('§5.2 candidate steps down on AppendEntries from a leader of its term', () => {
    for (const m of [appMsg('2', '1', 2, 0, 0), heartbeat('2', '1', 2), appMsg('3', '1', 3, 0, 0), heartbeat('3', '1', 3)]) {
      const n = newNode('1', { term: 1 });
      n.campaign();
      takeMsgs(n);
      expect(n.status()).toMatchObject({ role: 'candidate', term: 2 });
      n.step(m);
      expect(n.status()).toMatchObject({ role: 'follower', term: m.term, leaderId: m.from });
      // It answers the leader as a follower would.
      const out = takeMsgs(n);
      expect(out.filter((o) => o.to === m.from).map((o) => o.type)).toEqual([m.type === 'app' ? 'appResp' : 'heartbeatResp']);
    }
  });

  it('§5.2 candidate ignores AppendEntries from a leader of an older term', () => {
    const n = newNode('1', { term: 2 });
    n.campaign();
    takeMsgs(n);
    n.step(appMsg('2', '1', 2, 0, 0));
    n.step(heartbeat('2', '1', 1));
    expect(n.status()).toMatchObject({ role: 'candidate', term: 3, leaderId: NONE });
  });

  it('§5.2 candidate that neither wins nor loses starts a new election after a timeout', () => {
    const n = newNode('1', { voters: ['1', '2', '3', '4', '5'], term: 1 });
    n.campaign();
    takeMsgs(n);
    n.step(voteResp('2', '1', 2)); // 2 of 5 votes: no majority yet
    const ticks = ticksUntilCampaign(n);
    expect(ticks).toBeGreaterThanOrEqual(T);
    expect(ticks).toBeLessThan(2 * T);
    expect(n.status()).toMatchObject({ role: 'candidate', term: 3, vote: '1' });
    const again = ofType(takeMsgs(n), 'vote');
    expect(again.map((m) => m.to).sort()).toEqual(['2', '3', '4', '5']);
    for (const m of again) expect(m.term).toBe(3);
    // Votes of the old election do not count in the new one.
    n.step(voteResp('3', '1', 3));
    expect(n.status().role).toBe('candidate');
    n.step(voteResp('2', '1', 3));
    expect(n.status().role).toBe('leader');
  });

  it('§5.2 election timeouts are randomized within [T, 2T)', () => {
    const followerTimeouts = new Set<number>();
    const candidateTimeouts = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const n = newNode('1', { term: 1, seed });
      const f = ticksUntilCampaign(n);
      expect(f).toBeGreaterThanOrEqual(T);
      expect(f).toBeLessThan(2 * T);
      followerTimeouts.add(f);
      const c = ticksUntilCampaign(n);
      expect(c).toBeGreaterThanOrEqual(T);
      expect(c).toBeLessThan(2 * T);
      candidateTimeouts.add(c);
    }
    // Every value of the range shows up: the timeout is really random, not fixed.
    expect(followerTimeouts.size).toBe(T);
    expect(candidateTimeouts.size).toBe(T);
  });

  it('§5.2 randomized timeouts mean that in most cases a single server times out first', () => {
    let conflicts = 0;
    const trials = 1000;
    for (let trial = 0; trial < trials; trial++) {
      const nodes = ['1', '2', '3'].map((id, i) => newNode(id, { term: 1, seed: trial * 3 + i + 1 }));
      const fired: string[] = [];
      for (let tick = 0; tick < 2 * T && fired.length === 0; tick++) {
        for (const n of nodes) {
          n.tick();
          if (n.status().role !== 'follower') fired.push(n.id);
        }
      }
      expect(fired.length).toBeGreaterThan(0);
      if (fired.length > 1) conflicts++;
    }
    // With T=10 and three servers, two share the earliest timeout about a fifth of the time.
    expect(conflicts / trials).toBeLessThan(0.3);
  });
});
