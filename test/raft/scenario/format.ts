/**
 * One-line renderings of the core's data for scenario output. Short on
 * purpose: a scenario is read by people, so every field printed must matter.
 *
 *   entry      7/2 "x"                 index/term and quoted data (normal)
 *              7/2 ""                  a leader's no-op
 *              8/2 conf addVoter 4     a configuration change
 *   message    1->2 app term=2 prev=6/2 commit=6 entries=[7/2 "x"]
 */
import type { ConfChange, ConfState, Entry, Message, NodeId, ProposeResult, RaftStatus, Snapshot } from '../../../store/raft/index.js';

export function fmtId(id: NodeId): string {
  return id === '' ? 'none' : id;
}

export function fmtEntry(e: Entry): string {
  if (e.type === 'normal') return `${e.index}/${e.term} ${JSON.stringify(e.data)}`;
  const cc = JSON.parse(e.data) as ConfChange;
  return `${e.index}/${e.term} conf ${cc.op} ${cc.id}`;
}

export function fmtConf(c: ConfState): string {
  const voters = `voters=[${c.voters.join(' ')}]`;
  return c.learners.length > 0 ? `${voters} learners=[${c.learners.join(' ')}]` : voters;
}

export function fmtSnapshot(s: Snapshot): string {
  return `${s.meta.index}/${s.meta.term} ${fmtConf(s.meta.conf)}`;
}

export function fmtMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'preVote':
    case 'vote':
      return `${head} last=${m.lastLogIndex}/${m.lastLogTerm}${m.force ? ' force' : ''}`;
    case 'preVoteResp':
    case 'voteResp':
      return m.reject ? `${head} reject` : head;
    case 'app':
      return `${head} prev=${m.prevIndex}/${m.prevTerm} commit=${m.commit} entries=[${m.entries.map(fmtEntry).join(', ')}]`;
    case 'appResp':
      return m.reject ? `${head} index=${m.index} reject hint=${m.hintIndex}/${m.hintTerm}` : `${head} index=${m.index}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.readSeq > 0 ? ` readSeq=${m.readSeq}` : ''}`;
    case 'heartbeatResp':
      return m.readSeq > 0 ? `${head} readSeq=${m.readSeq}` : head;
    case 'snap':
      return `${head} snapshot=${fmtSnapshot(m.snapshot)}`;
    case 'timeoutNow':
      return head;
    case 'readIndex':
      return `${head} id=${m.requestId}`;
    case 'readIndexResp':
      return m.reject ? `${head} id=${m.requestId} reject` : `${head} id=${m.requestId} index=${m.index}`;
  }
}

export function fmtPropose(r: ProposeResult): string {
  return r.ok ? `ok index=${r.index} term=${r.term}` : `refused ${r.code} lead=${fmtId(r.leaderId)}`;
}

export function fmtStatus(s: RaftStatus): string {
  return (
    `${s.id}: ${s.role} term=${s.term} lead=${fmtId(s.leaderId)} commit=${s.commitIndex} applied=${s.appliedIndex} ` +
    `last=${s.lastIndex} ${fmtConf(s.conf)}`
  );
}

export function fmtProgress(s: RaftStatus): string[] {
  const out: string[] = [];
  for (const [id, pr] of Object.entries(s.progress)) {
    if (id === s.id) continue;
    const learner = pr.learner ? ' learner' : '';
    out.push(`${id}: ${pr.state} match=${pr.match} next=${pr.next} inflight=${pr.inflight}${learner}`);
  }
  return out;
}
