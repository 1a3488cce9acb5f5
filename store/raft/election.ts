/** Leader election (§5.2), PreVote (dissertation §9.6) and the vote rules of Figure 2. */
import type { Raft } from './raft.js';
import type { VoteRequest, VoteResponse } from './messages.js';
import { voteOutcome } from './quorum.js';
import { NONE } from './types.js';
import { bcastAppend } from './leader.js';

export type CampaignKind = 'preElection' | 'election' | 'transfer';

export function campaign(r: Raft, kind: CampaignKind): void {
  if (!r.promotable()) return;
  let voteTerm: number;
  let type: VoteRequest['type'];
  if (kind === 'preElection') {
    r.becomePreCandidate();
    voteTerm = r.term + 1;
    type = 'preVote';
  } else {
    r.becomeCandidate();
    voteTerm = r.term;
    type = 'vote';
  }
  // Vote for ourselves first; a single-voter cluster wins at once.
  if (poll(r, r.id, true)) return;
  const lastLogIndex = r.log.lastIndex();
  const lastLogTerm = r.log.lastTerm();
  for (const id of r.voters) {
    if (id === r.id) continue;
    r.send({ type, from: r.id, to: id, term: voteTerm, lastLogIndex, lastLogTerm, force: kind === 'transfer' });
  }
}

/** Record a vote and act on the outcome; true when the election is decided. */
export function poll(r: Raft, from: string, granted: boolean): boolean {
  if (!r.votes.has(from)) r.votes.set(from, granted);
  const outcome = voteOutcome(r.voters, r.votes);
  if (outcome === 'pending') return false;
  if (outcome === 'lost') {
    r.becomeFollower(r.term, NONE);
    return true;
  }
  if (r.role === 'preCandidate') {
    campaign(r, 'election');
  } else {
    r.becomeLeader();
    bcastAppend(r);
  }
  return true;
}

/**
 * Figure 2, RequestVote receiver: grant if we have not voted for someone else
 * this term and the candidate's log is at least as up-to-date as ours (§5.4.1).
 */
export function handleVoteRequest(r: Raft, m: VoteRequest): void {
  const canVote =
    r.vote === m.from ||
    (r.vote === NONE && r.lead === NONE) ||
    // A pre-vote for a future term commits us to nothing.
    (m.type === 'preVote' && m.term > r.term);
  const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
  if (canVote && r.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
    // A granted pre-vote answers in the term asked about, so the pre-candidate counts it.
    r.send({ type: respType, from: r.id, to: m.from, term: m.term, reject: false });
    if (m.type === 'vote') {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.send({ type: respType, from: r.id, to: m.from, term: r.term, reject: true });
  }
}

export function handleVoteResponse(r: Raft, m: VoteResponse): void {
  const expected = r.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
  if (m.type !== expected) return;
  poll(r, m.from, !m.reject);
}
