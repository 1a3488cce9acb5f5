/** One-line descriptions of nodes and messages, for traces and failure reports. */
import type { Message, NodeId } from '../../store/raft/index.js';
import type { Peer } from '../raft/harness.js';

export function describeNode(id: NodeId, peer: Peer): string {
  const s = peer.node?.status();
  if (s === undefined) return `${id} down`;
  return `${id} ${s.role} t${s.term} lead=${s.leaderId || '-'} commit=${s.commitIndex} applied=${s.appliedIndex} last=${s.lastIndex}`;
}

export function describeMessage(m: Message): string {
  const head = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} prev=i${m.prevIndex}t${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'appResp':
      return `${head} index=${m.index}${m.reject ? ` reject hint=i${m.hintIndex}t${m.hintTerm}` : ''}`;
    case 'vote':
    case 'preVote':
      return `${head} last=i${m.lastLogIndex}t${m.lastLogTerm}${m.force ? ' force' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head}${m.reject ? ' reject' : ' grant'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} seq=${m.readSeq}`;
    case 'heartbeatResp':
      return `${head} seq=${m.readSeq}`;
    case 'snap':
      return `${head} snap=i${m.snapshot.meta.index}t${m.snapshot.meta.term}`;
    case 'readIndex':
      return `${head} ${m.requestId}`;
    case 'readIndexResp':
      return `${head} ${m.requestId} index=${m.index}${m.reject ? ' reject' : ''}`;
    case 'timeoutNow':
      return head;
  }
}
