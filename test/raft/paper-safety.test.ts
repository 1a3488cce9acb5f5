// Goal: the safety rules of §5.4-§5.5 of the Raft paper (Ongaro & Ousterhout
// 2014) as unit tests, in the manner of etcd-io/raft's raft_paper_test.go: the
// election restriction (§5.4.1), the current-term commit rule (§5.4.2), and
// idempotent RPCs (§5.5); then Figure 3's guarantees (Election Safety, Log
// Matching, Leader Completeness, State Machine Safety) and Figure 2's
// "commitIndex never decreases; entries are applied in order, once", checked
// on every step of seeded runs with message loss, reordering, duplication,
// partitions, crashes and restarts.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import type { Entry, Message, NodeId, RaftConfig } from '../../store/raft/index.js';
import { Cluster } from './harness.js';
import { PAPER, appMsg, appResp, drainReadies, electLeader, ents, logOf, newNode, ofType, takeMsgs, voteMsg } from './paper-helpers.js';

describe('§5.4.1 election restriction', () => {
  const cases: { voter: number[]; lastIndex: number; lastTerm: number; grant: boolean }[] = [
    // Voter's log ends with term 1 at index 2.
    { voter: [1, 1], lastIndex: 2, lastTerm: 1, grant: true }, // same last term, same length
    { voter: [1, 1], lastIndex: 3, lastTerm: 1, grant: true }, // same last term, longer
    { voter: [1, 1], lastIndex: 1, lastTerm: 1, grant: false }, // same last term, shorter
    { voter: [1, 1], lastIndex: 1, lastTerm: 2, grant: true }, // later last term wins even if shorter
    { voter: [1, 1], lastIndex: 3, lastTerm: 2, grant: true },
    // Voter's log ends with term 2 at index 2.
    { voter: [1, 2], lastIndex: 2, lastTerm: 1, grant: false }, // earlier last term, same length
    { voter: [1, 2], lastIndex: 3, lastTerm: 1, grant: false }, // earlier last term loses even if longer
    { voter: [1, 2], lastIndex: 1, lastTerm: 2, grant: false },
    { voter: [1, 2], lastIndex: 2, lastTerm: 2, grant: true },
    { voter: [1, 2], lastIndex: 1, lastTerm: 3, grant: true },
    // Empty logs.
    { voter: [], lastIndex: 0, lastTerm: 0, grant: true },
    { voter: [1], lastIndex: 0, lastTerm: 0, grant: false },
  ];
  for (const tc of cases) {
    it(`§5.4.1 voter denies a candidate whose log is less up-to-date (last term, then length): voter [${tc.voter.join(' ')}], candidate last ${tc.lastIndex}/${tc.lastTerm} -> ${tc.grant ? 'grant' : 'deny'}`, () => {
      const n = newNode('1', { term: 3, entries: ents(...tc.voter), commit: 0 });
      n.step(voteMsg('2', '1', 4, tc.lastIndex, tc.lastTerm));
      const resp = ofType(takeMsgs(n), 'voteResp');
      expect(resp).toEqual([{ type: 'voteResp', from: '1', to: '2', term: 4, reject: !tc.grant }]);
      // Denied or not, the higher term is adopted; the vote is recorded only when granted.
      expect(n.status()).toMatchObject({ term: 4, vote: tc.grant ? '2' : '' });
    });
  }

  it('§5.4.1 a candidate missing committed entries cannot win an election', () => {
    const c = new Cluster(['a', 'b', 'c'], PAPER);
    c.node('a').campaign();
    c.stabilize();
    c.crash('c');
    for (let i = 0; i < 3; i++) c.node('a').propose(`v${i}`);
    c.stabilize();
    expect(c.peer('b').app.count).toBe(3); // committed on a and b
    c.crash('a');
    c.restart('c');
    // c's log lacks the committed entries: b refuses it, and c cannot win without b.
    c.node('c').campaign();
    c.stabilize();
    expect(c.node('c').status().role).toBe('candidate');
    expect(c.node('b').status().vote).not.toBe('c');
    // Time passes: only b can win, and c votes for it.
    for (let i = 0; i < 10 * (PAPER.electionTicks as number) && c.leader() === undefined; i++) {
      c.tickAll(1);
      c.stabilize();
    }
    expect(c.leader()).toBe('b');
    c.node('b').propose('after');
    c.stabilize();
    expect(c.peer('c').app).toEqual(c.peer('b').app);
    expect(c.peer('c').app.count).toBe(4);
  });
});

describe('§5.4.2 committing entries from previous terms', () => {
  it('§5.4.2 a leader never commits entries of older terms by counting replicas', () => {
    // 1 holds entries of terms 1 and 2 that were never committed; it wins term 4.
    const n = newNode('1', { voters: ['1', '2', '3', '4', '5'], term: 3, entries: ents(1, 2), commit: 0 });
    electLeader(n); // term 4, no-op at index 3
    expect(n.status()).toMatchObject({ role: 'leader', term: 4, lastIndex: 3 });
    // A majority (1, 2, 3) now stores index 2, of term 2: that is not enough (Figure 8).
    n.step(appResp('2', '1', 4, 2));
    n.step(appResp('3', '1', 4, 2));
    expect(n.status().commitIndex).toBe(0);
    expect(drainReadies(n).flatMap((rd) => rd.committedEntries)).toEqual([]);
    // Once the entry of its own term is on a majority, it and everything before it commit.
    n.step(appResp('2', '1', 4, 3));
    expect(n.status().commitIndex).toBe(0);
    n.step(appResp('3', '1', 4, 3));
    expect(n.status().commitIndex).toBe(3);
    expect(
      drainReadies(n)
        .flatMap((rd) => rd.committedEntries)
        .map((e) => [e.index, e.term]),
    ).toEqual([
      [1, 1],
      [2, 2],
      [3, 4],
    ]);
  });

  it('§5.4.2 a follower commits older-term entries only as the leader of the current term tells it', () => {
    // The follower holds 1/1, 2/2; leader of term 4 says commit=1 with an empty append at 2/2.
    const n = newNode('1', { term: 4, entries: ents(1, 2), commit: 0 });
    n.step(appMsg('2', '1', 4, 2, 2, [], 1));
    expect(n.status().commitIndex).toBe(1);
    n.step(appMsg('2', '1', 4, 2, 2, [{ index: 3, term: 4, type: 'normal', data: '' }], 3));
    expect(n.status().commitIndex).toBe(3);
  });
});

describe('§5.5 follower and candidate crashes', () => {
  it('§5.5 AppendEntries is idempotent: a repeated request changes nothing and is acknowledged again', () => {
    const n = newNode('1', { term: 2, entries: ents(1), commit: 1 });
    const m = appMsg('2', '1', 2, 1, 1, [{ index: 2, term: 2, type: 'normal', data: 'x' }, { index: 3, term: 2, type: 'normal', data: 'y' }], 2);
    n.step(m);
    const first = drainReadies(n);
    n.step(m);
    const second = drainReadies(n);
    expect(logOf(n).map((e) => e.data)).toEqual(['e1', 'x', 'y']);
    expect(second.flatMap((rd) => rd.entries)).toEqual([]); // nothing new to persist
    const acks = [...first, ...second].flatMap((rd) => ofType(rd.messages, 'appResp'));
    // Both are accepted; the repeat may be answered with the commit index (everything up
    // to it is known to match), never with more than the follower holds.
    expect(acks.map((a) => a.reject)).toEqual([false, false]);
    expect(acks[0]?.index).toBe(3);
    expect(acks[1]?.index).toBeGreaterThanOrEqual(2);
    expect(acks[1]?.index).toBeLessThanOrEqual(3);
    expect(n.status().commitIndex).toBe(2);
  });

  it('§5.5 RequestVote is idempotent: a repeated request gets the same answer', () => {
    const n = newNode('1', { term: 1 });
    n.step(voteMsg('2', '1', 2, 0, 0));
    n.step(voteMsg('2', '1', 2, 0, 0));
    expect(ofType(takeMsgs(n), 'voteResp').map((m) => m.reject)).toEqual([false, false]);
    expect(n.status()).toMatchObject({ term: 2, vote: '2' });
  });
});

interface ChaosOptions {
  /** Add learners, promote them, remove voters (the leader too), transfer leadership. */
  membership?: boolean;
  /** Compact logs at random, so lagging peers need InstallSnapshot. */
  compaction?: boolean;
}

/**
 * Seeded chaos over a five-node cluster, checking Figure 3's properties and
 * Figure 2's commit/apply rules after every step. Returns what was violated.
 */
function chaos(seed: number, cfg: Partial<RaftConfig>, steps: number, o: ChaosOptions = {}): { violations: string[]; commits: number; leaders: number } {
  const spares = ['6', '7'];
  const rnd = new SeededRandom(seed);
  const violations: string[] = [];
  const fail = (s: string) => {
    if (violations.length < 20) violations.push(s);
  };
  /** term -> the one leader of that term (Election Safety). */
  const leaders = new Map<number, NodeId>();
  /** index -> the entry committed there, from any apply anywhere (State Machine Safety). */
  const committed = new Map<number, Entry>();
  /** index -> the state machine's digest after applying it, from any peer. */
  const digests = new Map<number, string>();
  const persistedCommit = new Map<NodeId, number>();
  /** Per incarnation: commit index last seen in memory, and index last applied. */
  const memCommit = new Map<NodeId, number>();
  const lastApplied = new Map<NodeId, number>();

  const c = new Cluster(['1', '2', '3', '4', '5'], cfg, seed, {
    onReady(peer, rd) {
      if (rd.hardState) {
        const prev = persistedCommit.get(peer.id) ?? 0;
        if (rd.hardState.commit < prev) fail(`${peer.id} persisted commit ${rd.hardState.commit} after ${prev}`);
        persistedCommit.set(peer.id, rd.hardState.commit);
      }
    },
    onSnapshotInstalled(peer, snap) {
      const prev = lastApplied.get(peer.id) ?? 0;
      if (snap.meta.index <= prev) fail(`${peer.id} installed snapshot ${snap.meta.index} after applying ${prev}`);
      lastApplied.set(peer.id, snap.meta.index);
      const d = digests.get(snap.meta.index);
      if (d !== undefined && d !== peer.app.digest) fail(`${peer.id} installed a snapshot at ${snap.meta.index} with a different state`);
    },
    onApply(peer, e, app) {
      const expected = (lastApplied.get(peer.id) ?? 0) + 1;
      if (e.index !== expected) fail(`${peer.id} applied ${e.index}, expected ${expected}`);
      lastApplied.set(peer.id, e.index);
      const seen = committed.get(e.index);
      if (seen === undefined) committed.set(e.index, e);
      else if (seen.term !== e.term || seen.data !== e.data || seen.type !== e.type) {
        fail(`${peer.id} applied ${e.index}/${e.term} ${JSON.stringify(e.data)}, another peer ${seen.index}/${seen.term} ${JSON.stringify(seen.data)}`);
      }
      const d = digests.get(e.index);
      if (d === undefined) digests.set(e.index, app.digest);
      else if (d !== app.digest) fail(`${peer.id} state after ${e.index} differs from another peer's`);
    },
  });
  const ids = (): NodeId[] => [...c.peers.keys()];
  const restart = (id: NodeId) => {
    c.restart(id);
    memCommit.delete(id); // a restart starts from the persisted commit index
    lastApplied.set(id, c.peer(id).storage.snapshot?.meta.index ?? 0); // and replays from the snapshot
  };

  const check = () => {
    for (const id of ids()) {
      const node = c.peer(id).node;
      if (!node) continue;
      const st = node.status();
      if (st.commitIndex < (memCommit.get(id) ?? 0)) fail(`${id} commit went from ${memCommit.get(id)} to ${st.commitIndex}`);
      memCommit.set(id, st.commitIndex);
      if (st.role !== 'leader') continue;
      const other = leaders.get(st.term);
      if (other === undefined) {
        leaders.set(st.term, id);
        // Leader Completeness: a new leader holds every entry committed so far.
        for (const [i, e] of committed) {
          if (i > st.snapshotIndex && node.termAt(i) !== e.term) fail(`leader ${id} of term ${st.term} lacks committed ${i}/${e.term}`);
        }
      } else if (other !== id) fail(`two leaders in term ${st.term}: ${other} and ${id}`);
    }
  };

  const logMatching = () => {
    const alive = ids()
      .map((id) => c.peer(id).node)
      .filter((n) => n !== undefined);
    for (let a = 0; a < alive.length; a++) {
      for (let b = a + 1; b < alive.length; b++) {
        const x = alive[a];
        const y = alive[b];
        if (!x || !y) continue;
        const lo = Math.max(x.status().firstIndex, y.status().firstIndex) - 1;
        const last = Math.min(x.status().lastIndex, y.status().lastIndex);
        let match = 0;
        for (let i = last; i > lo; i--) {
          if (x.termAt(i) !== undefined && x.termAt(i) === y.termAt(i)) {
            match = i;
            break;
          }
        }
        if (match > 0 && JSON.stringify(x.entriesBetween(lo, match)) !== JSON.stringify(y.entriesBetween(lo, match))) {
          fail(`log matching: ${x.id} and ${y.id} agree on ${match}/${x.termAt(match)} but differ before it`);
        }
      }
    }
  };

  const reconfigure = () => {
    const l = c.leader();
    if (l === undefined) return;
    const n = c.node(l);
    const conf = n.status().conf;
    const k = rnd.int(4);
    if (k === 0) {
      const spare = spares.find((s) => !conf.voters.includes(s) && !conf.learners.includes(s));
      if (spare === undefined) return;
      if (!c.peers.has(spare)) c.addPeer(spare);
      n.proposeConfChange({ op: 'addLearner', id: spare });
    } else if (k === 1 && conf.learners.length > 0) n.proposeConfChange({ op: 'addVoter', id: rnd.pick(conf.learners) });
    else if (k === 2 && conf.voters.length > 3) n.proposeConfChange({ op: 'remove', id: rnd.pick(conf.voters) });
    else if (k === 3) n.transferLeadership(rnd.pick(conf.voters));
  };

  let isolated = new Set<NodeId>();
  let proposals = 0;
  for (let step = 0; step < steps && violations.length === 0; step++) {
    const r = rnd.float();
    const alive = ids().filter((id) => c.peer(id).alive);
    const dead = ids().filter((id) => !c.peer(id).alive);
    if (r < 0.35) c.tickAll(1);
    else if (r < 0.55) {
      for (const id of alive) if (c.node(id).status().role === 'leader') c.node(id).propose(`s${seed}p${proposals++}`);
    } else if (r < 0.57 && alive.length > 3) c.crash(rnd.pick(alive));
    else if (r < 0.6 && dead.length > 0) restart(rnd.pick(dead));
    else if (r < 0.62) isolated = rnd.chance(0.5) ? new Set() : new Set([rnd.pick(ids()), ...(rnd.chance(0.3) ? [rnd.pick(ids())] : [])]);
    else if (r < 0.64 && o.membership) reconfigure();
    else if (r < 0.67 && o.compaction) c.compact(rnd.pick(alive), rnd.int(3));

    for (const id of ids()) c.processReady(id);
    const batch = c.inflight;
    c.inflight = [];
    const later: Message[] = [];
    for (let i = batch.length - 1; i > 0; i--) {
      const j = rnd.int(i + 1);
      [batch[i], batch[j]] = [batch[j] as Message, batch[i] as Message];
    }
    for (const m of batch) {
      if (isolated.has(m.from) !== isolated.has(m.to)) continue; // partitioned
      if (rnd.chance(0.05)) continue; // lost
      if (rnd.chance(0.2)) {
        later.push(m); // delayed, hence reordered
        continue;
      }
      c.deliver(m);
      if (rnd.chance(0.02)) later.push(m); // duplicated
    }
    c.inflight.push(...later);
    check();
    if (step % 100 === 0) logMatching();
  }
  if (violations.length > 0) return { violations, commits: committed.size, leaders: leaders.size };

  // Heal everything: the members must converge to one state (servers no longer
  // members are shut down, as an operator would).
  let members: NodeId[] = [];
  let converged = false;
  // With no leader, the membership is the newest one a live server has
  // committed: a server left behind still holds an old one, and shutting
  // down the members it does not know would leave no quorum.
  const leaderOrNewest = () => {
    const l = c.leader();
    if (l !== undefined) return c.node(l);
    const alive = ids().filter((id) => c.peer(id).alive);
    const newest = alive.reduce((a, b) => (c.node(b).status().commitIndex > c.node(a).status().commitIndex ? b : a));
    return c.node(newest);
  };
  for (let i = 0; i < 100 * (c.cfg.electionTicks ?? 10) && !converged; i++) {
    const conf = leaderOrNewest().status().conf;
    members = [...conf.voters, ...conf.learners];
    for (const id of ids()) {
      if (!members.includes(id) && c.peer(id).alive) c.crash(id);
      if (members.includes(id) && !c.peer(id).alive) restart(id);
    }
    c.tickAll(1);
    c.stabilize();
    check();
    const lead = c.leader();
    if (lead === undefined) continue;
    const ls = c.node(lead).status();
    converged = ls.commitIndex === ls.lastIndex && members.every((id) => c.peer(id).app.index === ls.lastIndex);
  }
  if (!converged) fail(`members ${members.join(',')} did not converge`);
  logMatching();
  const first = c.peer(members[0] as NodeId).app;
  for (const id of members) if (JSON.stringify(c.peer(id).app) !== JSON.stringify(first)) fail(`${id} ended at ${JSON.stringify(c.peer(id).app)}, ${members[0]} at ${JSON.stringify(first)}`);
  return { violations, commits: committed.size, leaders: leaders.size };
}

describe('Figure 3 guarantees under loss, reordering, duplication, partitions and crashes', () => {
  const configs: [string, Partial<RaftConfig>, ChaosOptions][] = [
    ['paper algorithm', PAPER, {}],
    ['PreVote and CheckQuorum', { ...PAPER, preVote: true, checkQuorum: true }, {}],
    ['small appends, narrow pipeline', { ...PAPER, preVote: true, maxMsgEntries: 2, maxInflightMsgs: 2 }, {}],
    ['with snapshots', { ...PAPER, preVote: true, checkQuorum: true }, { compaction: true }],
    ['with membership changes and transfers', { ...PAPER, preVote: true, checkQuorum: true }, { membership: true }],
    ['with membership changes, transfers and snapshots, paper algorithm', PAPER, { membership: true, compaction: true }],
  ];
  for (const [name, cfg, opts] of configs) {
    it(`Figure 2: commitIndex never decreases; entries are applied in order, once; Figure 3 holds (${name})`, () => {
      let commits = 0;
      let leaders = 0;
      for (let seed = 1; seed <= 8; seed++) {
        const res = chaos(seed, cfg, 2500, opts);
        expect(res.violations, `seed ${seed}`).toEqual([]);
        commits += res.commits;
        leaders += res.leaders;
      }
      // The runs did real work: many elections, many commits.
      expect(leaders).toBeGreaterThan(50);
      expect(commits).toBeGreaterThan(1500);
    });
  }
});
