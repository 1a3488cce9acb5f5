/**
 * Linearizable reads waiting on Raft (ReadIndex, dissertation §6.4): each
 * read gets a request id, waits for the leader to confirm its index, then
 * for this node's applied index to reach it. Every wait has a deadline; a
 * leader change fails the waiting reads at once with a retryable 503
 * (reads are idempotent), rather than holding them to their timeout.
 */
import type { Timers } from '../../lib/timers.js';
import type { ReadState } from '../raft/index.js';
import { BusyError, NoLeaderError } from './errors.js';
import { WaitTable } from './pending.js';

export class Reads {
  private readonly waits: WaitTable<string, void>;
  /** ReadIndex answers waiting for the applied index to reach theirs. */
  private awaitingApply: { requestId: string; index: number }[] = [];
  private seq = 0;

  constructor(
    timers: Timers,
    private readonly nodeId: string,
    private readonly timeoutMs: number,
  ) {
    this.waits = new WaitTable('linearizable read', timers);
  }

  /** A new read's request id and the promise that settles when it may be served. */
  start(): { requestId: string; done: Promise<void> } {
    const requestId = `${this.nodeId}:${++this.seq}`;
    return { requestId, done: this.waits.wait(requestId, this.timeoutMs) };
  }

  /** Raft could not take the read (no leader, too many pending): it fails now. */
  refuse(requestId: string, error: unknown): void {
    this.waits.reject(requestId, error);
  }

  /** The Ready's answers: confirmed reads wait for their index to be applied. */
  confirmed(states: readonly ReadState[]): void {
    for (const rs of states) {
      if (rs.rejected) this.waits.reject(rs.requestId, new BusyError('the leader has too many reads pending'));
      else this.awaitingApply.push(rs);
    }
  }

  /** Serves every confirmed read whose index is applied. */
  release(appliedIndex: number): void {
    if (this.awaitingApply.length === 0) return;
    const still: { requestId: string; index: number }[] = [];
    for (const rs of this.awaitingApply) {
      if (rs.index <= appliedIndex) this.waits.resolve(rs.requestId, undefined);
      else still.push(rs);
    }
    this.awaitingApply = still;
  }

  /** A read forwarded to the old leader may never be answered: fail them all now. */
  leaderChanged(): void {
    this.rejectAll(new NoLeaderError('leadership changed while the read waited; retry'));
  }

  rejectAll(error: unknown): void {
    this.waits.rejectAll(error);
    this.awaitingApply = [];
  }

  /** A crash: nobody is answered. */
  abandonAll(): void {
    this.waits.abandonAll();
    this.awaitingApply = [];
  }
}
