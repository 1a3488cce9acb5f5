/**
 * ReadIndex bookkeeping (dissertation §6.4). A read gets the leader's commit
 * index and a round number; once a majority has answered a heartbeat of that
 * round or later, the leader knows it was still leader when the read arrived,
 * and the read may be served once that index is applied.
 */
import type { NodeId } from './types.js';

export interface PendingRead {
  readonly requestId: string;
  /** Who asked: this peer, or a follower that forwarded the read. */
  readonly from: NodeId;
  readonly index: number;
  readonly seq: number;
}

export class ReadOnly {
  /** The newest round number handed out. */
  seq = 0;
  /** Invariant: ordered by seq. */
  pending: PendingRead[] = [];
  /** Reads that arrived before the leader committed an entry of its term (§6.4 step 1). */
  awaitingCommit: { requestId: string; from: NodeId }[] = [];
  /** A heartbeat round must go out for reads registered since the last one. */
  broadcastNeeded = false;

  constructor(private readonly maxPending: number) {}

  full(): boolean {
    return this.pending.length + this.awaitingCommit.length >= this.maxPending;
  }

  add(requestId: string, from: NodeId, index: number): void {
    this.pending.push({ requestId, from, index, seq: ++this.seq });
    this.broadcastNeeded = true;
  }

  /** Removes and returns the reads confirmed by a quorum that acknowledged round `ackedSeq`. */
  takeConfirmed(ackedSeq: number): PendingRead[] {
    let n = 0;
    while (n < this.pending.length && (this.pending[n] as PendingRead).seq <= ackedSeq) n++;
    return n === 0 ? [] : this.pending.splice(0, n);
  }

  clear(): void {
    this.pending = [];
    this.awaitingCommit = [];
    this.broadcastNeeded = false;
  }
}
