/**
 * The SDK's typed errors. A coordinator's error answer keeps its code
 * (docs/API.md, "Coordinator errors"); when no answer says what happened,
 * the client names it with one of its own codes. Either way `code` is one
 * literal of a union, so a `switch` over it is checked by the compiler.
 */

/** Every `error.code` a coordinator answers with, by status (coordinator/service, lib/express.ts). */
export const COORDINATOR_ANSWER_CODES = [
  // 400
  'invalid_json',
  'invalid_request',
  'invalid_path',
  'invalid_tx_id',
  'invalid_participant',
  'unregistered_participant', // with participants registered by name (--participant)
  'invalid_timeout',
  'duplicate_participant',
  'too_many_participants', // also 409 at enlist
  'invalid_argument',
  'invalid_idempotency_key',
  'bad_request',
  // 401, 403: with a token file on the coordinator (lib/token-auth.ts)
  'unauthenticated',
  'invalid_token',
  'token_expired',
  'forbidden',
  // 404
  'tx_not_found',
  'not_found',
  // 409
  'tx_not_active',
  'already_committed',
  'participant_conflict',
  // 413
  'body_too_large',
  // 429: the store is near its quota; new begins wait (Retry-After), begun transactions go on
  'store_nearly_full',
  // 500
  'corrupt_value',
  'internal',
  // 503
  'store_unavailable',
  'too_many_transactions',
  'shutting_down',
  // 504
  'timeout',
] as const;

/**
 * Codes the client gives itself:
 * - `unavailable`: no coordinator (or participant) could be reached;
 * - `timeout`: no answer within the call's timeout (the same code as a
 *   coordinator's own 504: either way the call may or may not have happened);
 * - `outcome_unknown`: the transaction's outcome could not be learned before
 *   the client's deadline; GET it later (the error carries `txId`);
 * - `invalid_response`: an answer outside the contract (not JSON, an unknown code);
 * - `closed`: the client was closed;
 * - `invalid_config`: a bad client option or argument, refused before any call.
 */
export const CLIENT_CODES = ['unavailable', 'timeout', 'outcome_unknown', 'invalid_response', 'closed', 'invalid_config'] as const;

export type CoordinatorAnswerCode = (typeof COORDINATOR_ANSWER_CODES)[number];
export type ClientCode = (typeof CLIENT_CODES)[number];
export type CoordinatorErrorCode = CoordinatorAnswerCode | ClientCode;

/** Every `error.code` the participant's `POST /2pc/work` answers with (participant/, lib/express.ts). */
export const WORK_ANSWER_CODES = [
  'invalid_json',
  'invalid_request',
  'invalid_path',
  'invalid_tx_id',
  'body_too_large',
  'work_too_large',
  'work_conflict',
  'tx_not_active',
  'not_found',
  'unauthenticated',
  'invalid_token',
  'token_expired',
  'forbidden',
  'not_ready',
  'participant_failed',
  'shutting_down',
  'too_many_transactions',
  'log_full',
  'unavailable',
  'timeout',
  'internal',
] as const;

export type WorkAnswerCode = (typeof WORK_ANSWER_CODES)[number];
export type WorkErrorCode = WorkAnswerCode | ClientCode;

/** Codes after which the same call, repeated (here or elsewhere), may succeed: every call is idempotent. */
const RETRYABLE: ReadonlySet<string> = new Set(['unavailable', 'timeout', 'store_unavailable', 'store_nearly_full', 'too_many_transactions', 'shutting_down', 'not_ready', 'log_full']);

/** Where an error came from, beyond its code. */
export interface ErrorContext {
  /** The HTTP status of the answer; 0 when nothing answered. */
  readonly status: number;
  /** The URL of the server that answered (or was tried last). */
  readonly server?: string;
  readonly txId?: string;
  /** The other fields of the error body (limits, ids). */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

/** The shape both error classes share. */
abstract class ClientApiError<C extends string> extends Error {
  readonly status: number;
  readonly server: string | undefined;
  readonly txId: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: C,
    message: string,
    ctx: ErrorContext,
  ) {
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.status = ctx.status;
    this.server = ctx.server;
    this.txId = ctx.txId;
    this.details = ctx.details ?? {};
  }

  /** Whether repeating the call may succeed (the coordinator's calls are idempotent, so repeating is safe). */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

/** An error from a coordinator, or from the client about a coordinator call. */
export class CoordinatorError extends ClientApiError<CoordinatorErrorCode> {
  override readonly name = 'CoordinatorError';
}

/** A participant did not take a transaction's work (`POST {url}/2pc/work`). */
export class WorkError extends ClientApiError<WorkErrorCode> {
  override readonly name = 'WorkError';

  constructor(
    readonly participant: string,
    code: WorkErrorCode,
    message: string,
    ctx: ErrorContext,
  ) {
    super(code, message, ctx);
  }
}

export function isCoordinatorError(e: unknown): e is CoordinatorError {
  return e instanceof CoordinatorError;
}

const ANSWER_CODES: ReadonlySet<string> = new Set(COORDINATOR_ANSWER_CODES);
const WORK_CODES: ReadonlySet<string> = new Set(WORK_ANSWER_CODES);

export function isCoordinatorAnswerCode(code: string): code is CoordinatorAnswerCode {
  return ANSWER_CODES.has(code);
}

export function isWorkAnswerCode(code: string): code is WorkAnswerCode {
  return WORK_CODES.has(code);
}

/** The most any timeout or window option may be: one hour. */
const MAX_OPTION_MS = 3_600_000;

/** A bad client option or argument, refused before any call. */
export function invalidConfig(message: string): CoordinatorError {
  return new CoordinatorError('invalid_config', message, { status: 0 });
}

/** An option in ms: an integer from `min` to one hour, else `invalid_config`. */
export function checkMs(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > MAX_OPTION_MS) throw invalidConfig(`${name} must be an integer from ${min} to ${MAX_OPTION_MS} ms, got ${value}`);
  return value;
}
