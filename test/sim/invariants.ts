/**
 * The safety properties of Raft (Figure 3 of the paper, plus a few the
 * implementation adds), checked against the whole simulated run. Records are
 * global and kept for the run's lifetime: a leader seen in term 7 at step 10
 * conflicts with another leader of term 7 at step 900, even if the first has
 * long since crashed.
 *
 *   election safety       at most one leader per term, ever
 *   leader append-only    a leader never overwrites or deletes entries of its
 *                         own log while it leads in that term
 *   log matching          two live logs with an entry of the same index and
 *                         term are identical up to it
 *   leader completeness   an entry committed in term T is in the log of every
 *                         leader of a term after T
 *   state machine safety  no two peers apply different entries (or reach a
 *                         different digest) at the same index; an installed
 *                         snapshot matches the digest recorded at its index
 *   commit monotonic      a live node's commit index never decreases
 *   durable votes         a node's persisted term never decreases, and it
 *                         never persists two different votes in one term
 *   persist before send   a granted vote, an append acknowledgement and the
 *                         entries in an append are on the sender's storage
 *                         before the message leaves (the Ready contract)
 *   acknowledged writes   a proposal committed at its leader is never lost
 *   linearizable reads    a ReadIndex answer is >= the commit index of every
 *                         entry committed before the read was issued
 *
 * A violation throws SafetyViolation; the simulator stops the run there.
 */
import type { Entry, Message, NodeId, RaftStatus, Snapshot } from '../../store/raft/index.js';
import type { AppState, Peer } from '../raft/harness.js';

export class SafetyViolation extends Error {
  readonly code = 'safety_violation';
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

interface AppliedRecord {
  readonly entry: Entry;
  readonly digest: string;
  readonly by: NodeId;
}

interface LeaderLog {
  readonly term: number;
  readonly first: number;
  readonly entries: readonly Entry[];
}

interface LiveView {
  readonly peer: Peer;
  readonly status: RaftStatus;
  /** Entries still in memory: firstIndex .. lastIndex. */
  readonly entries: readonly Entry[];
}

/** What an outgoing message promises is on the sender's disk. */
export type SendPromise =
  | { readonly kind: 'vote'; readonly term: number; readonly to: NodeId }
  | { readonly kind: 'entry'; readonly index: number; readonly term: number; readonly what: string };

interface PendingProposal {
  readonly data: string;
  readonly index: number;
  readonly term: number;
}

export function sameEntry(a: Entry, b: Entry): boolean {
  return a === b || (a.index === b.index && a.term === b.term && a.type === b.type && a.data === b.data);
}

function describe(e: Entry | undefined): string {
  return e === undefined ? 'nothing' : `(i${e.index} t${e.term} ${e.type} ${JSON.stringify(e.data)})`;
}

function fail(invariant: string, message: string): never {
  throw new SafetyViolation(invariant, message);
}

export class InvariantChecker {
  /** Election safety: term -> the one leader it ever had. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Leader append-only: the log each current leader had at the last check. */
  private readonly leaderLogs = new Map<NodeId, LeaderLog>();
  /** Every committed entry, by index. */
  private readonly committed: (Entry | undefined)[] = [];
  /** The lowest term in which any node was seen to know the entry at this index committed. */
  private readonly commitTerm: number[] = [];
  /** The highest index any node has ever known committed. */
  maxCommitted = 0;
  /** State machine safety: what was applied at each index, and the digest after it. */
  private readonly applied: (AppliedRecord | undefined)[] = [];
  /** Commit index per live incarnation. */
  private readonly lastCommit = new Map<NodeId, number>();
  /** Durable votes: "id@term" -> vote persisted. */
  private readonly persistedVotes = new Map<string, NodeId>();
  private readonly persistedTerm = new Map<NodeId, number>();
  /** Proposals the leader accepted, not yet known committed or lost. */
  private pending: PendingProposal[] = [];
  /** Proposals known committed: data -> index. */
  readonly acknowledged = new Map<string, number>();
  /** ReadIndex requests: requestId -> the highest commit index known when issued. */
  private readonly reads = new Map<string, number>();
  readsAnswered = 0;
  leadersSeen = 0;

  // ---- events ---------------------------------------------------------------

  onApply(peer: Peer, entry: Entry, app: AppState): void {
    const i = entry.index;
    const known = this.committed[i];
    if (known !== undefined && !sameEntry(known, entry)) {
      fail('state machine safety', `${peer.id} applies ${describe(entry)} but ${describe(known)} was committed at ${i}`);
    }
    const rec = this.applied[i];
    if (rec === undefined) {
      this.applied[i] = { entry, digest: app.digest, by: peer.id };
      return;
    }
    if (!sameEntry(rec.entry, entry)) {
      fail('state machine safety', `${peer.id} applies ${describe(entry)} at ${i}, ${rec.by} applied ${describe(rec.entry)}`);
    }
    if (rec.digest !== app.digest) {
      fail('state machine safety', `${peer.id} digest ${app.digest} at ${i}, ${rec.by} had ${rec.digest}`);
    }
  }

  /** A snapshot installed from the leader, or loaded at restart, must match what was applied at its index. */
  onSnapshot(peer: Peer, snapshot: Snapshot, how: string): void {
    const i = snapshot.meta.index;
    if (i === 0 || snapshot.data === '') return;
    const app = JSON.parse(snapshot.data) as AppState;
    const rec = this.applied[i];
    if (rec === undefined) fail('state machine safety', `${peer.id} ${how} snapshot at ${i}, where nothing was ever applied`);
    if (app.index !== i || app.digest !== rec.digest) {
      fail('state machine safety', `${peer.id} ${how} snapshot at ${i} with digest ${app.digest}@${app.index}, ${rec.by} applied ${rec.digest}`);
    }
    if (rec.entry.term !== snapshot.meta.term) {
      fail('state machine safety', `${peer.id} ${how} snapshot at ${i} of term ${snapshot.meta.term}, applied entry has term ${rec.entry.term}`);
    }
  }

  onRestart(peer: Peer): void {
    this.lastCommit.delete(peer.id);
    this.leaderLogs.delete(peer.id);
    const snap = peer.storage.snapshot;
    if (snap !== undefined) this.onSnapshot(peer, snap, 'restarted from');
  }

  onCrash(id: NodeId): void {
    this.lastCommit.delete(id);
    this.leaderLogs.delete(id);
  }

  /** Durable state just written: terms only move forward, one vote per term. */
  afterPersist(peer: Peer): void {
    const hs = peer.storage.hardState;
    const prevTerm = this.persistedTerm.get(peer.id) ?? 0;
    if (hs.term < prevTerm) fail('durable votes', `${peer.id} persisted term ${hs.term} after ${prevTerm}`);
    this.persistedTerm.set(peer.id, hs.term);
    if (hs.vote === '') return;
    const key = `${peer.id}@${hs.term}`;
    const prev = this.persistedVotes.get(key);
    if (prev === undefined) this.persistedVotes.set(key, hs.vote);
    else if (prev !== hs.vote) fail('durable votes', `${peer.id} voted for ${prev} and then ${hs.vote} in term ${hs.term}`);
  }

  /**
   * The Ready contract, seen from outside: what a message promises is durable
   * before the message is sent, so a crash right after sending loses nothing
   * it promised. Promises are taken when the Ready is taken (the in-memory log
   * then is exactly what the Ready persists) and checked after persisting.
   * Promises made in a term the node has already left are moot: the node may
   * since have truncated those entries, legitimately.
   */
  promises(peer: Peer, messages: readonly Message[]): SendPromise[] {
    const node = peer.node;
    if (node === undefined) return [];
    let term: number | undefined;
    const out: SendPromise[] = [];
    for (const m of messages) {
      if (m.type === 'voteResp' && !m.reject) {
        out.push({ kind: 'vote', term: m.term, to: m.to });
      } else if ((m.type === 'appResp' && !m.reject && m.index > 0) || (m.type === 'app' && m.entries.length > 0)) {
        term ??= node.status().term;
        if (m.term !== term) continue;
        const index = m.type === 'app' ? (m.entries[m.entries.length - 1] as Entry).index : m.index;
        const entryTerm = node.termAt(index);
        const what = m.type === 'app' ? `sends entries up to ${index} to ${m.to}` : `acknowledges ${index} to ${m.to}`;
        if (entryTerm !== undefined) out.push({ kind: 'entry', index, term: entryTerm, what });
      }
    }
    return out;
  }

  checkPromises(peer: Peer, promises: readonly SendPromise[]): void {
    const st = peer.storage;
    const hs = st.hardState;
    for (const p of promises) {
      if (p.kind === 'vote') {
        if (hs.term < p.term || (hs.term === p.term && hs.vote !== p.to)) {
          fail('persist before send', `${peer.id} grants its vote to ${p.to} in term ${p.term}, but its disk says term ${hs.term} vote ${hs.vote || '-'}`);
        }
        continue;
      }
      if (p.index <= (st.snapshot?.meta.index ?? 0)) continue;
      const first = st.entries[0];
      const stored = first === undefined ? undefined : st.entries[p.index - first.index];
      if (stored === undefined || stored.index !== p.index || stored.term !== p.term) {
        fail('persist before send', `${peer.id} ${p.what} (term ${p.term}) but its disk has ${describe(stored)} there`);
      }
    }
  }

  /** Cheap check after every delivered message: a leader may not survive to the end of the step. */
  noteRole(id: NodeId, status: RaftStatus): void {
    if (status.role !== 'leader') return;
    const prev = this.leaderOfTerm.get(status.term);
    if (prev === undefined) {
      this.leaderOfTerm.set(status.term, id);
      this.leadersSeen++;
    } else if (prev !== id) {
      fail('election safety', `${prev} and ${id} are both leaders of term ${status.term}`);
    }
  }

  proposed(data: string, index: number, term: number): void {
    this.pending.push({ data, index, term });
  }

  readIssued(requestId: string): void {
    this.reads.set(requestId, this.maxCommitted);
  }

  readAnswered(id: NodeId, requestId: string, index: number): void {
    const floor = this.reads.get(requestId);
    if (floor === undefined) fail('linearizable reads', `${id} got an answer to unknown read ${requestId}`);
    if (index < floor) {
      fail('linearizable reads', `read ${requestId} answered at ${id} with index ${index}, but ${floor} was committed before it was issued`);
    }
    this.readsAnswered++;
  }

  // ---- the per-step check ---------------------------------------------------

  afterStep(peers: Iterable<Peer>): void {
    const live: LiveView[] = [];
    for (const peer of peers) {
      const node = peer.node;
      if (node === undefined) continue;
      const status = node.status();
      live.push({ peer, status, entries: node.entriesBetween(status.firstIndex - 1, status.lastIndex) });
    }
    for (const v of live) {
      this.noteRole(v.peer.id, v.status);
      this.checkCommit(v);
    }
    for (const v of live) this.checkLeaderAppendOnly(v);
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) checkLogMatching(live[a] as LiveView, live[b] as LiveView);
    }
    for (const v of live) if (v.status.role === 'leader') this.checkLeaderCompleteness(v);
    this.settleProposals();
  }

  /** Record newly committed entries; the commit index of a live node never decreases. */
  private checkCommit(v: LiveView): void {
    const id = v.peer.id;
    const { commitIndex, firstIndex, term } = v.status;
    const prev = this.lastCommit.get(id);
    if (prev !== undefined && commitIndex < prev) fail('commit monotonic', `${id} commit went from ${prev} to ${commitIndex}`);
    this.lastCommit.set(id, commitIndex);
    const from = prev === undefined ? firstIndex : Math.max(firstIndex, prev + 1);
    for (let i = from; i <= commitIndex; i++) {
      const e = v.entries[i - firstIndex];
      if (e === undefined) continue;
      const known = this.committed[i];
      if (known === undefined) this.committed[i] = e;
      else if (!sameEntry(known, e)) fail('state machine safety', `${id} committed ${describe(e)} where ${describe(known)} was committed`);
      const ct = this.commitTerm[i];
      if (ct === undefined || term < ct) this.commitTerm[i] = term;
    }
    if (commitIndex > this.maxCommitted) this.maxCommitted = commitIndex;
  }

  private checkLeaderAppendOnly(v: LiveView): void {
    const id = v.peer.id;
    const { role, term, firstIndex, lastIndex } = v.status;
    if (role !== 'leader') {
      this.leaderLogs.delete(id);
      return;
    }
    const prev = this.leaderLogs.get(id);
    if (prev !== undefined && prev.term === term) {
      const prevLast = prev.first + prev.entries.length - 1;
      if (lastIndex < prevLast) fail('leader append-only', `leader ${id} of term ${term} shrank its log from ${prevLast} to ${lastIndex}`);
      for (let i = Math.max(prev.first, firstIndex); i <= prevLast; i++) {
        const before = prev.entries[i - prev.first] as Entry;
        const now = v.entries[i - firstIndex];
        if (now === undefined || !sameEntry(before, now)) {
          fail('leader append-only', `leader ${id} of term ${term} replaced ${describe(before)} with ${describe(now)}`);
        }
      }
    }
    this.leaderLogs.set(id, { term, first: firstIndex, entries: v.entries });
  }

  private checkLeaderCompleteness(v: LiveView): void {
    const { term, firstIndex, lastIndex } = v.status;
    for (let i = this.maxCommitted; i >= 1; i--) {
      const ct = this.commitTerm[i];
      if (ct === undefined || ct >= term) continue;
      if (lastIndex < i) fail('leader completeness', `leader ${v.peer.id} of term ${term} ends at ${lastIndex}, but ${i} was committed in term ${ct}`);
      break;
    }
    const hi = Math.min(lastIndex, this.maxCommitted);
    for (let i = firstIndex; i <= hi; i++) {
      const known = this.committed[i];
      const ct = this.commitTerm[i];
      if (known === undefined || ct === undefined || ct >= term) continue;
      const mine = v.entries[i - firstIndex];
      if (mine === undefined || !sameEntry(known, mine)) {
        fail('leader completeness', `leader ${v.peer.id} of term ${term} has ${describe(mine)} at ${i}, committed ${describe(known)} in term ${ct}`);
      }
    }
  }

  /** A proposal is acknowledged once its entry is known committed; one replaced by another entry was never acknowledged. */
  private settleProposals(): void {
    if (this.pending.length === 0) return;
    const still: PendingProposal[] = [];
    for (const p of this.pending) {
      const c = this.committed[p.index];
      if (c === undefined) {
        if (p.index > this.maxCommitted) still.push(p);
        // Committed but compacted before we saw the entry: the apply record decides.
        else this.settleFromApplied(p, still);
        continue;
      }
      if (c.term === p.term) {
        if (c.data !== p.data) fail('log matching', `proposal ${p.data} at i${p.index} t${p.term} committed as ${describe(c)}`);
        this.acknowledged.set(p.data, p.index);
      }
    }
    this.pending = still;
  }

  private settleFromApplied(p: PendingProposal, still: PendingProposal[]): void {
    const rec = this.applied[p.index];
    if (rec === undefined) {
      still.push(p);
      return;
    }
    if (rec.entry.term === p.term && rec.entry.data === p.data) this.acknowledged.set(p.data, p.index);
  }

  /** After the run: every acknowledged proposal is applied, with its data, at its index. */
  checkAcknowledgedApplied(): void {
    for (const [data, index] of this.acknowledged) {
      const rec = this.applied[index];
      if (rec === undefined || rec.entry.data !== data) {
        fail('acknowledged writes', `acknowledged proposal ${data} at ${index} was lost: ${describe(rec?.entry)} applied there`);
      }
    }
  }

  appliedAt(index: number): AppliedRecord | undefined {
    return this.applied[index];
  }
}

/** Log Matching (§5.3): scan down the overlap; below the first agreeing (index, term), everything must agree. */
function checkLogMatching(a: LiveView, b: LiveView): void {
  const fa = a.status.firstIndex;
  const fb = b.status.firstIndex;
  const lo = Math.max(fa, fb);
  const hi = Math.min(a.status.lastIndex, b.status.lastIndex);
  let agreed = false;
  for (let i = hi; i >= lo; i--) {
    const ea = a.entries[i - fa] as Entry;
    const eb = b.entries[i - fb] as Entry;
    if (ea === eb) {
      agreed = true;
      continue;
    }
    if (ea.term === eb.term) {
      if (!sameEntry(ea, eb)) fail('log matching', `${a.peer.id} has ${describe(ea)}, ${b.peer.id} has ${describe(eb)}`);
      agreed = true;
    } else if (agreed) {
      fail('log matching', `${a.peer.id} and ${b.peer.id} agree above ${i} but differ at it: ${describe(ea)} vs ${describe(eb)}`);
    }
  }
}
