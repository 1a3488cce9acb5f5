/**
 * Bookkeeping for requests that wait on Raft: proposals wait for their entry
 * to be applied, linearizable reads for their ReadIndex answer and then for
 * the applied index to catch up. Every waiter has a deadline.
 */
import { AppError } from '../../lib/errors.js';

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
  readonly timer: NodeJS.Timeout;
}

/** Waiters keyed by something (a log index, a request id), each with its own deadline. */
export class WaitTable<K, T> {
  private readonly waiters = new Map<K, Waiter<T>>();

  constructor(private readonly what: string) {}

  wait(key: K, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new RequestTimeoutError(this.what, timeoutMs));
      }, timeoutMs);
      this.waiters.set(key, { resolve, reject, timer });
    });
  }

  has(key: K): boolean {
    return this.waiters.has(key);
  }

  resolve(key: K, value: T): boolean {
    const w = this.waiters.get(key);
    if (!w) return false;
    clearTimeout(w.timer);
    this.waiters.delete(key);
    w.resolve(value);
    return true;
  }

  reject(key: K, error: unknown): void {
    const w = this.waiters.get(key);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiters.delete(key);
    w.reject(error);
  }

  rejectAll(error: unknown): void {
    for (const key of [...this.waiters.keys()]) this.reject(key, error);
  }

  get size(): number {
    return this.waiters.size;
  }
}
