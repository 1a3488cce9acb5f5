/**
 * Writes waiting on Raft (node.ts's proposal path): writes queued in one
 * event-loop turn go into the log as one batch (one fsync covers them), and
 * each waits, with a deadline, for its entry to be applied here. An entry
 * applied at a proposal's index in another term means the proposal was
 * dropped (a new leader overwrote it); a snapshot that covers it leaves its
 * outcome unknown.
 */
import { AppError } from '../../lib/errors.js';
import type { Timers } from '../../lib/timers.js';
import type { KvResult } from '../kv/index.js';
import type { ProposeResult } from '../raft/index.js';
import { BusyError, NoLeaderError, ProposalDroppedError } from './errors.js';
import { WaitTable } from './pending.js';

interface Queued {
  readonly data: string;
  readonly resolve: (r: KvResult) => void;
  readonly reject: (e: unknown) => void;
}

export interface ProposalHost {
  /** Appends the batch to the leader's log (RawNode.proposeBatch). */
  proposeBatch(data: string[]): ProposeResult;
  /** New entries are in the log: run the Ready loop. */
  proposed(batchSize: number): void;
  stopped(): boolean;
}

export interface ProposalLimits {
  /** Writes queued or waiting, past which a write is refused 503 busy. */
  readonly maxPendingProposals: number;
  readonly requestTimeoutMs: number;
}

export class Proposals {
  private queue: Queued[] = [];
  private flushScheduled = false;
  private readonly waits: WaitTable<number, KvResult>;
  /** The term each waiting proposal was appended in, by log index. */
  private readonly terms = new Map<number, number>();

  constructor(
    private readonly timers: Timers,
    private readonly limits: ProposalLimits,
    private readonly host: ProposalHost,
  ) {
    this.waits = new WaitTable('write', timers);
  }

  /** Queues a command (JSON) for the next batch; resolves with its result once applied here. */
  write(data: string): Promise<KvResult> {
    if (this.queue.length + this.waits.size >= this.limits.maxPendingProposals) {
      return Promise.reject(new BusyError(`more than ${this.limits.maxPendingProposals} writes are pending`));
    }
    return new Promise<KvResult>((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.timers.soon(() => this.flush());
      }
    });
  }

  /** Waits for the entry a proposal was appended as (a conf change) to be applied. */
  wait(index: number, term: number): Promise<KvResult> {
    this.terms.set(index, term);
    return this.waits.wait(index, this.limits.requestTimeoutMs);
  }

  /** An entry was applied: its proposal, if any, gets `result`, or is dropped when the term differs. */
  settle(index: number, term: number, result: KvResult | undefined): void {
    const proposedTerm = this.terms.get(index);
    if (proposedTerm === undefined) return;
    this.terms.delete(index);
    if (proposedTerm === term && result !== undefined) this.waits.resolve(index, result);
    else this.waits.reject(index, new ProposalDroppedError());
  }

  /** Proposals at or before `index` may or may not be in an installed snapshot: their outcome is unknown. */
  rejectThrough(index: number): void {
    for (const [i] of this.terms) {
      if (i <= index) this.waits.reject(i, new AppError('outcome_unknown', 504, 'a snapshot replaced the log; the write may or may not have been applied'));
    }
  }

  rejectAll(error: unknown): void {
    this.waits.rejectAll(error);
    for (const p of this.queue) p.reject(error);
    this.queue = [];
  }

  /** A crash: nobody is answered. */
  abandonAll(): void {
    this.waits.abandonAll();
    this.queue = [];
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.host.stopped()) return;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    // A busy log (too many uncommitted entries) takes what fits: halving until a part fits means a
    // batch larger than the room still makes progress, instead of being refused whole every time
    // (the 2PC simulation caught batched writes starving so). What does not fit is refused `busy`.
    let start = 0;
    let take = batch.length;
    while (start < batch.length) {
      const part = batch.slice(start, start + take);
      const res = this.host.proposeBatch(part.map((p) => p.data));
      if (res.ok) {
        this.awaitApplied(part, res.index, res.term);
        start += part.length;
        take = batch.length - start;
      } else if (res.code === 'busy' && take > 1) {
        take = Math.ceil(take / 2);
      } else {
        const err = res.code === 'busy' ? new BusyError('the log has too many uncommitted entries') : new NoLeaderError(`this node cannot propose: ${res.code}`);
        for (const p of batch.slice(start)) p.reject(err);
        break;
      }
    }
    if (start > 0) this.host.proposed(start);
  }

  /** Each proposal of `part`, appended ending at `lastIndex`, waits for its entry to be applied. */
  private awaitApplied(part: readonly Queued[], lastIndex: number, term: number): void {
    const first = lastIndex - part.length + 1;
    part.forEach((p, i) => {
      const index = first + i;
      this.wait(index, term).then(p.resolve, (e: unknown) => {
        this.terms.delete(index);
        p.reject(e);
      });
    });
  }
}
