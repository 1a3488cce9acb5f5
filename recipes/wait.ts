/**
 * One AbortSignal for a wait, that fires on the first of: the session lost,
 * the caller's signal, the timeout (an injected timer). Its `reason` is the
 * RecipeError to throw, so every wait fails the same way.
 */
import type { Cancel, Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';

export interface WaitOptions {
  /** Give up after this long (ms); default: wait until the signal or the session ends. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface WaitScope {
  readonly signal: AbortSignal;
  /** Throws the reason the wait ended, if it ended. */
  check(): void;
  /** Stops listening and cancels the timer (call in `finally`). */
  dispose(): void;
}

export function waitScope(timers: Timers, opts: WaitOptions, sessionSignal?: AbortSignal): WaitScope {
  const ac = new AbortController();
  const cleanups: Cancel[] = [];
  const follow = (s: AbortSignal | undefined, reason: () => RecipeError): void => {
    if (s === undefined) return;
    if (s.aborted) return ac.abort(reason());
    const on = (): void => ac.abort(reason());
    s.addEventListener('abort', on, { once: true });
    cleanups.push(() => s.removeEventListener('abort', on));
  };
  follow(sessionSignal, () => sessionSignal?.reason as RecipeError);
  follow(opts.signal, () => new RecipeError('aborted', 'the wait was aborted', {}, { cause: opts.signal?.reason }));
  if (opts.timeoutMs !== undefined && !ac.signal.aborted) {
    const ms = opts.timeoutMs;
    cleanups.push(timers.after(ms, () => ac.abort(new RecipeError('timeout', `gave up after ${ms} ms`, { timeoutMs: ms }))));
  }
  return {
    signal: ac.signal,
    check: () => {
      if (ac.signal.aborted) throw ac.signal.reason as RecipeError;
    },
    dispose: () => {
      for (const c of cleanups) c();
    },
  };
}

/** Runs `f` inside a wait scope, disposing it however `f` ends. */
export async function withWait<T>(timers: Timers, opts: WaitOptions, sessionSignal: AbortSignal | undefined, f: (scope: WaitScope) => Promise<T>): Promise<T> {
  const scope = waitScope(timers, opts, sessionSignal);
  try {
    return await f(scope);
  } finally {
    scope.dispose();
  }
}
