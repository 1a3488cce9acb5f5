/**
 * The coordinator's REST contract as the client sees it (docs/API.md,
 * "Coordinator contract"). The answer shapes are the coordinator's own types,
 * imported as types only: one definition, and a change there fails to
 * compile here instead of drifting.
 */
import type { JsonObject, JsonValue, ListedState, Participant, VoteValue } from '../coordinator/protocol/index.js';
import type { TxSummary, TxView } from '../coordinator/runtime/index.js';

export type { JsonObject, JsonValue, ListedState, Participant, TxSummary, TxView, VoteValue };

/** `POST /v1/transactions`. */
export interface BeginRequest {
  /** The transaction's timeout at the coordinator (100..600,000 ms; the coordinator's default when absent). */
  readonly timeoutMs?: number;
  readonly participants?: readonly Participant[];
  readonly metadata?: JsonObject;
}

export interface BeginAnswer {
  readonly id: string;
  /** `active` for a new transaction; a replayed key may find it `preparing`, `committed` or `aborted`. */
  readonly state: 'active' | 'preparing' | 'committed' | 'aborted';
  /** Epoch ms, the coordinator's clock. */
  readonly deadline: number;
  /** The coordinator that answered. */
  readonly coordinator: string;
}

export interface EnlistAnswer {
  readonly id: string;
  readonly participant: Participant;
  readonly coordinator: string;
}

/** The answer of commit and abort. */
export interface OutcomeAnswer {
  readonly id: string;
  readonly outcome: 'committed' | 'aborted';
  /** Every frozen participant's vote; null where none was needed to decide. */
  readonly votes: Readonly<Record<string, VoteValue | null>>;
  /** Why it aborted: the first "no", or the abort's reason. */
  readonly reason?: string;
  readonly coordinator: string;
}

/** `GET /v1/transactions/{id}`: the transaction, and the coordinator that answered. */
export type GetAnswer = TxView & { readonly coordinator: string };

/** `GET /v1/transactions` filters. */
export interface ListFilter {
  readonly state?: ListedState;
  /** 1..1,000 (the coordinator's default: 100). */
  readonly limit?: number;
  /** The `next` of the previous page. */
  readonly after?: string;
}

export interface ListAnswer {
  readonly transactions: readonly TxSummary[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: string | null;
}

export const LISTED_STATES: readonly ListedState[] = ['active', 'preparing', 'committed', 'aborted', 'in-doubt'];
