// Goal: the features beyond the paper's core algorithm, each checked for what
// it promises: PreVote and CheckQuorum (dissertation §9.6, §6.2), ReadIndex
// (§6.4), leadership transfer (§3.10), single-server membership changes
// (§4.1: one at a time, learners, promotion, removing the leader), batching
// and pipelining limits (checked on the messages themselves), snapshots (§7:
// compaction, InstallSnapshot, restart from snapshot + tail), and the
// persistence contract of RawNode's Ready (nothing is sent that depends on
// state not persisted in the same or an earlier Ready).
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { entryBytes } from '../../store/raft/log.js';
import { NONE, type Message, type NodeId, type RaftConfig, type RawNode } from '../../store/raft/index.js';
import { Cluster, MemoryStorage } from './harness.js';
import {
  PAPER,
  appMsg,
  appResp,
  drainReadies,
  electLeader,
  ents,
  heartbeat,
  logOf,
  newNode,
  ofType,
  pump,
  takeMsgs,
  voteMsg,
  voteResp,
} from './paper-helpers.js';

const T = 10;

/** Tick every live peer `ticks` times, delivering what `filter` lets through after each tick. */
function run(c: Cluster, ticks: number, filter: (m: Message) => boolean = () => true): void {
  for (let i = 0; i < ticks; i++) {
    c.tickAll(1);
    c.stabilize(10_000, filter);
  }
}

/** Tick and deliver until `done` holds (at most `max` ticks). */
function runUntil(c: Cluster, done: () => boolean, max = 20 * T, filter: (m: Message) => boolean = () => true): void {
  for (let i = 0; i < max && !done(); i++) {
    c.tickAll(1);
    c.stabilize(10_000, filter);
  }
  expect(done()).toBe(true);
}

const isolate =
  (...ids: NodeId[]) =>
  (m: Message): boolean =>
    ids.includes(m.from) === ids.includes(m.to);

/** A three-node cluster with `a` as leader and every entry applied everywhere. */
function led(cfg: Partial<RaftConfig>, ids: NodeId[] = ['a', 'b', 'c'], observer = {}): Cluster {
  const c = new Cluster(ids, cfg, 1, observer);
  c.node(ids[0] as NodeId).campaign();
  c.stabilize();
  expect(c.leader()).toBe(ids[0]);
  return c;
}

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

describe('batching and pipelining', () => {
  it('batching: no append carries more than maxMsgEntries entries or maxMsgBytes bytes (an oversized entry goes alone)', () => {
    const apps: Message[] = [];
    const cfg = { maxMsgEntries: 4, maxMsgBytes: 200 };
    const c = led(cfg, ['a', 'b', 'c'], { onReady: (_: unknown, rd: { messages: readonly Message[] }) => apps.push(...ofType(rd.messages, 'app')) });
    c.crash('c');
    const data = Array.from({ length: 40 }, (_, i) => (i % 9 === 4 ? 'X'.repeat(300) : `v${i}-${'y'.repeat(i % 40)}`));
    for (const d of data) c.node('a').propose(d);
    c.stabilize();
    c.restart('c');
    runUntil(c, () => c.peer('c').app.count === data.length, 10 * T);
    const withEntries = ofType(apps, 'app').filter((m) => m.entries.length > 0);
    for (const m of withEntries) {
      expect(m.entries.length).toBeLessThanOrEqual(cfg.maxMsgEntries);
      const bytes = m.entries.reduce((s, e) => s + entryBytes(e), 0);
      if (m.entries.length > 1) expect(bytes).toBeLessThanOrEqual(cfg.maxMsgBytes);
    }
    // The caps were actually exercised: some appends were batched, some cut by size.
    expect(withEntries.some((m) => m.entries.length === cfg.maxMsgEntries)).toBe(true);
    expect(withEntries.some((m) => m.entries.length === 1 && entryBytes(m.entries[0] as never) > cfg.maxMsgBytes)).toBe(true);
    expect(c.peer('c').app).toEqual(c.peer('a').app);
  });

  it('batching: a batch of proposals goes out as one append per follower', () => {
    const n = newNode('1', { term: 1 });
    pump([n, newNode('2'), newNode('3')], { initial: electLeader(n) });
    expect(n.proposeBatch(['p', 'q', 'r'])).toEqual({ ok: true, index: 4, term: 2 });
    const apps = ofType(takeMsgs(n), 'app');
    expect(apps.map((m) => [m.to, m.entries.map((e) => e.data)])).toEqual([
      ['2', ['p', 'q', 'r']],
      ['3', ['p', 'q', 'r']],
    ]);
  });

  it('pipelining: never more than maxInflightMsgs appends in flight to one follower', () => {
    const max = 3;
    const leader = newNode('1', { term: 1, cfg: { maxInflightMsgs: max, maxMsgEntries: 1 } });
    const f2 = newNode('2', { term: 1 });
    const f3 = newNode('3', { term: 1 });
    pump([leader, f2, f3], { initial: electLeader(leader) });
    expect(leader.status().progress['2']?.state).toBe('replicate');
    const outstanding: number[] = []; // last index of each append to 2 not yet acknowledged
    const held: Message[] = []; // 2's acknowledgements, delivered slowly
    let peak = 0;
    let acked = 0;
    const route = () => {
      for (let guard = 0; guard < 1000; guard++) {
        const fromLeader = takeMsgs(leader);
        const from3 = takeMsgs(f3);
        held.push(...takeMsgs(f2));
        if (fromLeader.length === 0 && from3.length === 0) return;
        for (const m of fromLeader) {
          if (m.to === '2') {
            if (m.type === 'app' && m.entries.length > 0) outstanding.push(m.prevIndex + m.entries.length);
            f2.step(m);
          } else f3.step(m);
        }
        for (const m of from3) leader.step(m);
        const inFlight = outstanding.filter((i) => i > acked).length;
        peak = Math.max(peak, inFlight);
        expect(inFlight).toBeLessThanOrEqual(max);
        expect(leader.status().progress['2']?.inflight ?? 0).toBeLessThanOrEqual(max);
      }
    };
    for (let i = 0; i < 20; i++) {
      leader.propose(`p${i}`);
      route();
      if (i % 3 === 2) {
        const ack = held.shift();
        if (ack?.type === 'appResp') acked = Math.max(acked, ack.index);
        if (ack) leader.step(ack);
        route();
      }
    }
    expect(peak).toBe(max);
    // Release the rest: 2 catches up completely.
    while (held.length > 0) {
      const ack = held.shift() as Message;
      if (ack.type === 'appResp') acked = Math.max(acked, ack.index);
      leader.step(ack);
      route();
    }
    expect(logOf(f2)).toEqual(logOf(leader));
  });

  it('flow control: proposals are refused with busy past maxUncommittedEntries', () => {
    const n = newNode('1', { term: 1, cfg: { maxUncommittedEntries: 5 } });
    electLeader(n); // the no-op is uncommitted: one of five
    for (let i = 0; i < 4; i++) expect(n.propose(`p${i}`).ok).toBe(true);
    expect(n.propose('over')).toEqual({ ok: false, code: 'busy', leaderId: '1' });
    expect(n.proposeBatch(['a', 'b'])).toMatchObject({ ok: false, code: 'busy' });
    n.step(appResp('2', '1', 2, 3)); // commits up to 3
    expect(n.proposeBatch(['a', 'b']).ok).toBe(true);
    expect(n.status().lastIndex).toBe(7);
  });

  it('pipelining: a follower being probed gets one append at a time', () => {
    const n = newNode('1', { term: 1 });
    electLeader(n); // probes 2 and 3 with the no-op
    n.propose('x');
    n.propose('y');
    expect(ofType(takeMsgs(n), 'app')).toEqual([]);
    n.step(appResp('2', '1', 2, 1)); // 2 answers: it streams from now on
    const apps = ofType(takeMsgs(n), 'app');
    expect(apps.map((m) => [m.to, m.entries.map((e) => e.data)])).toEqual([['2', ['x', 'y']]]);
    expect(n.status().progress['3']?.state).toBe('probe');
  });
});

describe('snapshots (§7)', () => {
  it('snapshot: compaction drops log entries up to the applied index, optionally keeping a tail', () => {
    const c = led({});
    for (let i = 0; i < 10; i++) c.node('a').propose(`v${i}`);
    c.stabilize();
    const st = c.node('a').status();
    const s = c.compact('a', 3);
    expect(s?.meta).toMatchObject({ index: st.appliedIndex, term: st.term, conf: { voters: ['a', 'b', 'c'], learners: [] } });
    expect(c.node('a').status()).toMatchObject({ snapshotIndex: st.appliedIndex, firstIndex: st.appliedIndex - 2, lastIndex: st.lastIndex });
    expect(c.node('a').entriesBetween(0, st.lastIndex)[0]?.index).toBe(st.appliedIndex - 2);
    c.compact('b', 0);
    expect(c.node('b').status()).toMatchObject({ snapshotIndex: st.appliedIndex, firstIndex: st.appliedIndex + 1 });
    expect(c.node('b').termAt(st.appliedIndex)).toBe(st.term);
    expect(c.node('b').termAt(st.appliedIndex - 1)).toBeUndefined();
    expect(c.peer('b').storage.entries).toEqual([]);
    // Nothing new applied: nothing to compact.
    expect(c.compact('b', 0)).toBeUndefined();
  });

  it('snapshot: a follower whose next entry was compacted away gets InstallSnapshot and catches up', () => {
    const snaps: Message[] = [];
    const c = led({}, ['a', 'b', 'c'], { onReady: (_: unknown, rd: { messages: readonly Message[] }) => snaps.push(...ofType(rd.messages, 'snap')) });
    c.crash('c');
    for (let i = 0; i < 10; i++) c.node('a').propose(`v${i}`);
    c.stabilize();
    const s = c.compact('a', 0);
    c.compact('b', 0);
    if (!s) throw new Error('no snapshot');
    c.restart('c');
    runUntil(c, () => c.peer('c').app.index === c.peer('a').app.index, 10 * T);
    expect(snaps.map((m) => [m.from, m.to, m.type === 'snap' ? m.snapshot.meta.index : 0])).toEqual([['a', 'c', s.meta.index]]);
    expect(c.peer('c').storage.snapshot?.meta.index).toBe(s.meta.index);
    expect(c.peer('c').app).toEqual(c.peer('a').app);
    expect(c.node('c').status()).toMatchObject({ snapshotIndex: s.meta.index, commitIndex: c.node('a').status().commitIndex });
    // It keeps replicating normally afterwards.
    c.node('a').propose('after');
    c.stabilize();
    expect(c.peer('c').app).toEqual(c.peer('a').app);
  });

  it('snapshot: a lost InstallSnapshot is sent again, and a failed one reported by the transport too', () => {
    for (const how of ['lost', 'reported'] as const) {
      const snaps: Message[] = [];
      const c = led({}, ['a', 'b', 'c'], { onReady: (_: unknown, rd: { messages: readonly Message[] }) => snaps.push(...ofType(rd.messages, 'snap')) });
      c.crash('c');
      for (let i = 0; i < 10; i++) c.node('a').propose(`v${i}`);
      c.stabilize();
      c.compact('a', 0);
      c.restart('c');
      let dropped = 0;
      const dropFirstSnap = (m: Message) => {
        if (m.type !== 'snap' || dropped > 0) return true;
        dropped++;
        if (how === 'reported') c.node('a').reportSnapshot('c', false);
        return false;
      };
      runUntil(c, () => c.peer('c').app.index === c.peer('a').app.index, 6 * T, dropFirstSnap);
      expect(dropped).toBe(1);
      expect(snaps.length).toBe(2);
      expect(c.peer('c').app).toEqual(c.peer('a').app);
    }
  });

  it('lost tail: a follower restarted without entries it had acknowledged is probed below the old match and repaired, with no new writes', () => {
    // Raft assumes acknowledged entries survive; a disk that lied about an fsync
    // breaks that. The store cuts such a torn tail at start, so the leader must
    // notice the follower lacks entries at or below its match. It does because
    // the transport reports the dropped connection (probe), and a probed
    // follower gets an append on its next heartbeat response, which it rejects.
    const c = led({});
    for (let i = 0; i < 6; i++) c.node('a').propose(`v${i}`);
    c.stabilize();
    const last = c.node('a').status().lastIndex;
    expect(c.node('a').status().commitIndex).toBe(last);
    c.crash('c');
    const st = c.peer('c').storage;
    st.entries = st.entries.slice(0, -3);
    const cut = st.entries[st.entries.length - 1]?.index ?? 0;
    st.hardState = { ...st.hardState, commit: Math.min(st.hardState.commit, cut) };
    c.node('a').reportUnreachable('c');
    c.restart('c');
    expect(c.node('c').status().lastIndex).toBe(cut);
    runUntil(c, () => c.node('c').status().lastIndex === last && c.peer('c').app.index === c.peer('a').app.index, 5 * T);
    expect(c.peer('c').app).toEqual(c.peer('a').app);
    // It streams normally again.
    c.node('a').propose('after');
    c.stabilize();
    expect(c.peer('c').app).toEqual(c.peer('a').app);
  });

  it('snapshot: a server restarts from its snapshot plus the log tail', () => {
    const c = led({});
    for (let i = 0; i < 5; i++) c.node('a').propose(`v${i}`);
    c.stabilize();
    const s = c.compact('b', 0);
    if (!s) throw new Error('no snapshot');
    for (let i = 5; i < 10; i++) c.node('a').propose(`v${i}`);
    c.stabilize();
    const before = c.node('b').status();
    c.crash('b');
    c.restart('b');
    // The log is the snapshot and the stored tail; the state machine is rebuilt by replay.
    expect(c.node('b').status()).toMatchObject({
      snapshotIndex: s.meta.index,
      firstIndex: s.meta.index + 1,
      lastIndex: before.lastIndex,
      commitIndex: before.commitIndex,
      term: before.term,
      conf: before.conf,
    });
    c.stabilize();
    expect(c.peer('b').applied[0]?.index).toBe(s.meta.index + 1);
    expect(c.peer('b').applied.map((e) => e.data)).toEqual(['v5', 'v6', 'v7', 'v8', 'v9']);
    expect(c.peer('b').app).toEqual(c.peer('a').app);
  });

  it('snapshot: a restart takes membership from the snapshot and the committed configuration entries after it', () => {
    const c = led({});
    c.addPeer('d');
    c.addPeer('e');
    c.node('a').proposeConfChange({ op: 'addLearner', id: 'd' });
    run(c, 2);
    c.compact('b', 0); // the snapshot's configuration has d
    c.node('a').proposeConfChange({ op: 'addLearner', id: 'e' }); // the tail's has e
    run(c, 2);
    expect(c.peer('b').storage.snapshot?.meta.conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    c.crash('b');
    c.restart('b');
    expect(c.node('b').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] });
  });
});

describe('applying committed entries', () => {
  it('committed entries are handed out in order, each once, within maxApplyBytes per Ready', () => {
    const data = 'x'.repeat(30); // 54 bytes by entryBytes: two fit in 120
    const entries = Array.from({ length: 9 }, (_, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data }));
    const n = newNode('1', { voters: ['1'], term: 1, entries, commit: 9, cfg: { maxApplyBytes: 120 } });
    const batches = drainReadies(n)
      .map((rd) => rd.committedEntries.map((e) => e.index))
      .filter((b) => b.length > 0);
    expect(batches).toEqual([[1, 2], [3, 4], [5, 6], [7, 8], [9]]);
    expect(n.status().appliedIndex).toBe(9);
    expect(n.hasReady()).toBe(false);
  });
});

describe('the persistence contract of Ready', () => {
  it('persistence: a granted vote travels in a Ready whose hardState records that vote', () => {
    const n = newNode('1', { term: 1 });
    n.step(voteMsg('2', '1', 2, 0, 0));
    const rd = n.ready();
    expect(rd.messages).toEqual([{ type: 'voteResp', from: '1', to: '2', term: 2, reject: false }]);
    expect(rd.hardState).toEqual({ term: 2, vote: '2', commit: 0 });
    n.advance(rd);
  });

  it("persistence: a candidate's vote requests travel with the hardState of its new term and self-vote", () => {
    const n = newNode('1', { term: 4 });
    n.campaign();
    const rd = n.ready();
    expect(rd.hardState).toEqual({ term: 5, vote: '1', commit: 0 });
    expect(ofType(rd.messages, 'vote')).toHaveLength(2);
    n.advance(rd);
  });

  it('persistence: an append acknowledgement travels in the Ready that carries the acknowledged entries', () => {
    const n = newNode('1', { term: 1 });
    n.step(appMsg('2', '1', 1, 0, 0, ents(1, 1), 0));
    const rd = n.ready();
    expect(rd.entries).toEqual(ents(1, 1));
    expect(rd.messages).toMatchObject([{ type: 'appResp', to: '2', index: 2, reject: false }]);
    n.advance(rd);
  });

  it('persistence: what happens between ready() and advance() waits for the next Ready', () => {
    const n = newNode('1', { term: 1 });
    n.step(heartbeat('2', '1', 1));
    const rd1 = n.ready();
    // Handled while rd1 is being persisted: its answer must not slip into rd1.
    n.step(voteMsg('3', '1', 2, 0, 0));
    n.step(appMsg('3', '1', 2, 0, 0, [{ index: 1, term: 2, type: 'normal', data: 'z' }], 0));
    expect(n.hasReady()).toBe(false);
    expect(rd1.messages.map((m) => m.type)).toEqual(['heartbeatResp']);
    n.advance(rd1);
    const rd2 = n.ready();
    expect(rd2.hardState).toMatchObject({ term: 2, vote: '3' });
    expect(rd2.entries.map((e) => e.data)).toEqual(['z']);
    expect(rd2.messages.map((m) => [m.type, 'reject' in m ? m.reject : undefined])).toEqual([
      ['voteResp', false],
      ['appResp', false],
    ]);
    n.advance(rd2);
  });

  it('persistence: in seeded runs with elections, loss, crashes and snapshots, no message depends on unpersisted state', () => {
    const counts = { votes: 0, acks: 0, appends: 0, messages: 0 };
    for (let seed = 1; seed <= 6; seed++) {
      const problems = contractRun(seed, counts);
      expect(problems, `seed ${seed}`).toEqual([]);
    }
    expect(counts.votes).toBeGreaterThan(30);
    expect(counts.acks).toBeGreaterThan(1000);
    expect(counts.appends).toBeGreaterThan(1000);
  });
});

/** Runs a seeded workload and checks every Ready against the persistence contract. */
function contractRun(seed: number, counts: { votes: number; acks: number; appends: number; messages: number }): string[] {
  const ids = ['1', '2', '3', '4', '5'];
  const problems: string[] = [];
  const note = (s: string) => {
    if (problems.length < 10) problems.push(s);
  };
  const c = new Cluster(ids, { ...PAPER, preVote: seed % 2 === 0, checkQuorum: seed % 2 === 0 }, seed, {
    onReady(peer, rd) {
      // What storage holds once this Ready is persisted; messages may depend on nothing more.
      const after = new MemoryStorage(peer.storage.state());
      after.persist(rd);
      const hs = after.hardState;
      const snapIndex = after.snapshot?.meta.index ?? 0;
      const storedTerm = (i: number): number | undefined => {
        if (i === snapIndex) return after.snapshot?.meta.term ?? 0;
        if (i < snapIndex) return -1; // compacted: covered by the snapshot
        return after.entries.find((e) => e.index === i)?.term;
      };
      const lastStored = Math.max(snapIndex, after.entries[after.entries.length - 1]?.index ?? 0);
      if (hs.commit > lastStored) note(`${peer.id} persists commit ${hs.commit} past its stored log ${lastStored}`);
      const node = peer.node as RawNode;
      for (const m of rd.messages) {
        counts.messages++;
        const future = m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject);
        if (!future && m.term > hs.term) note(`${peer.id} sends ${m.type} of term ${m.term} with persisted term ${hs.term}`);
        if (m.type === 'voteResp' && !m.reject) {
          counts.votes++;
          if (hs.term !== m.term || hs.vote !== m.to) note(`${peer.id} grants ${m.to} a vote in ${m.term}, persisted ${JSON.stringify(hs)}`);
        }
        if (m.type === 'appResp' && !m.reject && m.index > 0) {
          counts.acks++;
          const t = storedTerm(m.index);
          if (t === undefined || (t !== -1 && t !== node.termAt(m.index))) note(`${peer.id} acks ${m.index} without having stored it`);
        }
        if (m.type === 'app') {
          for (const e of m.entries) {
            counts.appends++;
            const t = storedTerm(e.index);
            if (t !== -1 && t !== e.term) note(`${peer.id} sends ${e.index}/${e.term} before storing it`);
          }
        }
      }
    },
  });
  const rnd = new SeededRandom(seed * 31 + 7);
  let n = 0;
  for (let step = 0; step < 1500; step++) {
    const r = rnd.float();
    const alive = ids.filter((id) => c.peer(id).alive);
    const dead = ids.filter((id) => !c.peer(id).alive);
    if (r < 0.4) c.tickAll(1);
    else if (r < 0.6) {
      for (const id of alive) if (c.node(id).status().role === 'leader') c.node(id).propose(`p${n++}`);
    } else if (r < 0.62 && alive.length > 3) c.crash(rnd.pick(alive));
    else if (r < 0.66 && dead.length > 0) c.restart(rnd.pick(dead));
    else if (r < 0.68) c.compact(rnd.pick(alive), rnd.int(3));
    for (const id of ids) c.processReady(id);
    const batch = c.inflight;
    c.inflight = [];
    for (const m of batch) {
      if (rnd.chance(0.1)) continue;
      if (rnd.chance(0.15)) c.inflight.push(m);
      else c.deliver(m);
    }
  }
  return problems;
}
