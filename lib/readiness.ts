/**
 * Readiness, as every service answers it on `/readyz`: 200 when it can
 * serve, else 503 with a body naming why. `/healthz` stays "the process
 * answers"; an orchestrator restarts on the one and routes on the other.
 */
import type { Timers } from './timers.js';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, in words; absent when ready. */
  readonly reason?: string;
  /** What was checked (ids, indexes), for whoever reads the body. */
  readonly [detail: string]: unknown;
}

export function ready(details: Readonly<Record<string, unknown>> = {}): Readiness {
  return { ...details, ready: true };
}

export function notReady(reason: string, details: Readonly<Record<string, unknown>> = {}): Readiness {
  return { ...details, ready: false, reason };
}

/** The HTTP status a readiness answer carries. */
export function readinessStatus(r: Readiness): 200 | 503 {
  return r.ready ? 200 : 503;
}

/** A probe's bound: an orchestrator's probe times out in about a second, so an answer must come sooner. */
export const READINESS_PROBE_TIMEOUT_MS = 800;

/**
 * Settles with `work`, or rejects with "timed out" after `timeoutMs`
 * (`work` keeps running; its late result is dropped). For probes only.
 */
export function withinMs<T>(timers: Pick<Timers, 'after'>, timeoutMs: number, work: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = timers.after(timeoutMs, () => reject(new Error(`timed out after ${timeoutMs} ms`)));
    work.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (e: unknown) => {
        cancel();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
