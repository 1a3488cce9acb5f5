/**
 * The benchmark's client: closed-loop workers, each running one transaction
 * at a time the way an application does (docs/API.md): begin; hand each
 * participant its work (POST /2pc/work, durable before it answers), the
 * participants named in begin (or, with --enlist, enlisted one after the
 * other while the work goes out); then commit, which must answer
 * "committed". Requests go over node:http with keep-alive
 * (bench/loadgen.ts: cheaper for the client than fetch on a 2-core
 * machine it shares with everything it measures).
 */
import { performance } from 'node:perf_hooks';
import { LeanHttp, percentile } from '../loadgen.js';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { keepAliveTimers } from '../../lib/timers.js';

export interface BenchParticipant {
  readonly name: string;
  readonly url: string;
  readonly http: LeanHttp;
}

export interface TxTargets {
  readonly coordinator: LeanHttp;
  readonly participants: readonly BenchParticipant[];
  /** Transaction timeout sent with begin. */
  readonly timeoutMs: number;
  /** Name the participants in begin instead of enlisting them (two store writes fewer). */
  readonly participantsInBegin?: boolean;
}

export interface TxTimes {
  /** Begin request to its answer. */
  readonly beginMs: number;
  /** Work handed to both participants and both enlisted (concurrently). */
  readonly enlistMs: number;
  /** Commit request to its answer. */
  readonly commitMs: number;
  /** Begin request to the commit's answer: what the application waits in all. */
  readonly totalMs: number;
}

/** One transaction; `onBegun` runs once the record exists (for counting store writes per begun transaction). */
export async function runTransaction(t: TxTargets, n: number, onBegun: () => void): Promise<TxTimes> {
  const t0 = performance.now();
  const body = t.participantsInBegin === true ? { timeoutMs: t.timeoutMs, participants: t.participants.map((p) => ({ name: p.name, url: p.url })) } : { timeoutMs: t.timeoutMs };
  const begun = (await t.coordinator.request('POST', '/v1/transactions', JSON.stringify(body))) as { id?: unknown };
  if (typeof begun.id !== 'string') throw new Error('begin answered without an id');
  onBegun();
  const tBegun = performance.now();
  const id = begun.id;
  await Promise.all([
    ...t.participants.map((p) => p.http.request('POST', '/2pc/work', JSON.stringify({ txId: id, work: { n } }))),
    (async () => {
      if (t.participantsInBegin === true) return;
      for (const p of t.participants) await t.coordinator.request('POST', `/v1/transactions/${id}/participants`, JSON.stringify({ name: p.name, url: p.url }));
    })(),
  ]);
  const t1 = performance.now();
  const outcome = (await t.coordinator.request('POST', `/v1/transactions/${id}/commit`, '{}')) as { outcome?: unknown; reason?: unknown };
  const t2 = performance.now();
  if (outcome.outcome !== 'committed') throw new Error(`transaction ${String(outcome.outcome)}: ${String(outcome.reason)}`);
  return { beginMs: tBegun - t0, enlistMs: t1 - tBegun, commitMs: t2 - t1, totalMs: t2 - t0 };
}

export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

export function summarize(values: number[]): LatencySummary {
  values.sort((a, b) => a - b);
  const sum = values.reduce((s, v) => s + v, 0);
  return { p50Ms: percentile(values, 0.5), p99Ms: percentile(values, 0.99), meanMs: values.length === 0 ? Number.NaN : sum / values.length, maxMs: values[values.length - 1] ?? Number.NaN };
}

export interface RowOptions {
  readonly clients: number;
  /** Measure for this long... */
  readonly durationMs?: number;
  /** ...or until this many transactions were measured. */
  readonly txs?: number;
  /** Run (not measured) before the measurement starts. */
  readonly warmupMs: number;
  readonly onProgress?: (elapsedMs: number, done: number, errors: number) => void;
}

export interface RowResult {
  /** Committed transactions started and finished inside the measured window. */
  readonly committed: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly elapsedS: number;
  readonly txPerS: number;
  readonly commit: LatencySummary;
  readonly total: LatencySummary;
  /** The steps before commit, to see where begin-to-outcome goes. */
  readonly begin: LatencySummary;
  readonly enlist: LatencySummary;
  /** Transactions begun during the whole row, warm-up included (the denominator of per-transaction costs). */
  readonly begun: number;
}

/** Runs the closed loop for one row. */
export async function runRow(targets: TxTargets, opts: RowOptions): Promise<RowResult> {
  if ((opts.durationMs === undefined) === (opts.txs === undefined)) throw new Error('a row runs for a duration or a number of transactions');
  const measureFrom = performance.now() + opts.warmupMs;
  const stopAt = opts.durationMs === undefined ? Number.POSITIVE_INFINITY : measureFrom + opts.durationMs;
  const commitMs: number[] = [];
  const totalMs: number[] = [];
  const beginMs: number[] = [];
  const enlistMs: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let begun = 0;
  let startedInWindow = 0;
  let lastEnd = measureFrom;
  let n = 0;
  const more = (now: number): boolean => now < stopAt && (opts.txs === undefined || startedInWindow < opts.txs);
  const progress = opts.onProgress
    ? setInterval(() => {
        const now = performance.now();
        if (now >= measureFrom) opts.onProgress?.(now - measureFrom, commitMs.length, errors);
      }, 250)
    : undefined;
  const worker = async (): Promise<void> => {
    for (;;) {
      const start = performance.now();
      if (!more(start)) return;
      const measured = start >= measureFrom;
      if (measured) startedInWindow++;
      try {
        const times = await runTransaction(targets, n++, () => begun++);
        const end = performance.now();
        if (measured && end <= stopAt) {
          commitMs.push(times.commitMs);
          totalMs.push(times.totalMs);
          beginMs.push(times.beginMs);
          enlistMs.push(times.enlistMs);
          lastEnd = Math.max(lastEnd, end);
        }
      } catch (e) {
        if (measured) {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(e instanceof Error ? e.message : String(e));
        }
        // A failing system must not be hammered in a tight loop.
        await keepAliveTimers.sleep(10);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.clients }, () => worker()));
  } finally {
    if (progress !== undefined) clearInterval(progress);
  }
  const windowEnd = opts.durationMs === undefined ? lastEnd : Math.min(stopAt, performance.now());
  const elapsedS = Math.max(1e-9, (windowEnd - measureFrom) / 1_000);
  return {
    committed: commitMs.length,
    errors,
    errorSamples,
    elapsedS,
    txPerS: commitMs.length / elapsedS,
    commit: summarize(commitMs),
    total: summarize(totalMs),
    begin: summarize(beginMs),
    enlist: summarize(enlistMs),
    begun,
  };
}

/**
 * One store CAS at a time, at most ten per second, beside the load: "one
 * store round" under the same load, through the same client the coordinator
 * uses, to compare commit latency with. Its writes are counted so they can be
 * taken out of the store's revision count.
 */
export class StoreProbe {
  private readonly latencies: number[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  writes = 0;

  constructor(
    private readonly store: TxStore,
    private readonly prefix: string,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const t0 = performance.now();
        try {
          this.writes++;
          await this.store.casCreate(`${this.prefix}/${i}`, 'x');
          this.latencies.push(performance.now() - t0);
        } catch {
          // a probe failure shows as missing samples; the row's own errors tell the story
        }
        await keepAliveTimers.sleep(this.intervalMs);
      }
    })();
  }

  async stop(): Promise<LatencySummary & { readonly samples: number }> {
    this.stopped = true;
    await this.loop;
    return { ...summarize(this.latencies), samples: this.latencies.length };
  }
}
