/**
 * The coordinator machine's vocabulary (machine.ts has the machine and its
 * contract with the runtime): the events it takes, the effects it asks for,
 * the replies to clients, and its read-only view.
 */
import type { Decision, Participant, TxRecord, Verdict, Vote, VoteValue } from '../protocol/index.js';

export type RequestId = string;

export interface CoordinatorMachineOptions {
  /** Written as `by` in the "no" votes this coordinator fills. */
  readonly coordinatorId: string;
  /** Most participants per transaction; at most PROTOCOL_LIMITS.maxParticipants. */
  readonly maxParticipants?: number;
  /** Most request ids remembered to ignore replays. */
  readonly maxRememberedRequests?: number;
}

export type CoordinatorEvent =
  /** A client's begin; `record.state` must be 'active'. Repeated begins answer with the stored record. */
  | { readonly type: 'begin'; readonly requestId: RequestId; readonly record: TxRecord }
  | { readonly type: 'enlist'; readonly requestId: RequestId; readonly participant: Participant }
  | { readonly type: 'commitRequested'; readonly requestId: RequestId; readonly nowMs: number }
  | { readonly type: 'abortRequested'; readonly requestId: RequestId; readonly reason?: string }
  /** Take over a transaction found in the store (recovery loop, or a request for a tx this process did not begin). */
  | { readonly type: 'recover'; readonly nowMs: number }
  | { readonly type: 'deadlineReached'; readonly nowMs: number }
  /** The result of a `writeTx` effect with this `value`. */
  | { readonly type: 'txWritten'; readonly value: string; readonly succeeded: boolean; readonly previous: string | null }
  | { readonly type: 'voteWritten'; readonly participant: string; readonly succeeded: boolean; readonly previous: string | null }
  | { readonly type: 'decisionWritten'; readonly succeeded: boolean; readonly previous: string | null }
  /** `tx/{id}` changed in the store (raw text, null if deleted). */
  | { readonly type: 'txObserved'; readonly raw: string | null }
  | { readonly type: 'voteObserved'; readonly participant: string; readonly vote: Vote }
  | { readonly type: 'decisionObserved'; readonly decision: Decision }
  | { readonly type: 'ackObserved'; readonly participant: string };

export type CoordinatorErrorCode = 'tx_not_found' | 'tx_not_active' | 'already_committed' | 'participant_conflict' | 'too_many_participants';

export type CoordinatorReply =
  | { readonly kind: 'begun'; readonly id: string; readonly state: TxRecord['state']; readonly deadline: number }
  | { readonly kind: 'enlisted'; readonly id: string; readonly participant: Participant }
  | {
      readonly kind: 'outcome';
      readonly id: string;
      readonly outcome: 'committed' | 'aborted';
      /** Every frozen participant's vote; null where none was needed to decide. */
      readonly votes: Readonly<Record<string, VoteValue | null>>;
      readonly reason?: string;
    }
  | { readonly kind: 'error'; readonly code: CoordinatorErrorCode; readonly message: string };

export type CoordinatorEffect =
  /**
   * CAS on `tx/{id}`: create-if-absent when `expected` is null, else on the
   * exact value. With `withVote` (an abort freezing an active record), one txn
   * also creates that participant's "no" if absent, so no participant can
   * turn an explicit abort into a commit between the freeze and the fills;
   * if that txn fails, a plain CAS. Feed `voteWritten` (succeeded = the txn
   * created the vote) BEFORE `txWritten`.
   */
  | {
      readonly type: 'writeTx';
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
      readonly withVote?: { readonly participant: string; readonly key: string; readonly value: string };
    }
  /**
   * CAS create-if-absent of a "no" vote (deadline or abort), and of the
   * decision, each only while `tx/{id}` still holds `guard` (the frozen
   * record): garbage collection deletes these keys, and an unguarded create
   * after it would write a second, different outcome (docs/SIM2PC.md,
   * `write-after-gc`). A failed guard means "collected": feed `txObserved` null.
   */
  | { readonly type: 'writeVote'; readonly key: string; readonly participant: string; readonly value: string; readonly guard: string }
  | { readonly type: 'writeDecision'; readonly key: string; readonly decision: Decision; readonly value: string; readonly guard: string }
  | { readonly type: 'sendPrepare'; readonly txId: string; readonly participant: Participant; readonly deadline: number }
  | { readonly type: 'sendDecision'; readonly txId: string; readonly participant: Participant; readonly decision: Decision }
  /** Fire `deadlineReached` at this epoch ms. */
  | { readonly type: 'setTimer'; readonly atMs: number }
  | { readonly type: 'reply'; readonly requestId: RequestId; readonly reply: CoordinatorReply }
  /** Decision recorded and every participant acknowledged: the keys may be garbage-collected. */
  | { readonly type: 'finished'; readonly txId: string; readonly decision: Decision };

/** A read-only picture of the machine, for GET and for tests. */
export interface CoordinatorView {
  readonly id: string;
  readonly record: TxRecord | null;
  /** The record's exact stored text (what a CAS or a guard compares), null with no record. */
  readonly raw: string | null;
  readonly votes: ReadonlyMap<string, Vote>;
  readonly decision: Decision | undefined;
  readonly acks: ReadonlySet<string>;
  /** The outcome as far as the store tells: decision key, or the votes of a frozen list. */
  readonly verdict: Verdict;
}
