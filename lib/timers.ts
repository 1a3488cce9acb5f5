/**
 * Timers, injected: every runtime schedules through this interface instead
 * of calling setTimeout, setInterval or setImmediate, so the deterministic
 * simulation (test/sim2pc) runs the same code on simulated time, and a
 * crashed simulated process's timers die with it.
 *
 * Production timers are unref'd: a pending timer never keeps a process
 * alive on its own (servers and sockets do that).
 */
import { systemClock, type Clock } from './clock.js';

/** Cancels a scheduled callback; calling it again, or after it ran, does nothing. */
export type Cancel = () => void;

export interface Timers extends Clock {
  /** Runs `fn` once after `delayMs`. */
  after(delayMs: number, fn: () => void): Cancel;
  /** Runs `fn` every `intervalMs` until cancelled. */
  every(intervalMs: number, fn: () => void): Cancel;
  /** Runs `fn` after the current event-loop turn (setImmediate): batching that waits for nothing. */
  soon(fn: () => void): void;
  /** Resolves after `delayMs`, or at once when `signal` aborts (it never rejects). */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
}

export const systemTimers: Timers = {
  ...systemClock,
  after(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return () => clearTimeout(t);
  },
  every(intervalMs, fn) {
    const t = setInterval(fn, intervalMs);
    t.unref();
    return () => clearInterval(t);
  },
  soon(fn) {
    setImmediate(fn);
  },
  sleep(delayMs, signal) {
    return sleepWith(systemTimers, delayMs, signal);
  },
};

/** `sleep` in terms of `after`, for any Timers implementation. */
export function sleepWith(timers: Pick<Timers, 'after'>, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = timers.after(delayMs, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Timers whose pending callbacks keep the process alive: for a command-line
 * tool's own waits (polling for ports, a leader, a health check) at moments
 * when no server, socket or child holds the process open, so an unref'd
 * timer would let it exit in the middle of the wait.
 */
export const keepAliveTimers: Timers = {
  ...systemClock,
  after(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(t);
  },
  every(intervalMs, fn) {
    const t = setInterval(fn, intervalMs);
    return () => clearInterval(t);
  },
  soon(fn) {
    setImmediate(fn);
  },
  sleep(delayMs, signal) {
    return sleepWith(keepAliveTimers, delayMs, signal);
  },
};
