/**
 * The soak's load: `clients` loops, each running bench:2pc's transaction
 * (bench/2pc/workload.ts: begin, work and enlist at both participants,
 * commit) one at a time, until the signal aborts; with a rate they share a
 * pacer (chaos/pacer.ts), without one they go flat out. Every outcome goes
 * to the current interval (by error code for failures) and to a per-second
 * count for the throughput chart.
 */
import { HttpStatusError } from '../loadgen.js';
import { HttpClientError } from '../../lib/http-client.js';
import { runTransaction, type TxTargets } from '../2pc/workload.js';
import { keepAliveTimers } from '../../lib/timers.js';
import type { Pacer } from '../../chaos/pacer.js';
import type { IntervalStats } from './intervals.js';

/** Committed and failed transactions per second of the run, for the chart. */
export interface SecondCounts {
  readonly committed: number[];
  readonly errors: number[];
}

export interface LoadOptions {
  readonly targets: TxTargets;
  readonly clients: number;
  readonly pacer: Pacer | undefined;
  readonly stats: IntervalStats;
  readonly perSecond: SecondCounts;
  /** ms since the load started. */
  readonly now: () => number;
  readonly signal: AbortSignal;
}

/** A short name for what went wrong: `503 no_leader`, `aborted`, `timeout`, `connection ECONNREFUSED`. */
export function errorCode(e: unknown): string {
  if (e instanceof HttpClientError) {
    const cause = (e.cause as { code?: unknown } | undefined)?.code;
    return e.code === 'connection' && typeof cause === 'string' ? `connection ${cause}` : e.code;
  }
  if (e instanceof HttpStatusError) {
    try {
      const code = (JSON.parse(e.body) as { error?: { code?: unknown } }).error?.code;
      if (typeof code === 'string') return `${e.status} ${code}`;
    } catch {
      // not JSON
    }
    return `http ${e.status}`;
  }
  const sys = (e as { code?: unknown } | null)?.code;
  if (typeof sys === 'string') return sys;
  const message = e instanceof Error ? e.message : String(e);
  const outcome = /^transaction (\w+):/.exec(message);
  if (outcome !== null) return outcome[1] as string;
  return 'other';
}

function bump(series: number[], atMs: number): void {
  const s = Math.max(0, Math.floor(atMs / 1_000));
  while (series.length <= s) series.push(0);
  series[s] = (series[s] ?? 0) + 1;
}

/** Runs until `signal` aborts; every transaction begun is let finish (each call is bounded by its timeout). */
export async function runSteadyLoad(o: LoadOptions): Promise<void> {
  let n = 0;
  const worker = async (): Promise<void> => {
    while (!o.signal.aborted) {
      await o.pacer?.next(o.signal);
      if (o.signal.aborted) return;
      try {
        const times = await runTransaction(o.targets, n++, () => {});
        o.stats.committed(times);
        bump(o.perSecond.committed, o.now());
      } catch (e) {
        o.stats.failed(errorCode(e), e instanceof Error ? e.message : String(e));
        bump(o.perSecond.errors, o.now());
        // A failing system must not be hammered in a tight loop.
        await keepAliveTimers.sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, () => worker()));
}
