/**
 * Tries one call on a list of servers in turn, starting at a given one,
 * until an answer that is not "try again" comes back, the attempts run out,
 * or the deadline passes. After each whole round that failed, it backs off
 * (jittered) so an election or a restart can settle. Safe only because every
 * call the SDK makes is idempotent (docs/API.md: "every call is idempotent").
 */
import { assert } from '../lib/assert.js';
import { backoffDelayMs, type BackoffPolicy } from '../lib/retry.js';
import type { HttpRequester } from '../lib/http-client.js';
import type { Random } from '../lib/random.js';
import type { Timers } from '../lib/timers.js';
import { attemptJson, worthRetrying, type Attempt, type JsonCall } from './transport.js';

/** An attempt never gets less than this, even right at its deadline (a deadline bounds starts, not answers). */
const MIN_ATTEMPT_TIMEOUT_MS = 100;

export interface FailoverDeps {
  readonly http: HttpRequester;
  readonly timers: Timers;
  readonly random: Random;
  /** Between whole rounds; `maxAttempts` is unused here. */
  readonly backoff: Pick<BackoffPolicy, 'baseMs' | 'maxMs'>;
}

export interface FailoverPlan {
  readonly servers: readonly string[];
  /** Index of the server tried first. */
  readonly first: number;
  /** Attempts in all, across servers; at least 1. */
  readonly maxAttempts: number;
  /** Epoch ms (the injected clock) after which no new attempt starts. */
  readonly deadline: number;
  /** Timeout of one attempt; cut to what is left before the deadline. */
  readonly timeoutMs: number;
}

export interface FailoverResult {
  /** The last attempt: an answer to act on, or the last failure worth retrying. */
  readonly attempt: Attempt;
  /** Index of the server of that attempt. */
  readonly index: number;
}

export async function withFailover(deps: FailoverDeps, plan: FailoverPlan, make: (server: string) => Omit<JsonCall, 'timeoutMs'>): Promise<FailoverResult> {
  const n = plan.servers.length;
  let last: FailoverResult | undefined;
  for (let i = 0; i < Math.max(1, plan.maxAttempts); i++) {
    let leftMs = plan.deadline - deps.timers.nowMs();
    if (i > 0 && leftMs <= 0) break;
    if (i > 0 && i % n === 0) {
      const policy = { ...deps.backoff, maxAttempts: 1 };
      await deps.timers.sleep(Math.min(leftMs, backoffDelayMs(i / n - 1, policy, deps.random)));
      leftMs = plan.deadline - deps.timers.nowMs();
      if (leftMs <= 0) break;
    }
    const index = (plan.first + i) % n;
    const server = plan.servers[index] as string;
    const timeoutMs = Math.max(MIN_ATTEMPT_TIMEOUT_MS, Math.min(plan.timeoutMs, leftMs));
    const attempt = await attemptJson(deps.http, server, { ...make(server), timeoutMs });
    last = { attempt, index };
    if (!worthRetrying(attempt)) return last;
  }
  assert(last !== undefined, 'the first attempt always runs');
  return last;
}
