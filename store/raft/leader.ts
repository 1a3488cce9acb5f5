/** Leader behaviour: replication (§5.3), commitment (§5.4.2), heartbeats, ReadIndex and transfer. */
import type { Raft } from './raft.js';
import type { AppendResponse, HeartbeatResponse, Message } from './messages.js';
import { majorityValue } from './quorum.js';
import { entryBytes } from './log.js';
import { type Entry, type NodeId } from './types.js';

/**
 * Send the next append (or snapshot) to `to` if its progress allows.
 * Returns whether a message went out. Empty appends go out only if asked,
 * to carry a new commit index or probe for the match point.
 */
export function sendAppend(r: Raft, to: NodeId, sendIfEmpty = true): boolean {
  const pr = r.prs.get(to);
  if (!pr || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm === undefined) return sendSnapshot(r, to);
  const entries = r.log.slice(pr.next, r.cfg.maxMsgEntries, r.cfg.maxMsgBytes);
  if (entries.length === 0 && !sendIfEmpty) return false;
  r.send({ type: 'app', from: r.id, to, term: r.term, prevIndex, prevTerm, entries, commit: r.log.committed });
  pr.sentEntries(entries.length, prevIndex + entries.length, entriesBytes(entries));
  return true;
}

/** The entries' size, as maxMsgBytes counts it. */
function entriesBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const e of entries) bytes += entryBytes(e);
  return bytes;
}

function sendSnapshot(r: Raft, to: NodeId): boolean {
  const pr = r.prs.get(to);
  if (!pr) return false;
  const snapshot = r.log.snapshot;
  pr.becomeSnapshot(snapshot.meta.index);
  r.send({ type: 'snap', from: r.id, to, term: r.term, snapshot });
  return true;
}

export function bcastAppend(r: Raft): void {
  for (const id of r.peers()) sendAppend(r, id);
}

export function bcastHeartbeat(r: Raft): void {
  const readSeq = r.readOnly.seq;
  r.readOnly.broadcastNeeded = false;
  for (const id of r.peers()) {
    const pr = r.prs.get(id);
    if (!pr) continue;
    // Never tell a follower to commit past what it is known to hold.
    const commit = Math.min(pr.match, r.log.committed);
    r.send({ type: 'heartbeat', from: r.id, to: id, term: r.term, commit, readSeq });
  }
}

/**
 * Advance the commit index to the highest index on a majority, but only if
 * that entry is from the current term (§5.4.2; Figure 8 shows why).
 */
export function maybeCommit(r: Raft): boolean {
  if (r.role !== 'leader') return false;
  const index = majorityValue(r.voters, (id) => r.prs.get(id)?.match ?? 0);
  if (index <= r.log.committed || r.log.term(index) !== r.term) return false;
  const firstInTerm = r.log.term(r.log.committed) !== r.term;
  r.log.commitTo(index);
  if (firstInTerm) releaseReadsAwaitingCommit(r);
  return true;
}

/** Leader ticks: detect stalled pipelines and lost snapshots, which would otherwise wait forever. */
export function tickLeaderProgress(r: Raft): void {
  for (const [id, pr] of r.prs) {
    if (id === r.id) continue;
    // A follower holding everything is idle, not stalled: count only while it is behind,
    // or the first append after an idle spell would be resent as if lost.
    if (pr.match >= r.log.lastIndex()) {
      pr.ticksSinceProgress = 0;
      continue;
    }
    pr.ticksSinceProgress++;
    if (pr.state === 'snapshot' && pr.ticksSinceProgress >= 2 * r.cfg.electionTicks) pr.becomeProbe();
  }
}

export function stepLeader(r: Raft, m: Message): void {
  const pr = r.prs.get(m.from);
  switch (m.type) {
    case 'appResp':
      if (pr) handleAppendResponse(r, m);
      return;
    case 'heartbeatResp':
      if (pr) handleHeartbeatResponse(r, m);
      return;
    case 'readIndex':
      readIndex(r, m.requestId, m.from);
      return;
    default:
      // Vote responses from an election we already won, and the like.
      return;
  }
}

function handleAppendResponse(r: Raft, m: AppendResponse): void {
  const pr = r.prs.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  if (m.reject) {
    // Fast back-tracking: skip every entry of the follower's conflicting term at once.
    let hint = m.hintIndex;
    if (m.hintTerm > 0) hint = r.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
    if (pr.maybeDecrTo(m.index, hint)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  const wasPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index)) {
    // A probe answered at the match point: the follower is caught up, stream again.
    if (pr.state === 'probe' && m.index === pr.match) pr.becomeReplicate();
    return;
  }
  if (pr.state === 'probe') pr.becomeReplicate();
  else if (pr.state === 'snapshot' && pr.match + 1 >= r.log.firstIndex()) pr.becomeReplicate();
  else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

  if (maybeCommit(r)) bcastAppend(r);
  else if (wasPaused) sendAppend(r, m.from);
  // Pipelining: fill the in-flight window.
  while (sendAppend(r, m.from, false));

  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) sendTimeoutNow(r, m.from);
}

function handleHeartbeatResponse(r: Raft, m: HeartbeatResponse): void {
  const pr = r.prs.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  pr.probeSent = false;
  // Appends were lost and no answer will come: fall back to probing from the match point.
  if (pr.state === 'replicate' && pr.match < r.log.lastIndex() && pr.ticksSinceProgress >= r.cfg.electionTicks) {
    pr.becomeProbe();
  }
  // A probed follower gets an append even when it seems caught up: a follower
  // that restarted after losing its WAL tail rejects it, which is how the
  // leader learns to lower its match (etcd probes on heartbeat responses too).
  if (pr.match < r.log.lastIndex() || pr.state === 'probe') sendAppend(r, m.from);

  if (m.readSeq > pr.readAck) {
    pr.readAck = m.readSeq;
    releaseConfirmedReads(r);
  }
}

function releaseConfirmedReads(r: Raft): void {
  const acked = majorityValue(r.voters, (id) => (id === r.id ? r.readOnly.seq : (r.prs.get(id)?.readAck ?? 0)));
  for (const read of r.readOnly.takeConfirmed(acked)) answerRead(r, read.requestId, read.from, read.index);
}

function answerRead(r: Raft, requestId: string, from: NodeId, index: number): void {
  if (from === r.id) r.readStates.push({ requestId, index });
  else r.send({ type: 'readIndexResp', from: r.id, to: from, term: r.term, requestId, index, reject: false });
}

function rejectRead(r: Raft, requestId: string, from: NodeId): void {
  if (from !== r.id) r.send({ type: 'readIndexResp', from: r.id, to: from, term: r.term, requestId, index: 0, reject: true });
}

/**
 * Register a linearizable read (§6.4). Returns false when the leader is
 * saturated (the caller answers `busy`).
 */
export function readIndex(r: Raft, requestId: string, from: NodeId): boolean {
  if (r.readOnly.full()) {
    rejectRead(r, requestId, from);
    return false;
  }
  if (r.log.term(r.log.committed) !== r.term) {
    // Until an entry of this term commits, our commit index may be behind the true one.
    r.readOnly.awaitingCommit.push({ requestId, from });
    return true;
  }
  if (r.voters.size === 1 && r.voters.has(r.id)) {
    answerRead(r, requestId, from, r.log.committed);
    return true;
  }
  r.readOnly.add(requestId, from, r.log.committed);
  return true;
}

function releaseReadsAwaitingCommit(r: Raft): void {
  const waiting = r.readOnly.awaitingCommit;
  r.readOnly.awaitingCommit = [];
  for (const w of waiting) readIndex(r, w.requestId, w.from);
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send({ type: 'timeoutNow', from: r.id, to, term: r.term });
}
