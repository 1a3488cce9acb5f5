/**
 * Bookkeeping for requests that wait on Raft: proposals wait for their entry
 * to be applied, linearizable reads for their ReadIndex answer and then for
 * the applied index to catch up. Every waiter has a deadline.
 */
import { AppError } from '../../lib/errors.js';
import type { Cancel, Timers } from '../../lib/timers.js';

export class RequestTimeoutError extends AppError {
  constructor(what: string, timeoutMs: number) {
    // 504: the outcome of a write is unknown (it may still commit); a retry with
    // the same Request-Id is safe.
    super('request_timeout', 504, `${what} did not complete within ${timeoutMs} ms; its outcome is unknown`, { timeoutMs });
  }
}

interface Waiter<T> {
  readonly resolve: (v: T) => void;
  readonly reject: (e: unknown) => void;
  readonly cancelTimer: Cancel;
}

/** Waiters keyed by something (a log index, a request id), each with its own deadline. */
export class WaitTable<K, T> {
  private readonly waiters = new Map<K, Waiter<T>>();

  constructor(
    private readonly what: string,
    /** Deadlines run on the node's timers (simulated time in test/sim2pc). */
    private readonly timers: Pick<Timers, 'after'>,
  ) {}

  wait(key: K, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancelTimer = this.timers.after(timeoutMs, () => {
        this.waiters.delete(key);
        reject(new RequestTimeoutError(this.what, timeoutMs));
      });
      this.waiters.set(key, { resolve, reject, cancelTimer });
    });
  }

  has(key: K): boolean {
    return this.waiters.has(key);
  }

  resolve(key: K, value: T): boolean {
    const w = this.waiters.get(key);
    if (!w) return false;
    w.cancelTimer();
    this.waiters.delete(key);
    w.resolve(value);
    return true;
  }

  reject(key: K, error: unknown): void {
    const w = this.waiters.get(key);
    if (!w) return;
    w.cancelTimer();
    this.waiters.delete(key);
    w.reject(error);
  }

  rejectAll(error: unknown): void {
    for (const key of [...this.waiters.keys()]) this.reject(key, error);
  }

  /**
   * Forgets every waiter without settling it: a crashed process answers no
   * one (its clients see the connection die, or time out on their own side).
   */
  abandonAll(): void {
    for (const w of this.waiters.values()) w.cancelTimer();
    this.waiters.clear();
  }

  get size(): number {
    return this.waiters.size;
  }
}
