/**
 * Retries with exponential backoff and jitter, for store writes whose outcome
 * may be unknown. Safe only for idempotent operations: every 2PC write is a
 * CAS (create-if-absent or on the exact previous value), so a repeat that
 * finds its own earlier write reads it back as `previous`.
 */
import type { Random } from './random.js';
import { TxStoreError } from '../coordinator/txstore/txstore.js';

export interface BackoffPolicy {
  /** Attempts in all, the first included; at least 1. */
  readonly maxAttempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Store error codes after which the same request can succeed (elections, timeouts, overload). */
const RETRYABLE_STORE_CODES = new Set(['unavailable', 'no_leader', 'request_timeout', 'busy', 'proposal_dropped', 'outcome_unknown', 'internal']);

export function isRetryableStoreError(e: unknown): boolean {
  // The built-in client wraps network failures as `unavailable`; anything that is not a store
  // error (a corrupt value, a bug) will not get better by trying again.
  return e instanceof TxStoreError && (RETRYABLE_STORE_CODES.has(e.code) || e.status >= 500);
}

/** "Equal jitter": half the capped exponential delay, plus a random share of the other half. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: Random): number {
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(capped / 2 + random.float() * (capped / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `f` until it succeeds, fails with a non-retryable error, runs out of
 * attempts, or `signal` aborts; throws the last error in the last three cases.
 */
export async function withRetries<T>(
  f: () => Promise<T>,
  policy: BackoffPolicy,
  random: Random,
  opts: { readonly signal?: AbortSignal; readonly onRetry?: (e: unknown, attempt: number) => void } = {},
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < Math.max(1, policy.maxAttempts); attempt++) {
    if (attempt > 0) {
      await sleep(backoffDelayMs(attempt - 1, policy, random), opts.signal);
      if (opts.signal?.aborted === true) break;
    }
    try {
      return await f();
    } catch (e) {
      lastError = e;
      if (!isRetryableStoreError(e)) throw e;
      opts.onRetry?.(e, attempt);
    }
  }
  throw lastError;
}
