/**
 * Retries with exponential backoff and jitter, for store writes whose outcome
 * may be unknown. Safe only for idempotent operations: every 2PC write is a
 * CAS (create-if-absent or on the exact previous value), so a repeat that
 * finds its own earlier write reads it back as `previous`.
 */
import type { Random } from './random.js';
import type { Timers } from './timers.js';

export interface BackoffPolicy {
  /** Attempts in all, the first included; at least 1. */
  readonly maxAttempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Doublings of the base delay at most, so 2 ** attempt stays finite for any attempt count. */
const MAX_BACKOFF_DOUBLINGS = 20;

/** "Equal jitter": half the capped exponential delay, plus a random share of the other half. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: Random): number {
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, MAX_BACKOFF_DOUBLINGS));
  return Math.round(capped / 2 + random.float() * (capped / 2));
}

/**
 * Runs `f` until it succeeds, fails with an error `isRetryable` refuses, runs out of
 * attempts, or `signal` aborts; throws the last error in the last three cases.
 * The waits between attempts go through `timers`, so a simulation controls them.
 */
export async function withRetries<T>(
  f: () => Promise<T>,
  policy: BackoffPolicy,
  random: Random,
  timers: Pick<Timers, 'sleep'>,
  opts: { readonly isRetryable: (e: unknown) => boolean; readonly signal?: AbortSignal; readonly onRetry?: (e: unknown, attempt: number) => void },
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < Math.max(1, policy.maxAttempts); attempt++) {
    if (attempt > 0) {
      await timers.sleep(backoffDelayMs(attempt - 1, policy, random), opts.signal);
      if (opts.signal?.aborted === true) break;
    }
    try {
      return await f();
    } catch (e) {
      lastError = e;
      if (!opts.isRetryable(e)) throw e;
      opts.onRetry?.(e, attempt);
    }
  }
  throw lastError;
}
