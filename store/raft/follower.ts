/** Follower and candidate behaviour: AppendEntries, heartbeats, snapshots (§5.3, §7). */
import type { Raft } from './raft.js';
import type { AppendRequest, Heartbeat, Message, SnapshotRequest } from './messages.js';
import { campaign, handleVoteResponse } from './election.js';

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case 'app':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppend(r, m);
      return;
    case 'heartbeat':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case 'snap':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case 'timeoutNow':
      // Leadership transfer: campaign at once, skipping PreVote and the leader lease.
      if (r.promotable()) campaign(r, 'transfer');
      return;
    case 'readIndexResp':
      r.readStates.push(m.reject ? { requestId: m.requestId, index: 0, rejected: true } : { requestId: m.requestId, index: m.index });
      return;
    default:
      return;
  }
}

export function stepCandidate(r: Raft, m: Message): void {
  switch (m.type) {
    case 'app':
    case 'heartbeat':
    case 'snap':
      // A leader exists for our term (§5.2): give up the election.
      r.becomeFollower(m.term, m.from);
      stepFollower(r, m);
      return;
    case 'voteResp':
    case 'preVoteResp':
      handleVoteResponse(r, m);
      return;
    default:
      return;
  }
}

function handleAppend(r: Raft, m: AppendRequest): void {
  if (m.prevIndex < r.log.committed) {
    // Everything up to commit already matches (Log Matching); say so.
    reply(r, m.from, r.log.committed);
    return;
  }
  const lastNew = r.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    reply(r, m.from, lastNew);
    return;
  }
  // Figure 2 rule 2 failed. Hint where our logs may agree so the leader can skip a term at once.
  const hint = r.log.findConflictByTerm(Math.min(m.prevIndex, r.log.lastIndex()), m.prevTerm);
  r.send({ type: 'appResp', from: r.id, to: m.from, term: r.term, index: m.prevIndex, reject: true, hintIndex: hint.index, hintTerm: hint.term });
}

function handleHeartbeat(r: Raft, m: Heartbeat): void {
  r.log.commitTo(Math.min(m.commit, r.log.lastIndex()));
  r.send({ type: 'heartbeatResp', from: r.id, to: m.from, term: r.term, readSeq: m.readSeq });
}

function handleSnapshot(r: Raft, m: SnapshotRequest): void {
  const installed = r.restore(m.snapshot);
  reply(r, m.from, installed ? r.log.lastIndex() : r.log.committed);
}

function reply(r: Raft, to: string, index: number): void {
  r.send({ type: 'appResp', from: r.id, to, term: r.term, index, reject: false, hintIndex: 0, hintTerm: 0 });
}
