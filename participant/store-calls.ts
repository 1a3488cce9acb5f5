/**
 * A store call that waits out an unavailable store: the node's start (the
 * name claim, the watch's first read, recovery's reads) must survive a
 * store election or a partition instead of failing, so it retries in rounds
 * until the store answers or the node stops.
 */
import type { Logger } from '../lib/logger.js';
import type { Random } from '../lib/random.js';
import type { BackoffPolicy } from '../lib/retry.js';
import type { Timers } from '../lib/timers.js';
import { isRetryableStoreError, withStoreRetries } from '../coordinator/txstore/index.js';

export interface StoreCallContext {
  readonly retry: BackoffPolicy;
  readonly random: Random;
  readonly timers: Timers;
  readonly logger: Logger;
  /** Ends the waiting: the call then resolves undefined. */
  readonly signal: AbortSignal;
}

/**
 * `call`, retried in rounds (each round `withStoreRetries`, then a pause of
 * the backoff's maximum) while the store fails with a retryable error;
 * undefined once `signal` aborts. Other errors are thrown.
 */
export async function untilAnswered<T>(call: () => Promise<T>, ctx: StoreCallContext, what = 'store call'): Promise<T | undefined> {
  const { signal } = ctx;
  while (!signal.aborted) {
    try {
      return await withStoreRetries(call, ctx.retry, ctx.random, ctx.timers, { signal });
    } catch (e) {
      if (signal.aborted) break;
      if (!isRetryableStoreError(e)) throw e;
      ctx.logger('warn', `${what} failed; retrying`, { error: e });
      await ctx.timers.sleep(ctx.retry.maxMs, signal);
    }
  }
  return undefined;
}
