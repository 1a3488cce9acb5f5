/**
 * The public face of the Raft core, in the manner of etcd-io/raft's RawNode.
 *
 * The contract (docs/RAFT.md says it once, in full): call `ready()`, then
 *   1. persist `snapshot` (if any), then `entries` (replacing any stored entry
 *      at the same or a later index), then `hardState`, durably;
 *   2. only then send `messages`;
 *   3. apply `snapshot`, then `committedEntries`, in order; serve `readStates`
 *      once the applied index reaches theirs;
 *   4. call `advance(ready)`.
 * Steps, ticks and proposals may happen between `ready()` and `advance()`;
 * only one Ready may be outstanding at a time.
 */
import { assert } from '../../lib/assert.js';
import type { Random } from '../../lib/random.js';
import { type RaftConfig, defaultRaftConfig, validateRaftConfig } from './config.js';
import { bcastHeartbeat, readIndex as leaderReadIndex, sendAppend, sendTimeoutNow } from './leader.js';
import type { Message } from './messages.js';
import { coalesceMessages } from './coalesce.js';
import { Raft, type ReadState } from './raft.js';
import { type ConfChange, type ConfState, type Entry, type HardState, type NodeId, NONE, type Role, type Snapshot } from './types.js';

/** What the application persisted, handed back at restart. */
export interface StorageState {
  readonly hardState: HardState;
  readonly snapshot?: Snapshot | undefined;
  readonly entries: readonly Entry[];
}

export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId;
}

export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

export type ProposeErrorCode = 'not_leader' | 'transfer_in_progress' | 'busy' | 'conf_change_pending' | 'conf_change_invalid';

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly code: ProposeErrorCode; readonly leaderId: NodeId };

export type ReadIndexResult = 'ok' | 'no_leader' | 'busy';
export type TransferResult = 'ok' | 'not_leader' | 'invalid_target';

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: string;
  readonly inflight: number;
  readonly learner: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leaderId: NodeId;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
  readonly progress: Readonly<Record<NodeId, ProgressStatus>>;
}

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

export function emptySnapshot(conf: ConfState = EMPTY_CONF): Snapshot {
  return { meta: { index: 0, term: 0, conf }, data: '' };
}

/**
 * The storage every founding member of a new cluster starts from: the initial
 * members as committed configuration entries, identical on every founder
 * (etcd does the same), so later joiners learn the membership from the log.
 */
export function bootstrapStorage(members: readonly { id: NodeId; context?: string }[]): StorageState {
  assert(members.length > 0, 'bootstrap needs at least one member');
  const entries: Entry[] = members.map((m, i) => {
    const cc: ConfChange = m.context === undefined ? { op: 'addVoter', id: m.id } : { op: 'addVoter', id: m.id, context: m.context };
    return { index: i + 1, term: 1, type: 'conf', data: JSON.stringify(cc) };
  });
  return { hardState: { term: 1, vote: NONE, commit: entries.length }, entries };
}

export class RawNode {
  private readonly raft: Raft;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private outstanding = false;

  constructor(cfg: Partial<RaftConfig> & { id: NodeId }, storage: StorageState, random: Random) {
    const full = validateRaftConfig({ ...defaultRaftConfig, ...cfg });
    this.raft = new Raft(full, random, storage.snapshot ?? emptySnapshot(), storage.entries, storage.hardState);
    this.prevHardState = this.hardState();
    this.prevSoftState = this.softState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  /** A message from a peer. Messages for another node are a transport bug. */
  step(m: Message): void {
    assert(m.to === this.raft.id, `message for ${m.to} delivered to ${this.raft.id}`);
    this.raft.step(m);
  }

  /** Start an election now (tests, tools); ticks do this on their own. */
  campaign(): void {
    this.raft.hup();
  }

  propose(data: string): ProposeResult {
    return this.proposeEntries([{ type: 'normal', data }]);
  }

  /** Several proposals as one batch: one append, one round trip. */
  proposeBatch(data: readonly string[]): ProposeResult {
    return this.proposeEntries(data.map((d) => ({ type: 'normal' as const, data: d })));
  }

  /** A single-server membership change (§4.1); one may be pending at a time. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    const r = this.raft;
    if (r.role === 'leader') {
      if (r.pendingConfIndex > r.log.applied) return this.refuse('conf_change_pending');
      if (!confChangeValid(r.voters, r.learners, cc)) return this.refuse('conf_change_invalid');
    }
    const res = this.proposeEntries([{ type: 'conf', data: JSON.stringify(cc) }]);
    if (res.ok) r.pendingConfIndex = res.index;
    return res;
  }

  private proposeEntries(items: readonly { type: Entry['type']; data: string }[]): ProposeResult {
    const r = this.raft;
    if (r.role !== 'leader') return this.refuse('not_leader');
    if (r.leadTransferee !== NONE) return this.refuse('transfer_in_progress');
    if (r.log.lastIndex() - r.log.committed + items.length > r.cfg.maxUncommittedEntries) return this.refuse('busy');
    const entries = r.appendEntries(items);
    for (const id of r.peers()) sendAppend(r, id, false);
    const last = entries[entries.length - 1] as Entry;
    return { ok: true, index: last.index, term: last.term };
  }

  private refuse(code: ProposeErrorCode): ProposeResult {
    return { ok: false, code, leaderId: this.raft.lead };
  }

  /**
   * Ask for a linearizable read (§6.4). The answer arrives as a ReadState with
   * the same requestId in a later Ready; a lost answer never arrives, so the
   * caller must time out.
   */
  readIndex(requestId: string): ReadIndexResult {
    const r = this.raft;
    if (r.role === 'leader') return leaderReadIndex(r, requestId, r.id) ? 'ok' : 'busy';
    if (r.lead === NONE) return 'no_leader';
    r.send({ type: 'readIndex', from: r.id, to: r.lead, term: r.term, requestId });
    return 'ok';
  }

  transferLeadership(to: NodeId): TransferResult {
    const r = this.raft;
    if (r.role !== 'leader') return 'not_leader';
    if (to === r.id) return 'ok';
    if (!r.voters.has(to)) return 'invalid_target';
    if (r.leadTransferee === to) return 'ok';
    r.leadTransferee = to;
    r.electionElapsed = 0;
    const pr = r.prs.get(to);
    if (pr && pr.match === r.log.lastIndex()) sendTimeoutNow(r, to);
    else sendAppend(r, to);
    return 'ok';
  }

  /**
   * The application took a snapshot of its state at the applied index. Raft
   * drops entries before it, keeping `keepEntries` (and at most `keepBytes`
   * of them) for followers slightly behind. Returns the snapshot to persist,
   * or undefined if there is nothing new.
   */
  compact(data: string, keepEntries = 0, keepBytes?: number): Snapshot | undefined {
    const r = this.raft;
    const index = r.log.applied;
    if (r.log.pendingSnapshot !== undefined || r.confAppliedIndex > index) return undefined;
    if (index <= r.log.snapshot.meta.index) return undefined;
    const term = r.log.term(index);
    assert(term !== undefined, 'applied entry must be in the log');
    const snapshot: Snapshot = { meta: { index, term, conf: r.confState() }, data };
    r.log.compact(snapshot, keepEntries, keepBytes);
    return snapshot;
  }

  /** The transport could not reach a peer: stop streaming and probe again. */
  reportUnreachable(id: NodeId): void {
    const pr = this.raft.prs.get(id);
    if (pr && pr.state === 'replicate') pr.becomeProbe();
  }

  /** The transport finished (or failed) sending a snapshot. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.raft.prs.get(id);
    if (!pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the next heartbeat response before probing, as etcd does.
    pr.probeSent = true;
  }

  private hardState(): HardState {
    const r = this.raft;
    return { term: r.term, vote: r.vote, commit: r.log.committed };
  }

  private softState(): SoftState {
    return { role: this.raft.role, leaderId: this.raft.lead };
  }

  hasReady(): boolean {
    const r = this.raft;
    if (this.outstanding) return false;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.role === 'leader' && r.readOnly.broadcastNeeded) return true;
    if (r.log.pendingSnapshot !== undefined || r.log.stableIndex < r.log.lastIndex()) return true;
    if (r.log.hasNextCommittedEntries()) return true;
    if (!sameHardState(this.hardState(), this.prevHardState)) return true;
    const ss = this.softState();
    return ss.role !== this.prevSoftState.role || ss.leaderId !== this.prevSoftState.leaderId;
  }

  ready(): Ready {
    assert(!this.outstanding, 'ready() called again before advance()');
    const r = this.raft;
    // ReadIndex rounds registered since the last heartbeat go out in one broadcast.
    if (r.role === 'leader' && r.readOnly.broadcastNeeded) bcastHeartbeat(r);
    const hs = this.hardState();
    const ss = this.softState();
    const rd: {
      -readonly [K in keyof Ready]: Ready[K];
    } = {
      entries: r.log.unstableEntries(),
      committedEntries: r.log.nextCommittedEntries(r.cfg.maxApplyBytes),
      messages: coalesceMessages(r.msgs, r.cfg),
      readStates: r.readStates,
    };
    if (!sameHardState(hs, this.prevHardState)) {
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    if (ss.role !== this.prevSoftState.role || ss.leaderId !== this.prevSoftState.leaderId) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    if (r.log.pendingSnapshot !== undefined) rd.snapshot = r.log.pendingSnapshot;
    r.msgs = [];
    r.readStates = [];
    this.outstanding = true;
    return rd;
  }

  advance(rd: Ready): void {
    assert(this.outstanding, 'advance() without ready()');
    this.outstanding = false;
    const r = this.raft;
    if (rd.snapshot !== undefined) {
      if (r.log.pendingSnapshot === rd.snapshot) r.log.pendingSnapshot = undefined;
      r.log.appliedTo(Math.max(r.log.applied, rd.snapshot.meta.index));
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) r.log.stableTo(lastEntry.index, lastEntry.term);
    for (const e of rd.committedEntries) {
      r.log.appliedTo(e.index);
      if (e.type === 'conf') r.applyConfChange(e.index, JSON.parse(e.data) as ConfChange);
    }
  }

  /** This node's role now: what a per-request check reads, without building `status()`. */
  get role(): Role {
    return this.raft.role;
  }

  /** The leader this node knows ('' if none), without building `status()`. */
  get leaderId(): NodeId {
    return this.raft.lead;
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress: Record<NodeId, ProgressStatus> = {};
    for (const [id, pr] of r.prs) {
      progress[id] = { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflights.count(), learner: pr.isLearner };
    }
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      vote: r.vote,
      leaderId: r.lead,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      snapshotIndex: r.log.snapshot.meta.index,
      conf: r.confState(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  /** Read-only access to log entries still in memory, for tests and the simulator's checks. */
  entriesBetween(from: number, to: number): Entry[] {
    return this.raft.log.between(from, to);
  }

  termAt(index: number): number | undefined {
    return this.raft.log.term(index);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function confChangeValid(voters: ReadonlySet<NodeId>, learners: ReadonlySet<NodeId>, cc: ConfChange): boolean {
  if (cc.id === NONE) return false;
  switch (cc.op) {
    case 'addVoter':
      return !voters.has(cc.id);
    case 'addLearner':
      return !voters.has(cc.id) && !learners.has(cc.id);
    case 'remove':
      // Removing the last voter would leave a cluster that can never elect a leader.
      return (voters.has(cc.id) && voters.size > 1) || learners.has(cc.id);
  }
}
