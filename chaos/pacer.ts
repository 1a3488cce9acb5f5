/**
 * A rate shared by many clients: each asks for the next start slot before it
 * starts an operation, and the slots are spaced 1/rate apart across all of
 * them. A client whose slot has passed starts at once; a slot is never
 * handed out in the past, so a system that falls behind gets no burst to
 * catch up: the rate is a ceiling, what runs is what the clients can keep up
 * with. Used by the chaos runner's --rate and by the soak (bench/soak).
 */
import { keepAliveTimers } from '../lib/timers.js';

export class Pacer {
  private nextAtMs = Number.NEGATIVE_INFINITY;
  private readonly gapMs: number;

  constructor(
    /** Starts per second, across every client that shares this pacer. */
    readonly ratePerS: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void> = (ms, signal) => keepAliveTimers.sleep(ms, signal),
  ) {
    if (!(ratePerS > 0) || !Number.isFinite(ratePerS)) throw new Error(`a pacer needs a positive rate, got ${ratePerS}`);
    this.gapMs = 1_000 / ratePerS;
  }

  /** Takes the next slot and waits for it (or until `signal` aborts). */
  async next(signal?: AbortSignal): Promise<void> {
    const now = this.now();
    const at = Math.max(now, this.nextAtMs);
    this.nextAtMs = at + this.gapMs;
    if (at > now) await this.sleep(at - now, signal);
  }
}

/** A pacer for `rate`, or none (flat out) when it is undefined. */
export function pacerFor(rate: number | undefined): Pacer | undefined {
  return rate === undefined ? undefined : new Pacer(rate);
}
