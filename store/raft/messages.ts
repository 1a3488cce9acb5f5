/**
 * Messages between Raft peers. `term` is the sender's term except where noted:
 * a granted preVoteResp carries the term the candidate asked for (so the
 * pre-candidate does not mistake it for a higher term), as in etcd-io/raft.
 */
import type { Entry, NodeId, Snapshot } from './types.js';

interface Base {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** §5.2 RequestVote, and the dissertation §9.6 PreVote which uses the same fields. */
export interface VoteRequest extends Base {
  readonly type: 'preVote' | 'vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set by a leadership transfer: voters skip the leader-lease check (§3.10). */
  readonly force: boolean;
}

export interface VoteResponse extends Base {
  readonly type: 'preVoteResp' | 'voteResp';
  readonly reject: boolean;
}

/** §5.3 AppendEntries. */
export interface AppendRequest extends Base {
  readonly type: 'app';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends Base {
  readonly type: 'appResp';
  /** Accepted: the last index the follower now matches. Rejected: the prevIndex it rejected. */
  readonly index: number;
  readonly reject: boolean;
  /** On reject: the follower's best guess of where the logs agree (fast back-tracking). */
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** Heartbeats carry the commit index and the newest ReadIndex round (§6.4). */
export interface Heartbeat extends Base {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly readSeq: number;
}

export interface HeartbeatResponse extends Base {
  readonly type: 'heartbeatResp';
  readonly readSeq: number;
}

/** §7 InstallSnapshot, sent whole; the transport may chunk it. */
export interface SnapshotRequest extends Base {
  readonly type: 'snap';
  readonly snapshot: Snapshot;
}

/** Leadership transfer (dissertation §3.10): start an election now. */
export interface TimeoutNow extends Base {
  readonly type: 'timeoutNow';
}

/** A follower asks the leader for a read index on behalf of a local read. */
export interface ReadIndexRequest extends Base {
  readonly type: 'readIndex';
  readonly requestId: string;
}

export interface ReadIndexResponse extends Base {
  readonly type: 'readIndexResp';
  readonly requestId: string;
  readonly index: number;
  readonly reject: boolean;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

export type MessageType = Message['type'];
