/**
 * The coordinator's state machine for one transaction, pure in the style of
 * etcd-io/raft: `step(event)` takes what happened and returns the effects to
 * perform (CAS writes, calls to participants, a timer, replies to clients).
 * No I/O, no timers, no clock: time comes in with the events.
 *
 * It is a reconciler. It holds (1) what the store is known to hold, learned
 * only from the store (CAS results, watch events, a snapshot), (2) intents
 * (begin, enlist, commit, abort, deadline passed) and (3) the writes and
 * calls already in flight. After every event it derives what is still
 * missing, so a replayed or duplicate event produces nothing new, and a
 * machine built from a snapshot by another coordinator finishes whatever a
 * dead one started.
 *
 * Contract with the runtime (the one who performs effects):
 * - Perform every `write*` effect and feed its result back (`txWritten`,
 *   `voteWritten`, `decisionWritten`). If the outcome is ambiguous (store
 *   unavailable), repeat the same CAS until it answers: a CAS that already
 *   landed answers succeeded=false with `previous` equal to the value, and the
 *   machine adopts what the store holds either way.
 * - Feed store changes to `tx/{id}/...` as `voteObserved`, `decisionObserved`,
 *   `ackObserved`, and changes of `tx/{id}` as `txObserved`. Feed only values
 *   read from the store: a participant's answer to prepare is a hint, and a
 *   vote counts only once it is in the store (the commit point).
 * - `sendPrepare` / `sendDecision` are hints: failures need no report (the
 *   participant watches the store); retry them with backoff at will.
 * - Fire `deadlineReached` when a `setTimer` comes due.
 *
 * Its events, effects and replies are declared in machine-types.ts.
 */
import { assert } from '../../lib/assert.js';
import {
  PROTOCOL_LIMITS,
  decide,
  decisionKey,
  decodeDecision,
  decodeTxRecord,
  decodeVote,
  encodeDecision,
  encodeTxRecord,
  encodeVote,
  frozenNames,
  makeVote,
  txKey,
  verdictOf,
  voteKey,
  type Decision,
  type Participant,
  type TxRecord,
  type TxSnapshot,
  type Verdict,
  type Vote,
  type VoteValue,
} from '../protocol/index.js';
import type { CoordinatorEffect, CoordinatorErrorCode, CoordinatorEvent, CoordinatorMachineOptions, CoordinatorReply, CoordinatorView, RequestId } from './machine-types.js';

export type { CoordinatorEffect, CoordinatorErrorCode, CoordinatorEvent, CoordinatorMachineOptions, CoordinatorReply, CoordinatorView, RequestId } from './machine-types.js';

const DEADLINE_REASON = 'no vote before the deadline';
const ABORT_REASON = 'aborted by request';

export class CoordinatorMachine {
  readonly id: string;
  private readonly coordinatorId: string;
  private readonly maxParticipants: number;
  private readonly maxRememberedRequests: number;

  // (1) What the store holds, as far as this machine has seen.
  private tx: { raw: string; record: TxRecord } | null;
  private readonly votes = new Map<string, Vote>();
  private decision: Decision | undefined;
  private readonly acks = new Set<string>();

  // (2) Intents.
  private beginRecord: TxRecord | undefined;
  private readonly beginWaiters: RequestId[] = [];
  /** Enlists not yet answered, in arrival order. */
  private readonly enlists = new Map<RequestId, Participant>();
  private readonly commitWaiters: RequestId[] = [];
  private readonly abortWaiters: RequestId[] = [];
  private commitWanted = false;
  private abortReason: string | undefined;
  private deadlinePassed = false;
  private recovering = false;
  private readonly seenRequests = new Set<RequestId>();

  // (3) Work in flight or done once.
  /** Invariant: at most one write of `tx/{id}` in flight (each is a CAS on the last known text). */
  private txWrite: { expected: string | null; value: string } | undefined;
  private readonly voteWrites = new Set<string>();
  private decisionWrite = false;
  /** The value of the decision write in flight; meaningful only while `decisionWrite`. */
  private decisionInFlight: Decision | undefined;
  private readonly prepareSent = new Set<string>();
  private readonly decisionSent = new Set<string>();
  private timerAtMs: number | undefined;
  private finishedEmitted = false;

  constructor(snapshot: TxSnapshot, options: CoordinatorMachineOptions) {
    assert(options.coordinatorId.length > 0, 'coordinatorId must not be empty');
    this.id = snapshot.id;
    this.coordinatorId = options.coordinatorId;
    this.maxParticipants = options.maxParticipants ?? 32;
    assert(this.maxParticipants >= 1 && this.maxParticipants <= PROTOCOL_LIMITS.maxParticipants, 'maxParticipants out of range');
    this.maxRememberedRequests = options.maxRememberedRequests ?? 1_024;
    txKey(this.id); // validates the id
    this.tx = snapshot.tx === null ? null : { raw: snapshot.tx.raw, record: snapshot.tx.record };
    for (const [p, v] of snapshot.votes) this.votes.set(p, v);
    this.decision = snapshot.decision;
    for (const p of snapshot.acks.keys()) this.acks.add(p);
    this.checkDecisionMatchesVotes();
  }

  /** A machine for a transaction the store does not hold yet (begin). */
  static fresh(id: string, options: CoordinatorMachineOptions): CoordinatorMachine {
    return new CoordinatorMachine({ id, tx: null, votes: new Map(), decision: undefined, acks: new Map(), revision: 0 }, options);
  }

  view(): CoordinatorView {
    return { id: this.id, record: this.tx?.record ?? null, raw: this.tx?.raw ?? null, votes: this.votes, decision: this.decision, acks: this.acks, verdict: this.verdict() };
  }

  step(event: CoordinatorEvent): CoordinatorEffect[] {
    const early: CoordinatorEffect[] = [];
    switch (event.type) {
      case 'begin':
        if (!this.firstSight(event.requestId)) return [];
        assert(event.record.state === 'active', 'begin needs an active record');
        if (this.tx === null && this.beginRecord === undefined) {
          encodeTxRecord(event.record); // validates before anything is written
          if (event.record.participants.length > this.maxParticipants) {
            early.push(this.error(event.requestId, 'too_many_participants', `at most ${this.maxParticipants} participants`));
            break;
          }
          this.beginRecord = event.record;
        }
        this.beginWaiters.push(event.requestId);
        break;
      case 'enlist':
        if (!this.firstSight(event.requestId)) return [];
        this.enlists.set(event.requestId, event.participant);
        break;
      case 'commitRequested':
        if (!this.firstSight(event.requestId)) return [];
        this.commitWanted = true;
        this.commitWaiters.push(event.requestId);
        this.noteTime(event.nowMs);
        break;
      case 'abortRequested':
        if (!this.firstSight(event.requestId)) return [];
        this.abortReason ??= event.reason ?? ABORT_REASON;
        this.abortWaiters.push(event.requestId);
        break;
      case 'recover':
        this.recovering = true;
        this.noteTime(event.nowMs);
        break;
      case 'deadlineReached':
        this.timerAtMs = undefined;
        this.noteTime(event.nowMs);
        break;
      case 'txWritten':
        if (this.txWrite?.value !== event.value) return []; // stale or replayed
        this.txWrite = undefined;
        this.adoptTx(event.succeeded ? event.value : event.previous);
        break;
      case 'txObserved':
        if (this.txWrite === undefined) this.adoptTx(event.raw);
        // While a write is in flight its CAS result will report the same change.
        break;
      case 'voteWritten':
        if (!this.voteWrites.delete(event.participant)) return [];
        if (event.succeeded) this.adoptVote(event.participant, makeVote('no', this.coordinatorId, this.fillReason()));
        else if (event.previous !== null) this.adoptVote(event.participant, decodeVote(event.previous));
        break;
      case 'voteObserved':
        this.adoptVote(event.participant, event.vote);
        break;
      case 'decisionWritten':
        if (!this.decisionWrite) return [];
        this.decisionWrite = false;
        if (event.succeeded) this.adoptDecision(this.pendingDecisionValue());
        else if (event.previous !== null) this.adoptDecision(decodeDecision(event.previous));
        break;
      case 'decisionObserved':
        this.adoptDecision(event.decision);
        break;
      case 'ackObserved':
        this.acks.add(event.participant);
        break;
    }
    return [...early, ...this.drive()];
  }

  // -------------------------------------------------------------------------
  // Learning from the store

  private adoptTx(raw: string | null): void {
    if (raw === null) {
      this.tx = null;
      return;
    }
    if (this.tx?.raw === raw) return;
    const record = decodeTxRecord(raw);
    if (this.tx !== null && this.tx.record.state === 'preparing') {
      // Invariant: the frozen record never changes (docs/API.md, "The 2PC key layout": the CAS to preparing freezes the list).
      assert(false, `tx ${this.id}: frozen record changed in the store`);
    }
    this.tx = { raw, record };
    this.checkDecisionMatchesVotes();
  }

  private adoptVote(participant: string, vote: Vote): void {
    const known = this.votes.get(participant);
    if (known !== undefined) {
      // Invariant: a vote key is written once, by its first writer, forever.
      assert(known.vote === vote.vote && known.by === vote.by, `tx ${this.id}: vote of ${participant} changed`);
      return;
    }
    this.votes.set(participant, vote);
    this.checkDecisionMatchesVotes();
  }

  private adoptDecision(decision: Decision): void {
    // Invariant: a decision never changes.
    assert(this.decision === undefined || this.decision === decision, `tx ${this.id}: decision changed`);
    this.decision = decision;
    this.checkDecisionMatchesVotes();
  }

  /** Invariant (stable decisions): the decision key only ever records what the votes say. */
  private checkDecisionMatchesVotes(): void {
    if (this.decision === undefined) return;
    const frozen = this.frozenNames();
    if (frozen === null) return;
    const byVotes = decide(frozen, this.votes);
    assert(byVotes === 'pending' || byVotes === this.decision, `tx ${this.id}: decision ${this.decision} contradicts the votes (${byVotes})`);
  }

  // -------------------------------------------------------------------------
  // Deriving effects

  private drive(): CoordinatorEffect[] {
    if (this.tx === null) return this.driveAbsent();
    const out: CoordinatorEffect[] = [];
    const { record } = this.tx;
    for (const rid of this.beginWaiters.splice(0)) {
      out.push({ type: 'reply', requestId: rid, reply: { kind: 'begun', id: this.id, state: record.state, deadline: record.deadline } });
    }
    this.beginRecord = undefined;
    if (record.state === 'active') out.push(...this.driveActive(record));
    else out.push(...this.drivePreparing(record));
    return out;
  }

  private driveAbsent(): CoordinatorEffect[] {
    if (this.beginRecord !== undefined) {
      if (this.txWrite === undefined) {
        const value = encodeTxRecord(this.beginRecord);
        this.txWrite = { expected: null, value };
        return [{ type: 'writeTx', key: txKey(this.id), expected: null, value }];
      }
      return []; // everything else waits for the begin
    }
    const out: CoordinatorEffect[] = [];
    const waiting = [...this.beginWaiters.splice(0), ...this.enlists.keys(), ...this.commitWaiters.splice(0), ...this.abortWaiters.splice(0)];
    this.enlists.clear();
    for (const rid of waiting) out.push(this.error(rid, 'tx_not_found', `no transaction ${this.id}`));
    return out;
  }

  private driveActive(record: TxRecord): CoordinatorEffect[] {
    const out: CoordinatorEffect[] = [];
    const newcomers: Participant[] = [];
    for (const [rid, p] of this.enlists) {
      const member = record.participants.find((m) => m.name === p.name) ?? newcomers.find((m) => m.name === p.name);
      if (member !== undefined && member.url !== p.url) {
        this.enlists.delete(rid);
        out.push(this.error(rid, 'participant_conflict', `participant ${p.name} is enlisted with url ${member.url}`));
      } else if (member !== undefined && record.participants.includes(member)) {
        this.enlists.delete(rid);
        out.push({ type: 'reply', requestId: rid, reply: { kind: 'enlisted', id: this.id, participant: member } });
      } else if (member === undefined && record.participants.length + newcomers.length >= this.maxParticipants) {
        this.enlists.delete(rid);
        out.push(this.error(rid, 'too_many_participants', `at most ${this.maxParticipants} participants`));
      } else if (member === undefined) {
        newcomers.push(p);
      }
      // else: a duplicate of a newcomer in this batch; answered when the write lands
    }
    if (this.txWrite === undefined && this.tx !== null) {
      // Enlists that arrived first are written first; the freeze follows on the next turn.
      if (newcomers.length > 0) {
        out.push(this.writeTx({ ...record, participants: [...record.participants, ...newcomers] }));
      } else if (this.commitWanted || this.abortReason !== undefined || this.deadlinePassed) {
        out.push(this.writeTx({ ...record, state: 'preparing' }, this.abortVote(record)));
      }
    }
    out.push(...this.armTimer(record));
    return out;
  }

  private drivePreparing(record: TxRecord): CoordinatorEffect[] {
    const out: CoordinatorEffect[] = [];
    for (const [rid, p] of this.enlists) {
      const member = record.participants.find((m) => m.name === p.name && m.url === p.url);
      out.push(
        member !== undefined
          ? { type: 'reply', requestId: rid, reply: { kind: 'enlisted', id: this.id, participant: member } }
          : this.error(rid, 'tx_not_active', `transaction ${this.id} is no longer active: commit has started`),
      );
    }
    this.enlists.clear();
    const verdict = this.verdict();
    if (verdict === 'pending') return [...out, ...this.driveUndecided(record)];
    return [...out, ...this.driveDecided(record, verdict)];
  }

  private driveUndecided(record: TxRecord): CoordinatorEffect[] {
    const out: CoordinatorEffect[] = [];
    const fill = this.abortReason !== undefined || this.deadlinePassed;
    if (record.participants.length === 0) {
      // Nothing can vote: the decision key is the outcome (see `decide`). Abort wins over commit here,
      // as a "no" vote would.
      if (!this.decisionWrite && (fill || this.commitWanted)) out.push(this.writeDecision(fill ? 'abort' : 'commit'));
    } else if (fill) {
      // docs/API.md, "The 2PC key layout": at the deadline (or on abort) every missing vote is filled with "no" by CAS create-if-absent.
      // A "yes" that landed first wins, and the decision follows whatever the store holds.
      for (const p of record.participants) {
        if (this.votes.has(p.name) || this.voteWrites.has(p.name)) continue;
        this.voteWrites.add(p.name);
        out.push({ type: 'writeVote', key: voteKey(this.id, p.name), participant: p.name, value: encodeVote(makeVote('no', this.coordinatorId, this.fillReason())), guard: this.frozenRaw() });
      }
    } else if (this.commitWanted || this.recovering) {
      // Prepare goes to all participants at once; each answers by writing its vote key.
      for (const p of record.participants) {
        if (this.votes.has(p.name) || this.prepareSent.has(p.name)) continue;
        this.prepareSent.add(p.name);
        out.push({ type: 'sendPrepare', txId: this.id, participant: p, deadline: record.deadline });
      }
    }
    out.push(...this.armTimer(record));
    return out;
  }

  private driveDecided(record: TxRecord, verdict: Decision): CoordinatorEffect[] {
    const out: CoordinatorEffect[] = [];
    // The commit point is the votes in the store: the client hears the outcome now, before the decision key.
    const outcome = this.outcomeReply(record, verdict);
    for (const rid of this.commitWaiters.splice(0)) out.push({ type: 'reply', requestId: rid, reply: outcome });
    for (const rid of this.abortWaiters.splice(0)) {
      out.push(verdict === 'abort' ? { type: 'reply', requestId: rid, reply: outcome } : this.error(rid, 'already_committed', `transaction ${this.id} is committed`));
    }
    if (this.decision === undefined) {
      if (!this.decisionWrite) out.push(this.writeDecision(verdict));
      return out;
    }
    // Participants hear the decision once it is recorded, so an ack never precedes the decision key.
    for (const p of record.participants) {
      if (this.acks.has(p.name) || this.decisionSent.has(p.name)) continue;
      this.decisionSent.add(p.name);
      out.push({ type: 'sendDecision', txId: this.id, participant: p, decision: this.decision });
    }
    if (!this.finishedEmitted && record.participants.every((p) => this.acks.has(p.name))) {
      this.finishedEmitted = true;
      out.push({ type: 'finished', txId: this.id, decision: this.decision });
    }
    return out;
  }

  // -------------------------------------------------------------------------
  // Helpers

  private verdict(): Verdict {
    return verdictOf(this.tx?.record, this.votes, this.decision);
  }

  private frozenNames(): string[] | null {
    return frozenNames(this.tx?.record);
  }

  private writeTx(record: TxRecord, withVote?: Extract<CoordinatorEffect, { type: 'writeTx' }>['withVote']): CoordinatorEffect {
    assert(this.tx !== null && this.txWrite === undefined, 'writeTx needs a known record and no write in flight');
    const value = encodeTxRecord(record);
    this.txWrite = { expected: this.tx.raw, value };
    const e = { type: 'writeTx', key: txKey(this.id), expected: this.tx.raw, value } as const;
    return withVote === undefined ? e : { ...e, withVote };
  }

  /** An explicit abort freezes with the first participant's "no" in the same txn (see `writeTx`). */
  private abortVote(record: TxRecord): Extract<CoordinatorEffect, { type: 'writeTx' }>['withVote'] {
    const first = record.participants[0];
    if (this.abortReason === undefined || first === undefined || this.votes.has(first.name) || this.voteWrites.has(first.name)) return undefined;
    this.voteWrites.add(first.name);
    return { participant: first.name, key: voteKey(this.id, first.name), value: encodeVote(makeVote('no', this.coordinatorId, this.fillReason())) };
  }

  private writeDecision(decision: Decision): CoordinatorEffect {
    this.decisionWrite = true;
    this.decisionInFlight = decision;
    return { type: 'writeDecision', key: decisionKey(this.id), decision, value: encodeDecision(decision), guard: this.frozenRaw() };
  }

  /** Votes are filled and decisions written only on a frozen record (the commit rule). */
  private frozenRaw(): string {
    assert(this.tx !== null && this.tx.record.state === 'preparing', `tx ${this.id}: a vote fill or decision needs the frozen record`);
    return this.tx.raw;
  }

  private pendingDecisionValue(): Decision {
    assert(this.decisionInFlight !== undefined, 'decision write result without a decision in flight');
    return this.decisionInFlight;
  }

  private armTimer(record: TxRecord): CoordinatorEffect[] {
    if (this.deadlinePassed || this.timerAtMs !== undefined) return [];
    this.timerAtMs = record.deadline;
    return [{ type: 'setTimer', atMs: record.deadline }];
  }

  private noteTime(nowMs: number): void {
    const deadline = this.tx?.record.deadline ?? this.beginRecord?.deadline;
    if (deadline !== undefined && nowMs >= deadline) this.deadlinePassed = true;
  }

  private fillReason(): string {
    return this.abortReason ?? DEADLINE_REASON;
  }

  private outcomeReply(record: TxRecord, verdict: Decision): CoordinatorReply {
    const votes: Record<string, VoteValue | null> = {};
    let reason: string | undefined;
    for (const p of record.participants) {
      const v = this.votes.get(p.name);
      votes[p.name] = v?.vote ?? null;
      if (reason === undefined && v?.vote === 'no') {
        reason = `${p.name} ${v.by === p.name ? 'voted no' : `vote filled with no by ${v.by}`}${v.reason === undefined ? '' : `: ${v.reason}`}`;
      }
    }
    if (verdict === 'abort' && reason === undefined) reason = this.abortReason ?? 'decision recorded as abort';
    const outcome = verdict === 'commit' ? 'committed' : 'aborted';
    const base = { kind: 'outcome' as const, id: this.id, outcome, votes } as const;
    return verdict === 'abort' && reason !== undefined ? { ...base, reason } : base;
  }

  private error(requestId: RequestId, code: CoordinatorErrorCode, message: string): CoordinatorEffect {
    return { type: 'reply', requestId, reply: { kind: 'error', code, message } };
  }

  /** True the first time a request id is seen; replays of the same request are ignored. */
  private firstSight(requestId: RequestId): boolean {
    if (this.seenRequests.has(requestId)) return false;
    this.seenRequests.add(requestId);
    if (this.seenRequests.size > this.maxRememberedRequests) {
      const oldest = this.seenRequests.values().next().value;
      if (oldest !== undefined) this.seenRequests.delete(oldest);
    }
    return true;
  }
}
