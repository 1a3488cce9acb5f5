/**
 * A whole transaction, with the traps between the calls handled once:
 *
 * 1. begin, naming every participant (the list is fixed from the start, so a
 *    participant that never gets its work votes "no" as soon as the
 *    transaction freezes), under an Idempotency-Key: a begin retried on
 *    another coordinator is the same transaction;
 * 2. give each participant its work, all at once; a participant that refuses
 *    it, or cannot be reached, gets the transaction aborted now rather than
 *    at the deadline;
 * 3. commit (or that abort), failing over between coordinators; a call that
 *    got no answer (504, a timeout, a coordinator killed mid-call) is
 *    repeated, then the transaction is read back (GET), until the outcome is
 *    known or the client's deadline passes (then `outcome_unknown`).
 *
 * An abort answered 409 `already_committed` means committed: a work call
 * that timed out may still have been recorded, and the participants prepare
 * on their own once the deadline freezes the list, so such a transaction can
 * commit without our commit call. Only the outcome the store holds counts.
 */
import { randomUUID } from 'node:crypto';
import { backoffDelayMs } from '../lib/retry.js';
import type { CoordinatorClient } from './coordinator-client.js';
import { checkMs, CoordinatorError } from './errors.js';
import type { GetAnswer, JsonObject, JsonValue, OutcomeAnswer, Participant, VoteValue } from './types.js';

/** A participant and its work, sent to `POST {url}/2pc/work`. */
export interface WorkParticipant extends Participant {
  readonly work: JsonValue;
}

/** A participant that takes its work through the service's own API: `deliver` resolves once the work is durable there. */
export interface DeliveringParticipant extends Participant {
  deliver(txId: string): Promise<void>;
}

export type RunParticipant = WorkParticipant | DeliveringParticipant;

export interface RunRequest {
  readonly participants: readonly RunParticipant[];
  readonly metadata?: JsonObject;
  /** Names the transaction on every coordinator; running again with the same key joins it (default: a fresh key). */
  readonly idempotencyKey?: string;
  /** The transaction's timeout at the coordinator: undecided past it means abort (default 10,000 ms). */
  readonly timeoutMs?: number;
  /** How long past that timeout the client keeps trying to learn the outcome (default 30,000 ms). */
  readonly resolveTimeoutMs?: number;
  /** Timeout of each attempt at one server (default: the client's). */
  readonly callTimeoutMs?: number;
  /** The bearer token of this transaction's calls (coordinators and `/2pc/work`), instead of the client's. */
  readonly token?: string;
}

export interface RunOutcome {
  readonly txId: string;
  readonly outcome: 'committed' | 'aborted';
  /** Every participant's vote; null where none was needed to decide. */
  readonly votes: Readonly<Record<string, VoteValue | null>>;
  /** Why it aborted: the first "no", or why the work did not reach a participant. */
  readonly reason?: string;
  /** The coordinator that gave the outcome. */
  readonly coordinator: string;
  /** How the outcome was learned: the commit's answer, the abort's, or reading the transaction back. */
  readonly resolvedBy: 'commit' | 'abort' | 'query';
  readonly elapsedMs: number;
}

export const RUN_DEFAULTS = {
  /** The coordinator's own default. */
  timeoutMs: 10_000,
  /** The coordinator's commit grace (10 s) plus a few recovery intervals. */
  resolveTimeoutMs: 30_000,
  /** Leaves room in the coordinator's 1,024 characters. */
  maxReasonChars: 1_000,
  /** Between rounds of commit-then-read-back. */
  settleBackoffBaseMs: 200,
  settleBackoffMaxMs: 2_000,
} as const;

/** What `run` needs of the client. */
type RunHost = Pick<CoordinatorClient, 'begin' | 'sendWork' | 'commit' | 'abort' | 'get' | 'timers' | 'random' | 'coordinators'>;

interface Ctx {
  readonly host: RunHost;
  readonly txId: string;
  readonly started: number;
  /** Epoch ms after which `outcome_unknown`. */
  readonly giveUpAt: number;
  /** One pass over the coordinators per call (two attempts at least): between passes, the transaction is read back. */
  readonly call: { readonly timeoutMs?: number; readonly attempts: number; readonly token?: string };
}

/**
 * Throws `CoordinatorError`: from begin when no coordinator could begin it
 * (nothing can commit then: a begin whose answer was lost made a transaction
 * with no work, which aborts at its deadline); when a coordinator refuses a
 * call (4xx); `outcome_unknown` (with `txId`) past the client's deadline.
 */
export async function runTransaction(host: RunHost, req: RunRequest): Promise<RunOutcome> {
  const started = host.timers.nowMs();
  const timeoutMs = req.timeoutMs ?? RUN_DEFAULTS.timeoutMs;
  const txDeadline = started + timeoutMs;
  const resolveMs = checkMs('resolveTimeoutMs', req.resolveTimeoutMs ?? RUN_DEFAULTS.resolveTimeoutMs, 0);
  const timeout = { ...(req.callTimeoutMs === undefined ? {} : { timeoutMs: req.callTimeoutMs }), ...(req.token === undefined ? {} : { token: req.token }) };
  const participants = req.participants.map((p) => ({ name: p.name, url: p.url }));
  const begun = await host.begin(
    { timeoutMs, participants, ...(req.metadata === undefined ? {} : { metadata: req.metadata }) },
    { ...timeout, deadline: txDeadline, idempotencyKey: req.idempotencyKey ?? `run-${randomUUID()}` },
  );
  const ctx: Ctx = { host, txId: begun.id, started, giveUpAt: txDeadline + resolveMs, call: { ...timeout, attempts: Math.max(2, host.coordinators.length) } };
  // A replayed key whose transaction went on without us: only its outcome is left to learn.
  if (begun.state !== 'active') return settle(ctx, 'commit');
  const reasons = await Promise.all(req.participants.map((p) => giveWork(host, begun.id, p, { ...timeout, deadline: txDeadline })));
  const refused = reasons.find((r) => r !== undefined);
  return refused === undefined ? settle(ctx, 'commit') : settle(ctx, 'abort', refused);
}

/** Undefined once the participant holds its work durably; otherwise why not. */
async function giveWork(host: RunHost, txId: string, p: RunParticipant, opts: { timeoutMs?: number; token?: string; deadline: number }): Promise<string | undefined> {
  try {
    if ('deliver' in p) await p.deliver(txId);
    else await host.sendWork(p, txId, p.work, opts);
    return undefined;
  } catch (e) {
    return `${p.name} did not take its work: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * Commits (or aborts) until an outcome is known: each round is one pass of
 * the call over the coordinators, then one of GET; rounds back off until
 * `giveUpAt`.
 */
async function settle(ctx: Ctx, action: 'commit' | 'abort', reason?: string): Promise<RunOutcome> {
  const { host, txId } = ctx;
  let lastError: unknown;
  for (let round = 0; ; round++) {
    const opts = { ...ctx.call, deadline: ctx.giveUpAt };
    try {
      const a = action === 'commit' ? await host.commit(txId, opts) : await host.abort(txId, { ...opts, reason: (reason ?? 'aborted by the client').slice(0, RUN_DEFAULTS.maxReasonChars) });
      return fromAnswer(ctx, a, action);
    } catch (e) {
      if (!(e instanceof CoordinatorError) || !(e.retryable || e.code === 'already_committed')) throw e;
      lastError = e;
    }
    const known = await readBack(ctx, opts);
    if (known !== undefined) return known;
    const leftMs = ctx.giveUpAt - host.timers.nowMs();
    if (leftMs <= 0) {
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      throw new CoordinatorError('outcome_unknown', `transaction ${txId}: no outcome by the client's deadline (last: ${why}); GET it later`, { status: 0, txId, cause: lastError });
    }
    await host.timers.sleep(Math.min(leftMs, backoffDelayMs(round, { maxAttempts: 1, baseMs: RUN_DEFAULTS.settleBackoffBaseMs, maxMs: RUN_DEFAULTS.settleBackoffMaxMs }, host.random)));
  }
}

/** The outcome, if a coordinator can tell it now; undefined while undecided or when none answers. */
async function readBack(ctx: Ctx, opts: { timeoutMs?: number; token?: string; attempts: number; deadline: number }): Promise<RunOutcome | undefined> {
  let view: GetAnswer;
  try {
    view = await ctx.host.get(ctx.txId, opts);
  } catch (e) {
    if (e instanceof CoordinatorError && e.retryable) return undefined;
    throw e;
  }
  if (view.state !== 'committed' && view.state !== 'aborted') return undefined;
  const votes: Record<string, VoteValue | null> = {};
  let reason: string | undefined;
  for (const p of view.participants) {
    const v = view.votes[p.name];
    votes[p.name] = v?.vote ?? null;
    if (reason === undefined && v?.vote === 'no') reason = `${p.name} voted no${v.by === p.name ? '' : ` (filled by ${v.by})`}${v.reason === undefined ? '' : `: ${v.reason}`}`;
  }
  const outcome = view.state;
  return { txId: ctx.txId, outcome, votes, ...(outcome === 'aborted' ? { reason: reason ?? 'aborted' } : {}), coordinator: view.coordinator, resolvedBy: 'query', elapsedMs: ctx.host.timers.nowMs() - ctx.started };
}

function fromAnswer(ctx: Ctx, a: OutcomeAnswer, action: 'commit' | 'abort'): RunOutcome {
  return {
    txId: ctx.txId,
    outcome: a.outcome,
    votes: a.votes,
    ...(a.reason === undefined ? {} : { reason: a.reason }),
    coordinator: a.coordinator,
    resolvedBy: action,
    elapsedMs: ctx.host.timers.nowMs() - ctx.started,
  };
}
