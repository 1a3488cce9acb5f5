/**
 * The participant's state machine for one transaction, pure like the
 * coordinator's: `step(event)` returns effects, and the runtime performs them
 * and feeds their results back. It is a reconciler over (1) the durable log
 * record (as last confirmed on disk), (2) what the store holds (our vote key,
 * the decision), (3) intents (work received, prepare asked, recovery) and
 * (4) work in flight.
 *
 * The order that makes it safe (docs/API.md, "Participant endpoints"; issue 5):
 *
 *   work     -> logWork                                  (durable before it is accepted)
 *   prepare  -> validate (service callback) -> logVote   (durable BEFORE the vote is sent)
 *            -> writeVote (CAS create-if-absent)         (first writer wins, forever)
 *   decision -> apply (service callback) -> logApplied -> writeAck -> logAcked
 *
 * A participant that voted "no", or whose vote key holds a "no" (filled by a
 * coordinator at the deadline), or that sees an abort decision, aborts at
 * once: a commit is impossible then. A "yes" voter waits for the decision;
 * it learns it from the store (watch), from the coordinator's hint, or, past
 * the deadline, by helping decide (`helpDecide`: the runtime runs the
 * coordinator's machine from a store snapshot and fills the missing votes).
 *
 * Recovery (`recover`, at start, for every unfinished log record, with the
 * store read): work without a vote is aborted and voted "no"; a logged vote
 * is re-asserted by CAS (a stored "no" against our "yes" means abort); an
 * applied decision is acknowledged if it was not. `restoreLocks` asks the
 * service to take back the locks of an in-doubt "yes" before it serves
 * anything else: they stay held until the decision. A decision that reaches
 * such a record before its `recover` waits for it (docs/CHAOS.md, finding 6).
 *
 * The service's commit and abort callbacks must be idempotent: a crash
 * between applying and logging replays them.
 *
 * Runtime contract: start the effects of one step in the order listed
 * (`restoreLocks` before an `apply`; a reply after the write it reports),
 * feed every result back as its event, and repeat a store write whose
 * outcome is unknown (both writes are CAS create-if-absent, so a repeat
 * reads back what landed).
 */
import { assert } from '../lib/assert.js';
import { ackKey, decodeVote, encodeAck, encodeVote, makeVote, voteKey, type Decision, type JsonValue, type Vote, type VoteValue } from '../coordinator/protocol/index.js';
import type { LogRecord } from './log.js';

type RequestId = string;

export interface ParticipantMachineOptions {
  /** This participant's name: its vote and ack keys, and `by` in its votes. */
  readonly name: string;
}

export type ParticipantEvent =
  | { readonly type: 'workReceived'; readonly requestId: RequestId; readonly work: JsonValue }
  /** From the coordinator's hint call (with a requestId to answer) or the store watch (without). */
  | { readonly type: 'prepareRequested'; readonly requestId?: RequestId; readonly deadline?: number }
  /** The service's prepare callback answered (a thrown error is a "no" with its message). */
  | { readonly type: 'validated'; readonly vote: VoteValue; readonly reason?: string }
  /** A log* effect is durable; `record` is the record now on disk. */
  | { readonly type: 'logged'; readonly record: LogRecord }
  | { readonly type: 'voteWritten'; readonly succeeded: boolean; readonly previous: string | null }
  | { readonly type: 'decisionObserved'; readonly decision: Decision }
  /** The service's commit or abort callback finished. */
  | { readonly type: 'applied'; readonly decision: Decision }
  /** The ack CAS answered (created, or already there). */
  | { readonly type: 'ackWritten' }
  /** At start, for a logged transaction, with what the store holds now. */
  | { readonly type: 'recover'; readonly nowMs: number; readonly stored: { readonly vote: Vote | null; readonly decision: Decision | null; readonly deadline: number | null } }
  | { readonly type: 'deadlineReached'; readonly nowMs: number }
  /**
   * The transaction froze without us, or committed without our "yes": the
   * application gave us work but never enlisted us. Our work can never count,
   * so it is aborted locally, and no ack is written (we are not a participant).
   */
  | { readonly type: 'excluded' };

/** The event recovery steps for each unfinished log record. */
export type RecoverEvent = Extract<ParticipantEvent, { readonly type: 'recover' }>;

export type ParticipantReply =
  | { readonly kind: 'workAccepted'; readonly txId: string }
  | { readonly kind: 'vote'; readonly txId: string; readonly vote: VoteValue }
  | { readonly kind: 'error'; readonly code: 'tx_not_active' | 'work_conflict'; readonly message: string };

export type ParticipantEffect =
  | { readonly type: 'logWork'; readonly work: JsonValue }
  /** Call the service's prepare(txId, work): validate and lock; answer with `validated`. */
  | { readonly type: 'validate'; readonly work: JsonValue }
  | { readonly type: 'logVote'; readonly vote: VoteValue; readonly reason?: string }
  /** CAS create-if-absent of our vote; answer with `voteWritten`. */
  | { readonly type: 'writeVote'; readonly key: string; readonly value: string }
  /** Call the service's commit(txId) or abort(txId); answer with `applied`. */
  | { readonly type: 'apply'; readonly decision: Decision }
  | { readonly type: 'logApplied'; readonly decision: Decision }
  /** CAS create-if-absent of the ack; answer with `ackWritten`. */
  | { readonly type: 'writeAck'; readonly key: string; readonly value: string }
  | { readonly type: 'logAcked' }
  /** Recovery: the service re-takes the locks of a prepared transaction before serving anything else. */
  | { readonly type: 'restoreLocks'; readonly work: JsonValue }
  | { readonly type: 'setTimer'; readonly atMs: number }
  /** Past the deadline with no decision: run the coordinator's machine from the store to decide. */
  | { readonly type: 'helpDecide' }
  | { readonly type: 'reply'; readonly requestId: RequestId; readonly reply: ParticipantReply };

export type ParticipantPhase = 'new' | 'received' | 'prepared' | 'refused' | 'committed' | 'aborted';

/** The phase a log record shows: what an operator's view lists. */
export function phaseOf(record: LogRecord | undefined): ParticipantPhase {
  if (record === undefined) return 'new';
  if (record.applied !== undefined) return record.applied.decision === 'commit' ? 'committed' : 'aborted';
  if (record.vote !== undefined) return record.vote.vote === 'yes' ? 'prepared' : 'refused';
  return 'received';
}

/** In doubt: voted yes, decision not applied. Only these hold locks across a restart. */
export function isInDoubt(record: LogRecord | undefined): boolean {
  return record?.vote?.vote === 'yes' && record.applied === undefined;
}

const NO_WORK_REASON = 'no work received for this transaction';
const RESTART_REASON = 'participant restarted before the prepare completed';

export class ParticipantTxMachine {
  readonly txId: string;
  private readonly name: string;

  // (1) Durable: the record as last confirmed on disk.
  private record: LogRecord | undefined;
  // (2) The store.
  private storedVote: Vote | undefined;
  private decision: Decision | undefined;
  private ackStored = false;
  /** Not a participant of the frozen transaction: abort locally, ignore a commit decision. */
  private excluded = false;
  private deadline: number | undefined;
  // (3) Intents.
  private pendingWork: { work: JsonValue; waiters: RequestId[] } | undefined;
  private prepareWanted = false;
  private recovering = false;
  /**
   * Built over an in-doubt "yes" from the log: a restart, so the service's
   * locks died with the process and only `recover` takes them back. The watch
   * may bring the decision first; applying an abort then would release
   * nothing, and the locks restored after it would be held for good.
   */
  private readonly builtInDoubt: boolean;
  private deadlinePassed = false;
  private readonly prepareWaiters: RequestId[] = [];
  // (4) In flight.
  /** Invariant: at most one log write in flight per transaction, so records only move forward. */
  private logging = false;
  private validating = false;
  private validated: { vote: VoteValue; reason?: string } | undefined;
  private voteWriting = false;
  private applying: Decision | undefined;
  private appliedUnlogged: Decision | undefined;
  private ackWriting = false;
  private timerAtMs: number | undefined;
  private helpAsked = false;

  constructor(txId: string, record: LogRecord | undefined, options: ParticipantMachineOptions) {
    assert(record === undefined || record.txId === txId, 'record of another transaction');
    voteKey(txId, options.name); // validates id and name
    this.txId = txId;
    this.name = options.name;
    this.record = record;
    this.builtInDoubt = isInDoubt(record);
  }

  get logRecord(): LogRecord | undefined {
    return this.record;
  }

  get phase(): ParticipantPhase {
    return phaseOf(this.record);
  }

  /** What the store is known to hold about us. */
  get known(): { readonly storedVote: Vote | undefined; readonly decision: Decision | undefined; readonly acked: boolean } {
    return { storedVote: this.storedVote, decision: this.decision, acked: this.ackStored || this.record?.ackedAt !== undefined };
  }

  step(event: ParticipantEvent): ParticipantEffect[] {
    const early: ParticipantEffect[] = [];
    switch (event.type) {
      case 'workReceived':
        early.push(...this.onWork(event.requestId, event.work));
        break;
      case 'prepareRequested':
        this.prepareWanted = true;
        if (event.requestId !== undefined && !this.prepareWaiters.includes(event.requestId)) this.prepareWaiters.push(event.requestId);
        if (event.deadline !== undefined) this.deadline ??= event.deadline;
        break;
      case 'validated':
        if (!this.validating) return [];
        this.validating = false;
        this.validated = event.reason === undefined ? { vote: event.vote } : { vote: event.vote, reason: event.reason };
        break;
      case 'logged':
        if (!this.logging) return [];
        early.push(...this.onLogged(event.record));
        break;
      case 'voteWritten':
        if (!this.voteWriting) return [];
        this.voteWriting = false;
        this.onVoteWritten(event.succeeded, event.previous);
        break;
      case 'decisionObserved':
        this.adoptDecision(event.decision);
        break;
      case 'applied':
        if (this.applying !== event.decision) return [];
        this.applying = undefined;
        this.appliedUnlogged = event.decision;
        break;
      case 'ackWritten':
        if (!this.ackWriting) return [];
        this.ackWriting = false;
        this.ackStored = true;
        break;
      case 'recover':
        early.push(...this.onRecover(event));
        break;
      case 'excluded':
        this.excluded = true;
        break;
      case 'deadlineReached':
        this.timerAtMs = undefined;
        this.helpAsked = false; // each deadline event past the deadline may ask for help once
        this.noteTime(event.nowMs);
        break;
    }
    return [...early, ...this.drive()];
  }

  // -------------------------------------------------------------------------
  // Events

  private onWork(requestId: RequestId, work: JsonValue): ParticipantEffect[] {
    const reply = (r: ParticipantReply): ParticipantEffect[] => [{ type: 'reply', requestId, reply: r }];
    if (this.record?.vote !== undefined || this.record?.applied !== undefined || this.validated !== undefined || this.validating || this.localAbortKnown()) {
      return reply({ kind: 'error', code: 'tx_not_active', message: `transaction ${this.txId} is already prepared or decided` });
    }
    const have = this.record?.work ?? this.pendingWork?.work;
    if (have !== undefined && have !== null && JSON.stringify(have) !== JSON.stringify(work)) {
      return reply({ kind: 'error', code: 'work_conflict', message: `transaction ${this.txId} already has different work` });
    }
    if (this.record !== undefined) return reply({ kind: 'workAccepted', txId: this.txId });
    this.pendingWork ??= { work, waiters: [] };
    this.pendingWork.waiters.push(requestId);
    return [];
  }

  private onLogged(record: LogRecord): ParticipantEffect[] {
    assert(record.txId === this.txId, 'logged record of another transaction');
    this.logging = false;
    this.record = record;
    const out: ParticipantEffect[] = [];
    if (this.pendingWork !== undefined && record.work !== null) {
      for (const rid of this.pendingWork.waiters) out.push({ type: 'reply', requestId: rid, reply: { kind: 'workAccepted', txId: this.txId } });
      this.pendingWork = undefined;
    }
    if (record.vote !== undefined) this.validated = undefined;
    if (record.applied !== undefined) this.appliedUnlogged = undefined;
    return out;
  }

  private onVoteWritten(succeeded: boolean, previous: string | null): void {
    const mine = this.record?.vote;
    assert(mine !== undefined, 'vote written without a logged vote');
    if (succeeded) this.adoptStoredVote(makeVote(mine.vote, this.name, mine.reason));
    else if (previous !== null) this.adoptStoredVote(decodeVote(previous));
    // succeeded=false with no previous: the key vanished (GC); the next drive writes it again.
  }

  private onRecover(event: Extract<ParticipantEvent, { type: 'recover' }>): ParticipantEffect[] {
    this.recovering = true; // a restart's locks are restored below, before any apply (same step)
    if (event.stored.deadline !== null) this.deadline = event.stored.deadline;
    if (event.stored.vote !== null) this.adoptStoredVote(event.stored.vote);
    if (event.stored.decision !== null) this.adoptDecision(event.stored.decision);
    this.noteTime(event.nowMs);
    const record = this.record;
    // Locks of an in-doubt "yes" stay held until the decision: the service takes them back first.
    if (record !== undefined && isInDoubt(record) && record.work !== null) return [{ type: 'restoreLocks', work: record.work }];
    return [];
  }

  // -------------------------------------------------------------------------
  // Learning from the store

  private adoptStoredVote(vote: Vote): void {
    if (this.storedVote !== undefined) {
      assert(this.storedVote.vote === vote.vote && this.storedVote.by === vote.by, `tx ${this.txId}: our vote key changed`);
      return;
    }
    // Invariant: only we write a "yes" for us, and only after logging it.
    assert(vote.vote === 'no' || this.record?.vote?.vote === 'yes', `tx ${this.txId}: the store holds a yes we never logged`);
    this.storedVote = vote;
  }

  private adoptDecision(decision: Decision): void {
    // A commit without us says nothing about our work (the runtime should not even report it).
    if (this.excluded && decision === 'commit') return;
    assert(this.decision === undefined || this.decision === decision, `tx ${this.txId}: decision changed`);
    this.decision = decision;
  }

  private localAbortKnown(): boolean {
    return this.excluded || this.decision === 'abort' || this.storedVote?.vote === 'no' || this.record?.vote?.vote === 'no';
  }

  private noteTime(nowMs: number): void {
    if (this.deadline !== undefined && nowMs >= this.deadline) this.deadlinePassed = true;
  }

  // -------------------------------------------------------------------------
  // Deriving effects

  private drive(): ParticipantEffect[] {
    return [...this.driveWork(), ...this.driveVote(), ...this.driveReplies(), ...this.driveApply(), ...this.driveAck(), ...this.driveDeadline()];
  }

  private driveWork(): ParticipantEffect[] {
    if (this.pendingWork === undefined || this.logging || this.record !== undefined) return [];
    this.logging = true;
    return [{ type: 'logWork', work: this.pendingWork.work }];
  }

  private driveVote(): ParticipantEffect[] {
    const out: ParticipantEffect[] = [];
    const record = this.record;
    if (record?.vote === undefined && !this.localAbortKnown()) {
      const wanted = this.prepareWanted || this.recovering;
      const workArriving = this.pendingWork !== undefined && record === undefined;
      if (wanted && !workArriving && !this.validating && this.validated === undefined) {
        if (record !== undefined && record.work !== null && !this.recovering) {
          this.validating = true;
          out.push({ type: 'validate', work: record.work });
        } else {
          // No work, or a restart lost the service's locks mid-prepare: the only safe vote is "no".
          this.validated = { vote: 'no', reason: record === undefined || record.work === null ? NO_WORK_REASON : RESTART_REASON };
        }
      }
      if (this.validated !== undefined && !this.logging) {
        this.logging = true;
        const v = this.validated;
        out.push(v.reason === undefined ? { type: 'logVote', vote: v.vote } : { type: 'logVote', vote: v.vote, reason: v.reason });
      }
    }
    // The vote goes to the store only once it is durable here; no need once the decision is known,
    // or once a decision is applied here (then the store has the decision, or a coordinator fills the
    // missing "no" at the deadline; re-asserting it after a restart could recreate a key that GC
    // already removed).
    if (this.record?.vote !== undefined && this.record.applied === undefined && this.storedVote === undefined && !this.voteWriting && this.decision === undefined) {
      const mine = this.record.vote;
      this.voteWriting = true;
      out.push({ type: 'writeVote', key: voteKey(this.txId, this.name), value: encodeVote(makeVote(mine.vote, this.name, mine.reason)) });
    }
    return out;
  }

  private driveReplies(): ParticipantEffect[] {
    if (this.prepareWaiters.length === 0) return [];
    // Answer with the vote the store holds: that is the vote that counts.
    let vote: VoteValue | undefined = this.storedVote?.vote;
    if (vote === undefined && this.decision !== undefined) vote = this.decision === 'commit' ? 'yes' : 'no';
    if (vote === undefined) return [];
    const answer: VoteValue = vote;
    return this.prepareWaiters.splice(0).map((rid) => ({ type: 'reply', requestId: rid, reply: { kind: 'vote', txId: this.txId, vote: answer } }) as const);
  }

  private driveApply(): ParticipantEffect[] {
    const out: ParticipantEffect[] = [];
    const record = this.record;
    const target: Decision | undefined = this.excluded ? 'abort' : (this.decision ?? (this.localAbortKnown() ? 'abort' : undefined));
    const busy = this.applying !== undefined || this.appliedUnlogged !== undefined || this.validating || (this.builtInDoubt && !this.recovering);
    if (target !== undefined && record?.applied === undefined && !busy) {
      if (target === 'commit' && record === undefined) {
        // A commit for a transaction we do not know: we acked it and compacted the record long ago
        // (a late duplicate hint). Nothing to do.
      } else if (!(record === undefined && this.pendingWork !== undefined)) {
        // Invariant (atomicity): commit only over a durable yes.
        assert(target === 'abort' || record?.vote?.vote === 'yes', `tx ${this.txId}: commit without a logged yes`);
        this.applying = target;
        out.push({ type: 'apply', decision: target });
      }
    }
    if (this.appliedUnlogged !== undefined && !this.logging) {
      this.logging = true;
      out.push({ type: 'logApplied', decision: this.appliedUnlogged });
    }
    return out;
  }

  private driveAck(): ParticipantEffect[] {
    const record = this.record;
    if (record?.applied === undefined || record.ackedAt !== undefined) return [];
    if (!this.ackStored && !this.excluded) {
      if (this.ackWriting) return [];
      this.ackWriting = true;
      return [{ type: 'writeAck', key: ackKey(this.txId, this.name), value: encodeAck(record.applied.at) }];
    }
    if (this.logging) return [];
    this.logging = true;
    return [{ type: 'logAcked' }];
  }

  private driveDeadline(): ParticipantEffect[] {
    // Only an in-doubt "yes" waits: once a decision is applied (learned maybe from a hint, before a
    // restart), there is nothing left to decide.
    const waiting = isInDoubt(this.record) && this.storedVote?.vote !== 'no' && this.decision === undefined;
    if (!waiting || this.deadline === undefined) return [];
    if (this.deadlinePassed) {
      if (this.helpAsked) return [];
      this.helpAsked = true;
      return [{ type: 'helpDecide' }];
    }
    if (this.timerAtMs !== undefined) return [];
    this.timerAtMs = this.deadline;
    return [{ type: 'setTimer', atMs: this.deadline }];
  }
}
