// Goal: the features beyond the paper's core algorithm that concern leaders
// and members, each checked for what it promises: PreVote and CheckQuorum
// (dissertation §9.6, §6.2), ReadIndex (§6.4), leadership transfer (§3.10),
// single-server membership changes (§4.1: one at a time, learners,
// promotion, removing the leader). features-log.test.ts has the log side.
import { describe, expect, it } from 'vitest';
import { NONE, type Message, type NodeId } from '../../store/raft/index.js';
import {
  appResp,
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
import { T, isolate, led, run, runUntil } from './feature-helpers.js';

describe('PreVote (dissertation §9.6)', () => {
  const cfg = { preVote: true };

  it('PreVote: a pre-candidate asks about term+1 without changing its term or vote', () => {
    const n = newNode('1', { term: 2, vote: '3', entries: ents(1, 2), commit: 1, cfg });
    drainReadies(n);
    n.campaign();
    expect(n.status()).toMatchObject({ role: 'preCandidate', term: 2, vote: '3' });
    const rds = drainReadies(n);
    expect(rds.every((rd) => rd.hardState === undefined)).toBe(true); // nothing to persist
    const pre = ofType(
      rds.flatMap((rd) => rd.messages),
      'preVote',
    );
    expect(pre.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of pre) expect(m).toMatchObject({ term: 3, lastLogIndex: 2, lastLogTerm: 2 });
    // A majority of pre-votes: now it runs the real election, bumping its term.
    n.step(voteResp('2', '1', 3, false, 'preVoteResp'));
    expect(n.status()).toMatchObject({ role: 'candidate', term: 3, vote: '1' });
    const votes = ofType(takeMsgs(n), 'vote');
    expect(votes.map((m) => [m.to, m.term]).sort()).toEqual([
      ['2', 3],
      ['3', 3],
    ]);
  });

  it('PreVote: a pre-candidate refused by a majority goes back to follower in its old term', () => {
    const n = newNode('1', { term: 2, cfg });
    n.campaign();
    n.step(voteResp('2', '1', 2, true, 'preVoteResp'));
    n.step(voteResp('3', '1', 2, true, 'preVoteResp'));
    expect(n.status()).toMatchObject({ role: 'follower', term: 2 });
  });

  it('PreVote: a voter grants a pre-vote without changing its term or vote, and applies §5.4.1', () => {
    const n = newNode('1', { term: 2, vote: '3', entries: ents(1, 2), commit: 1, cfg });
    n.step(voteMsg('2', '1', 3, 2, 2, 'preVote'));
    n.step(voteMsg('2', '1', 3, 5, 1, 'preVote')); // longer log, older last term
    expect(ofType(takeMsgs(n), 'preVoteResp').map((m) => [m.term, m.reject])).toEqual([
      [3, false],
      [2, true],
    ]);
    expect(n.status()).toMatchObject({ role: 'follower', term: 2, vote: '3' });
  });

  for (const preVote of [true, false]) {
    it(`PreVote: a partitioned server that rejoins ${preVote ? 'does not disrupt' : 'disrupts (PreVote off)'} a stable leader`, () => {
      const c = led({ preVote, checkQuorum: false });
      const term = c.node('a').status().term;
      run(c, 5 * T, isolate('c'));
      if (preVote) expect(c.node('c').status()).toMatchObject({ term, role: 'preCandidate' });
      else expect(c.node('c').status().term).toBeGreaterThan(term + 1);
      run(c, 3 * T);
      if (preVote) {
        expect(c.leader()).toBe('a');
        expect(c.node('a').status().term).toBe(term);
      } else {
        // The rejoining server's higher term deposed the leader.
        expect(c.node('a').status().term).toBeGreaterThan(term);
      }
      expect(c.node('c').status().leaderId).toBe(c.leader());
    });
  }
});

describe('CheckQuorum and the leader lease (§6.2)', () => {
  it('CheckQuorum: a leader that cannot hear from a majority steps down within two election timeouts', () => {
    const c = led({ preVote: false, checkQuorum: true });
    let ticks = 0;
    while (c.node('a').status().role === 'leader' && ticks < 5 * T) {
      run(c, 1, isolate('a'));
      ticks++;
    }
    expect(c.node('a').status().role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(2 * T);
    // Without CheckQuorum the cut-off leader stays leader however long it waits.
    const d = led({ preVote: false, checkQuorum: false });
    run(d, 5 * T, isolate('a'));
    expect(d.node('a').status().role).toBe('leader');
  });

  it('CheckQuorum: a leader in touch with a majority stays leader', () => {
    const c = led({ checkQuorum: true });
    const term = c.node('a').status().term;
    run(c, 10 * T, isolate('c'));
    expect(c.leader()).toBe('a');
    expect(c.node('a').status().term).toBe(term);
  });

  it('CheckQuorum: a follower that heard from its leader within the timeout ignores vote requests unless forced', () => {
    const n = newNode('1', { term: 1, cfg: { checkQuorum: true } });
    n.step(heartbeat('2', '1', 1));
    takeMsgs(n);
    n.step(voteMsg('3', '1', 2, 9, 1));
    expect(takeMsgs(n)).toEqual([]);
    expect(n.status()).toMatchObject({ term: 1, leaderId: '2', vote: NONE });
    // A leadership transfer forces the vote through the lease.
    n.step(voteMsg('3', '1', 2, 9, 1, 'vote', true));
    expect(ofType(takeMsgs(n), 'voteResp')).toMatchObject([{ to: '3', term: 2, reject: false }]);
    expect(n.status()).toMatchObject({ term: 2, vote: '3' });
    // So does a leader within its lease.
    const l = newNode('1', { term: 1, cfg: { checkQuorum: true } });
    electLeader(l);
    l.step(voteMsg('3', '1', 5, 9, 1));
    expect(l.status()).toMatchObject({ role: 'leader', term: 2 });
  });
});

describe('ReadIndex (§6.4)', () => {
  it('ReadIndex: the leader answers once a heartbeat round confirms it is still leader', () => {
    const c = led({});
    c.node('a').propose('x');
    c.stabilize();
    const commit = c.node('a').status().commitIndex;
    expect(c.node('a').readIndex('r1')).toBe('ok');
    expect(c.peer('a').readStates).toEqual([]);
    // The confirming heartbeats go out with the next Ready; answers come back.
    c.processReady('a');
    const hbs = ofType(c.inflight, 'heartbeat');
    expect(hbs.map((m) => m.to).sort()).toEqual(['b', 'c']);
    c.stabilize();
    expect(c.peer('a').readStates).toEqual([{ requestId: 'r1', index: commit }]);
  });

  it('ReadIndex: one acknowledging follower is enough in a cluster of three', () => {
    const c = led({});
    c.node('a').readIndex('r');
    c.stabilize(10_000, (m) => m.to !== 'c' && m.from !== 'c');
    expect(c.peer('a').readStates.map((r) => r.requestId)).toEqual(['r']);
  });

  it('ReadIndex: a leader cut off from the majority never answers, even as a new leader commits', () => {
    const c = led({ checkQuorum: false, preVote: false });
    const cut = isolate('a');
    c.node('a').readIndex('stale');
    c.stabilize(10_000, cut);
    runUntil(c, () => c.node('b').status().role === 'leader' || c.node('c').status().role === 'leader', 20 * T, cut);
    const newLeader = c.node('b').status().role === 'leader' ? 'b' : 'c';
    c.node(newLeader).propose('w');
    run(c, 2 * T, cut);
    expect(c.node('a').status().role).toBe('leader'); // it still believes it leads
    expect(c.peer('a').readStates).toEqual([]);
    // After healing it learns the newer term; the read is dropped, never answered with a stale index.
    run(c, 2 * T);
    expect(c.node('a').status().role).toBe('follower');
    expect(c.peer('a').readStates).toEqual([]);
  });

  it('ReadIndex: a new leader defers reads until it has committed an entry of its term', () => {
    const n = newNode('1', { term: 1, entries: ents(1, 1), commit: 1 });
    electLeader(n); // no-op at 3, not committed
    expect(n.readIndex('r')).toBe('ok');
    const before = drainReadies(n);
    expect(before.flatMap((rd) => rd.readStates)).toEqual([]);
    expect(ofType(before.flatMap((rd) => rd.messages), 'heartbeat')).toEqual([]);
    n.step(appResp('2', '1', 2, 3)); // the no-op commits
    const hb = ofType(takeMsgs(n), 'heartbeat');
    expect(hb.length).toBe(2);
    const seq = hb[0]?.readSeq ?? 0;
    expect(seq).toBeGreaterThan(0);
    expect(drainReadies(n).flatMap((rd) => rd.readStates)).toEqual([]);
    n.step({ type: 'heartbeatResp', from: '3', to: '1', term: 2, readSeq: seq });
    expect(drainReadies(n).flatMap((rd) => rd.readStates)).toEqual([{ requestId: 'r', index: 3 }]);
  });

  it("ReadIndex: a follower's read is forwarded to the leader and answered with the leader's commit index", () => {
    const c = led({});
    c.node('a').propose('x');
    c.stabilize();
    expect(c.node('b').readIndex('rb')).toBe('ok');
    c.stabilize();
    expect(c.peer('b').readStates).toEqual([{ requestId: 'rb', index: c.node('a').status().commitIndex }]);
    expect(newNode('1').readIndex('x')).toBe('no_leader');
  });

  it("ReadIndex: a follower's read that a saturated leader refuses comes back rejected at once, not never", () => {
    const c = led({ maxPendingReads: 1 });
    c.node('a').propose('x');
    c.stabilize();
    // The leader's only slot is taken by its own read; the heartbeat confirming it is held back.
    expect(c.node('a').readIndex('ra')).toBe('ok');
    expect(c.node('b').readIndex('rb')).toBe('ok');
    c.stabilize(10_000, (m) => m.type === 'readIndex' || m.type === 'readIndexResp');
    expect(c.peer('b').readStates).toEqual([{ requestId: 'rb', index: 0, rejected: true }]);
  });
});

describe('leadership transfer (§3.10)', () => {
  it('transfer: an up-to-date follower gets TimeoutNow and wins at once, through the leader lease', () => {
    const seen: Message[] = [];
    const c = led({ checkQuorum: true, preVote: true }, ['a', 'b', 'c'], { onReady: (_: unknown, rd: { messages: readonly Message[] }) => seen.push(...rd.messages) });
    const term = c.node('a').status().term;
    expect(c.node('a').transferLeadership('b')).toBe('ok');
    c.stabilize();
    expect(seen.filter((m) => m.type === 'timeoutNow').map((m) => [m.from, m.to])).toEqual([['a', 'b']]);
    expect(c.leader()).toBe('b');
    expect(c.node('b').status().term).toBe(term + 1);
    expect(c.node('a').status()).toMatchObject({ role: 'follower', leaderId: 'b' });
  });

  it('transfer: to a lagging follower, the leader first brings it up to date', () => {
    const c = led({});
    for (let i = 0; i < 5; i++) c.node('a').propose(`v${i}`);
    c.stabilize(10_000, (m) => m.to !== 'b');
    expect(c.node('b').status().lastIndex).toBeLessThan(c.node('a').status().lastIndex);
    c.node('a').transferLeadership('b');
    runUntil(c, () => c.leader() === 'b', 5 * T);
    expect(c.peer('b').app.count).toBe(5);
  });

  it('transfer: proposals are refused while a transfer is pending; it is abandoned after an election timeout', () => {
    const n = newNode('1', { term: 1 });
    electLeader(n); // followers have not acknowledged anything: 2 is behind
    expect(n.transferLeadership('2')).toBe('ok');
    expect(n.status().leadTransferee).toBe('2');
    expect(n.propose('x')).toEqual({ ok: false, code: 'transfer_in_progress', leaderId: '1' });
    for (let i = 0; i < T; i++) n.tick();
    expect(n.status().leadTransferee).toBe(NONE);
    expect(n.propose('x').ok).toBe(true);
  });

  it('transfer: only to a voter, and only by the leader', () => {
    const n = newNode('1', { term: 1, voters: ['1', '2'], learners: ['3'] });
    expect(n.transferLeadership('2')).toBe('not_leader');
    electLeader(n);
    expect(n.transferLeadership('3')).toBe('invalid_target');
    expect(n.transferLeadership('9')).toBe('invalid_target');
  });
});

describe('membership changes (§4.1)', () => {
  it('membership: one change may be pending at a time', () => {
    const c = led({});
    c.addPeer('d');
    c.addPeer('e');
    expect(c.node('a').proposeConfChange({ op: 'addLearner', id: 'd' }).ok).toBe(true);
    expect(c.node('a').proposeConfChange({ op: 'addLearner', id: 'e' })).toMatchObject({ ok: false, code: 'conf_change_pending' });
    c.stabilize();
    expect(c.node('a').proposeConfChange({ op: 'addLearner', id: 'e' }).ok).toBe(true);
    run(c, 2); // the leader contacts a new member at its next heartbeat
    expect(c.node('a').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] });
    expect(c.node('e').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] });
  });

  it('membership: a new leader accepts no change before its first entry of the term is applied', () => {
    const n = newNode('1', { term: 1 });
    electLeader(n);
    expect(n.proposeConfChange({ op: 'addLearner', id: '4' })).toMatchObject({ ok: false, code: 'conf_change_pending' });
    n.step(appResp('2', '1', 2, 1));
    drainReadies(n); // applies the no-op
    expect(n.proposeConfChange({ op: 'addLearner', id: '4' }).ok).toBe(true);
  });

  it('membership: invalid changes are refused', () => {
    const c = led({});
    expect(c.node('a').proposeConfChange({ op: 'addVoter', id: 'b' })).toMatchObject({ ok: false, code: 'conf_change_invalid' });
    expect(c.node('a').proposeConfChange({ op: 'remove', id: 'zz' })).toMatchObject({ ok: false, code: 'conf_change_invalid' });
    const solo = led({}, ['s']);
    expect(solo.node('s').proposeConfChange({ op: 'remove', id: 's' })).toMatchObject({ ok: false, code: 'conf_change_invalid' });
    expect(c.node('b').proposeConfChange({ op: 'addLearner', id: 'x' })).toMatchObject({ ok: false, code: 'not_leader', leaderId: 'a' });
  });

  it("membership: learners replicate the log but neither vote, campaign, nor count toward the quorum; promotion makes them count", () => {
    const c = led({}, ['a', 'b']);
    c.addPeer('c');
    expect(c.node('a').proposeConfChange({ op: 'addLearner', id: 'c' }).ok).toBe(true);
    run(c, 2);
    c.node('a').propose('x');
    c.stabilize();
    expect(c.node('c').status().conf).toEqual({ voters: ['a', 'b'], learners: ['c'] });
    expect(c.peer('c').app).toEqual(c.peer('a').app);
    // A learner never campaigns, however long it hears nothing.
    const term = c.node('c').status().term;
    run(c, 5 * T, isolate('c'));
    expect(c.node('c').status()).toMatchObject({ role: 'follower', term });
    c.node('c').campaign();
    expect(c.node('c').status().role).toBe('follower');
    // Its acknowledgement does not make a majority.
    c.crash('b');
    const res = c.node('a').propose('y');
    if (!res.ok) throw new Error('propose');
    c.stabilize();
    expect(c.node('c').status().lastIndex).toBe(res.index);
    expect(c.node('a').status().commitIndex).toBeLessThan(res.index);
    c.restart('b');
    run(c, 2);
    expect(c.node('a').status().commitIndex).toBe(res.index);
    // Promoted, it counts: a and c commit without b.
    expect(c.node('a').proposeConfChange({ op: 'addVoter', id: 'c' }).ok).toBe(true);
    c.stabilize();
    expect(c.node('a').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: [] });
    c.crash('b');
    const z = c.node('a').propose('z');
    if (!z.ok) throw new Error('propose');
    c.stabilize();
    expect(c.node('a').status().commitIndex).toBe(z.index);
    expect(c.peer('c').app).toEqual(c.peer('a').app);
  });

  it('membership: a candidate asks only voters for votes', () => {
    const n = newNode('1', { voters: ['1', '2', '3'], learners: ['4'] });
    n.campaign();
    expect(
      ofType(takeMsgs(n), 'vote')
        .map((m) => m.to)
        .sort(),
    ).toEqual(['2', '3']);
    // And a learner's vote does not count toward winning.
    n.step(voteResp('4', '1', 1));
    expect(n.status().role).toBe('candidate');
  });

  it('membership: removing the leader: it steps down once the change applies, and the rest elect a new leader', () => {
    const c = led({});
    expect(c.node('a').proposeConfChange({ op: 'remove', id: 'a' }).ok).toBe(true);
    c.stabilize();
    expect(c.node('a').status().role).toBe('follower');
    for (const id of ['a', 'b', 'c']) expect(c.node(id).status().conf).toEqual({ voters: ['b', 'c'], learners: [] });
    const aTerm = c.node('a').status().term;
    runUntil(c, () => c.leader() === 'b' || c.leader() === 'c', 10 * T);
    const leader = c.leader() as NodeId;
    // The removed server no longer campaigns.
    run(c, 5 * T);
    expect(c.node('a').status()).toMatchObject({ role: 'follower', term: aTerm });
    c.node(leader).propose('after');
    c.stabilize();
    expect(c.peer('b').app).toEqual(c.peer('c').app);
    expect(c.peer('b').app.count).toBe(1);
    expect(c.peer('a').app.count).toBe(0);
  });

  it('membership: a new server learns the configuration from the log and then counts', () => {
    const c = led({});
    c.addPeer('d');
    expect(c.node('a').proposeConfChange({ op: 'addVoter', id: 'd' }).ok).toBe(true);
    run(c, 2);
    expect(c.node('d').status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    // Four voters: a majority is three. With b and c down, a and d cannot commit.
    c.crash('b');
    c.crash('c');
    const res = c.node('a').propose('x');
    if (!res.ok) throw new Error('propose');
    c.stabilize();
    expect(c.node('a').status().commitIndex).toBeLessThan(res.index);
    c.restart('c');
    c.stabilize();
    run(c, 2);
    expect(c.node('a').status().commitIndex).toBeGreaterThanOrEqual(res.index);
  });
});
