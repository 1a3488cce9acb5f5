/**
 * The Raft state machine for one peer (Ongaro & Ousterhout, "In Search of an
 * Understandable Consensus Algorithm", and Ongaro's dissertation). It owns the
 * role, term, vote, log and per-follower progress; role-specific message
 * handling lives in leader.ts, follower.ts and election.ts. No I/O: messages
 * to send accumulate in `msgs`, and RawNode hands them out through Ready.
 */
import { assert } from '../../lib/assert.js';
import type { Random } from '../../lib/random.js';
import type { RaftConfig } from './config.js';
import { campaign, handleVoteRequest } from './election.js';
import { stepFollower, stepCandidate } from './follower.js';
import { bcastAppend, bcastHeartbeat, maybeCommit, stepLeader, tickLeaderProgress } from './leader.js';
import { RaftLog } from './log.js';
import type { Message } from './messages.js';
import { Progress } from './progress.js';
import { quorumSize } from './quorum.js';
import { ReadOnly } from './readonly.js';
import { type ConfChange, type ConfState, type Entry, type NodeId, NONE, type Role, type Snapshot } from './types.js';

export interface ReadState {
  readonly requestId: string;
  /** Serve the read once the state machine has applied this index. */
  readonly index: number;
  /** The leader refused the forwarded read (saturated): fail it now rather than at its timeout. */
  readonly rejected?: true;
}

export class Raft {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  readonly random: Random;

  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;

  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  /** Leader only: replication state of every member, self included. */
  readonly prs = new Map<NodeId, Progress>();
  /** Candidate and pre-candidate: votes received this election. */
  readonly votes = new Map<NodeId, boolean>();

  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readonly readOnly: ReadOnly;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  /** Leader only: the follower leadership is being handed to (dissertation §3.10). */
  leadTransferee: NodeId = NONE;
  /** Leader only: a conf change may be proposed only once this index is applied (§4.1, one at a time). */
  pendingConfIndex = 0;
  /** Configuration entries up to here have taken effect. */
  confAppliedIndex = 0;

  constructor(cfg: RaftConfig, random: Random, snapshot: Snapshot, entries: readonly Entry[], hs: { term: number; vote: NodeId; commit: number }) {
    this.id = cfg.id;
    this.cfg = cfg;
    this.random = random;
    this.readOnly = new ReadOnly(cfg.maxPendingReads);
    this.log = new RaftLog(snapshot, entries, hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
    this.setConf(snapshot.meta.conf);
    // Configuration changes take effect when applied; at restart everything up to
    // commit was applied before, so replay them now rather than wait for the app.
    for (const e of this.log.between(snapshot.meta.index, this.log.committed)) {
      if (e.type === 'conf') this.applyConfChangeToSets(JSON.parse(e.data) as ConfChange);
    }
    this.confAppliedIndex = this.log.committed;
    this.becomeFollower(this.term, NONE);
  }

  // ---- configuration ------------------------------------------------------

  setConf(conf: ConfState): void {
    this.voters = new Set(conf.voters);
    this.learners = new Set(conf.learners);
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  promotable(): boolean {
    return this.voters.has(this.id);
  }

  quorum(): number {
    return quorumSize(this.voters.size);
  }

  private applyConfChangeToSets(cc: ConfChange): void {
    switch (cc.op) {
      case 'addVoter':
        this.learners.delete(cc.id);
        this.voters.add(cc.id);
        break;
      case 'addLearner':
        if (!this.voters.has(cc.id)) this.learners.add(cc.id);
        break;
      case 'remove':
        this.voters.delete(cc.id);
        this.learners.delete(cc.id);
        break;
    }
  }

  /** A committed configuration entry was applied: it takes effect now (single-server change, §4.1). */
  applyConfChange(index: number, cc: ConfChange): void {
    if (index <= this.confAppliedIndex) return;
    this.confAppliedIndex = index;
    this.applyConfChangeToSets(cc);
    if (this.role !== 'leader') return;
    if (cc.op === 'remove') {
      this.prs.delete(cc.id);
      if (cc.id === this.leadTransferee) this.leadTransferee = NONE;
      if (cc.id === this.id) {
        // A removed leader stops leading; the rest elect a new one.
        this.becomeFollower(this.term, NONE);
        return;
      }
    } else {
      const pr = this.prs.get(cc.id);
      if (pr) pr.isLearner = this.learners.has(cc.id);
      else this.prs.set(cc.id, new Progress(this.log.lastIndex() + 1, this.learners.has(cc.id), this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes));
    }
    // The quorum may have shrunk: entries may now be committed.
    if (maybeCommit(this)) bcastAppend(this);
  }

  /** Members other than self that receive replication. */
  *peers(): Iterable<NodeId> {
    for (const id of this.voters) if (id !== this.id) yield id;
    for (const id of this.learners) if (id !== this.id) yield id;
  }

  // ---- role transitions ---------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.random.int(this.cfg.electionTicks);
    this.votes.clear();
    this.prs.clear();
    this.leadTransferee = NONE;
    this.readOnly.clear();
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // PreVote (§9.6) changes neither term nor vote: a failed pre-election leaves no trace.
    this.votes.clear();
    this.lead = NONE;
    this.role = 'preCandidate';
  }

  becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.voters, ...this.learners]) {
      const pr = new Progress(next, this.learners.has(id), this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
      if (id === this.id) {
        pr.match = this.log.lastIndex();
        pr.becomeReplicate();
      }
      this.prs.set(id, pr);
    }
    // §5.4.2 / §8: commit an entry of the new term, which commits everything before it.
    this.appendEntries([{ type: 'normal', data: '' }]);
    // A conf change must wait until the no-op commits (the fix to the single-server change bug).
    this.pendingConfIndex = this.log.lastIndex();
  }

  /** Leader: append new entries in the current term; counts our own copy toward the quorum. */
  appendEntries(items: readonly { type: Entry['type']; data: string }[]): Entry[] {
    let index = this.log.lastIndex();
    const entries = items.map((it) => ({ index: ++index, term: this.term, type: it.type, data: it.data }));
    this.log.append(entries);
    this.prs.get(this.id)?.maybeUpdate(this.log.lastIndex());
    maybeCommit(this);
    return entries;
  }

  // ---- time ---------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup();
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      // CheckQuorum (§6.2): a leader that cannot hear from a majority steps down.
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = NONE;
    }
    tickLeaderProgress(this);
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      bcastHeartbeat(this);
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.prs.get(id);
      if (id === this.id || pr?.recentActive) active++;
      if (pr && id !== this.id) pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  /** Start an election if allowed: not while configuration entries are committed but unapplied. */
  hup(): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    for (const e of this.log.between(Math.max(this.log.applied, this.confAppliedIndex), this.log.committed)) {
      if (e.type === 'conf') return;
    }
    campaign(this, this.cfg.preVote ? 'preElection' : 'election');
  }

  // ---- messages -----------------------------------------------------------

  send(m: Message): void {
    this.msgs.push(m);
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader lease (§6.2 with CheckQuorum, §9.6): a follower that heard from a
        // leader within the election timeout ignores disruptive vote requests.
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTicks;
        if (!m.force && inLease) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote asks about a future term; it must not bump ours.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the proposed term, not a newer real one.
      } else {
        // Figure 2, all servers: a higher term makes us a follower in it.
        const lead = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' ? m.from : NONE;
        this.becomeFollower(m.term, lead);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // Tell a stale leader about the newer term, or it may never step down
        // (its heartbeats would otherwise be ignored forever under PreVote).
        this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      handleVoteRequest(this, m);
      return;
    }
    switch (this.role) {
      case 'leader':
        stepLeader(this, m);
        break;
      case 'candidate':
      case 'preCandidate':
        stepCandidate(this, m);
        break;
      case 'follower':
        stepFollower(this, m);
        break;
    }
  }

  /** Install a snapshot from the leader (§7). False when it is not newer than what we have. */
  restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the entry the snapshot ends at: just move commit forward.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.setConf(s.meta.conf);
    this.confAppliedIndex = s.meta.index;
    return true;
  }
}
