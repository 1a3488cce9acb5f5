// Goal: the features beyond the paper's core algorithm that concern the log,
// each checked for what it promises: batching and pipelining limits (checked
// on the messages themselves), snapshots (§7: compaction, InstallSnapshot,
// restart from snapshot + tail), applying committed entries, and the
// persistence contract of RawNode's Ready (nothing is sent that depends on
// state not persisted in the same or an earlier Ready).
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { entryBytes } from '../../store/raft/log.js';
import type { Message, RawNode } from '../../store/raft/index.js';
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
} from './paper-helpers.js';
import { T, led, run, runUntil } from './feature-helpers.js';

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
