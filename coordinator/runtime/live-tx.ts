/**
 * One transaction this coordinator drives right now: its machine (once
 * loaded), the client requests waiting for answers, its timers, and the
 * bookkeeping that keeps its effects from repeating (prepare hints sent,
 * store writes in flight). Nothing here is the source of truth: the store
 * is, so a LiveTx can be dropped at any time and loaded back later.
 */
import type { CoordinatorMachine, CoordinatorReply, RequestId } from '../core/index.js';
import type { Cancel } from '../../lib/timers.js';
import type { TxWatchEvent } from '../txstore/index.js';
import type { TxSnapshot } from '../protocol/index.js';

export interface Waiter {
  readonly resolve: (r: CoordinatorReply) => void;
  readonly reject: (e: unknown) => void;
  /** Cancels the request's timeout. */
  readonly cancelTimeout: Cancel;
  /** Monotonic start, for commit latency. */
  readonly commitStartMs: number | undefined;
}

/** Most watched events buffered for a transaction whose snapshot is being read; past it, resync. */
export const MAX_BUFFERED_EVENTS = 10_000;

export class LiveTx {
  machine: CoordinatorMachine | undefined;
  /** Watched events that arrived while the snapshot was read; undefined once the machine exists. */
  buffered: TxWatchEvent[] | undefined = [];
  overflowed = false;
  /**
   * The newest store revision this machine has learned from (watched events
   * fed, snapshots adopted). A re-read snapshot older than this must not be
   * fed: it would show the record before changes the machine already saw.
   */
  knownRevision = 0;
  /**
   * The store revision of the tx record the machine holds (from its own
   * successful CAS, a snapshot, or the watch). A watched tx-record event at
   * or below it is old news: a lagging watch can deliver the record's
   * creation after the machine froze it, which must not reach the machine.
   */
  txRevision = 0;
  /**
   * The revision at which this process saw `tx/{id}` gone (collected), from
   * the watch, a snapshot or a refused guarded write. A vote, decision or ack
   * written later is an orphan (a late CAS retry recreated a collected key)
   * and must not reach the machine (docs/SIM2PC.md, `orphan-event`).
   */
  deletedRevision: number | undefined;
  loading: Promise<void> | undefined;
  readonly waiters = new Map<RequestId, Waiter>();
  /** Cancels the deadline timer, while one is set. */
  cancelDeadline: Cancel | undefined;
  /** Cancels the wait for acks after the decision, while one is set. */
  cancelAckWait: Cancel | undefined;
  /** Decision hints waiting to see whether the participant acks by itself. */
  readonly decisionHintTimers = new Set<Cancel>();
  /** Store writes in flight. */
  inflight = 0;
  gone = false;
  preparesAnswered = 0;
  /** Participants already sent a prepare hint (early, or on the machine's effect): one each. */
  readonly hinted = new Set<string>();
  /** Ack times seen (watched, or in a snapshot), by participant: what a compacted record keeps. */
  readonly ackTimes = new Map<string, number>();

  constructor(readonly id: string) {}

  /**
   * The transaction as this process has seen it, in the shape garbage
   * collection takes (gc.ts `collectSnapshot`), when it is finished: record,
   * decision, and every frozen participant's ack with its time. It saves the
   * collector its read; the collection txn is still guarded by the record's
   * text and the decision, and the caller reads afresh when it races.
   */
  seenSnapshot(): TxSnapshot | undefined {
    const v = this.machine?.view();
    if (v === undefined || v.raw === null || v.record === null || v.decision === undefined) return undefined;
    if (!v.record.participants.every((p) => this.ackTimes.has(p.name))) return undefined;
    return { id: this.id, tx: { raw: v.raw, record: v.record }, votes: v.votes, decision: v.decision, acks: this.ackTimes, revision: Math.max(this.knownRevision, this.txRevision) };
  }

  /**
   * Idle: nothing waits on it, nothing of its own is in flight and it is not
   * loading, so dropping it loses nothing. A loading transaction is never idle:
   * a buffered deletion (collected meanwhile) fed during the load must not drop
   * it before the request that loads it is stepped and answered tx_not_found.
   */
  get idle(): boolean {
    return this.waiters.size === 0 && this.inflight === 0 && this.loading === undefined;
  }

  clearTimers(): void {
    this.cancelDeadline?.();
    this.cancelDeadline = undefined;
    this.cancelAckWait?.();
    this.cancelAckWait = undefined;
    for (const cancel of this.decisionHintTimers) cancel();
    this.decisionHintTimers.clear();
  }
}
