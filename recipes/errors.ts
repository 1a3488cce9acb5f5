/**
 * The recipes' typed failures: each has a literal code and an HTTP-style
 * status, as every AppError in this project. A store failure keeps its own
 * TxStoreError (its code says whether a retry can help).
 */
import { AppError } from '../lib/errors.js';

export type RecipeErrorCode =
  /** The session's lease is gone (expired, revoked, or not renewed in time): what was held on it is lost. */
  | 'session_lost'
  /** A wait ran out of its `timeoutMs`. */
  | 'timeout'
  /** The caller's AbortSignal fired. */
  | 'aborted'
  /** tryLock found the lock held. */
  | 'locked'
  /** The operation needs a lock or leadership this handle no longer has. */
  | 'not_held'
  /** A write whose outcome the store could not tell (it may or may not have been applied). */
  | 'outcome_unknown'
  /** A stored value does not decode (bad JSON, or it fails the schema). */
  | 'invalid_value'
  /** A limit of the recipe was reached (waiters, items, members). */
  | 'limit_exceeded';

const STATUS: Readonly<Record<RecipeErrorCode, number>> = {
  session_lost: 409,
  timeout: 408,
  aborted: 499,
  locked: 423,
  not_held: 409,
  outcome_unknown: 503,
  invalid_value: 422,
  limit_exceeded: 429,
};

export class RecipeError extends AppError {
  declare readonly code: RecipeErrorCode;

  constructor(code: RecipeErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}, options?: { cause?: unknown }) {
    super(code, STATUS[code], message, details, options);
    this.name = 'RecipeError';
  }
}

export function isRecipeError(e: unknown, code?: RecipeErrorCode): e is RecipeError {
  return e instanceof RecipeError && (code === undefined || e.code === code);
}
