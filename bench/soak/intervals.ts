/**
 * The soak's bookkeeping: what each interval saw (transactions, latencies,
 * errors by code), the interval rows it becomes, their table, the totals and
 * the final line a script gates on.
 */
import { percentile } from '../loadgen.js';
import { fmt } from '../output.js';
import type { TxTimes } from '../2pc/workload.js';
import type { StoreSize } from './store-status.js';

export interface LatencyQuantiles {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export interface IntervalRow {
  /** 1-based. */
  readonly index: number;
  /** Seconds since the load started. */
  readonly startS: number;
  readonly endS: number;
  /** Committed transactions that finished in the interval. */
  readonly tx: number;
  readonly txPerS: number;
  /** The commit call, as bench:2pc measures it. */
  readonly commit: LatencyQuantiles;
  /** Begin to the commit's answer. */
  readonly total: LatencyQuantiles;
  readonly errors: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** Elections in the interval: how far the store's highest term rose. */
  readonly leaderChanges: number;
  readonly term: number | null;
  readonly leader: string | null;
  /** Highest RSS each process reached in the interval, MB; null where /proc could not tell (gone). */
  readonly rssMb: Readonly<Record<string, number | null>>;
  /** Highest RssAnon (RSS without file pages, such as LMDB's mapped database) in the interval, MB. */
  readonly anonMb: Readonly<Record<string, number | null>>;
  readonly store: StoreSize;
}

function quantiles(values: number[]): LatencyQuantiles {
  values.sort((a, b) => a - b);
  return { p50Ms: percentile(values, 0.5), p99Ms: percentile(values, 0.99), p999Ms: percentile(values, 0.999), maxMs: values[values.length - 1] ?? Number.NaN };
}

/** What the load saw since the interval began; `take` closes it and starts the next. */
export class IntervalStats {
  private commitMs: number[] = [];
  private totalMs: number[] = [];
  private errorCodes = new Map<string, number>();
  /** The first few messages of each error code over the whole run, for the report. */
  readonly errorSamples = new Map<string, string[]>();

  committed(t: TxTimes): void {
    this.commitMs.push(t.commitMs);
    this.totalMs.push(t.totalMs);
  }

  failed(code: string, message: string): void {
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    const samples = this.errorSamples.get(code) ?? [];
    if (samples.length < 3) this.errorSamples.set(code, [...samples, message.slice(0, 300)]);
  }

  /** Transactions committed in the interval so far. */
  get tx(): number {
    return this.commitMs.length;
  }

  take(): { tx: number; commit: LatencyQuantiles; total: LatencyQuantiles; errors: number; errorsByCode: Record<string, number> } {
    const out = {
      tx: this.commitMs.length,
      commit: quantiles(this.commitMs),
      total: quantiles(this.totalMs),
      errors: [...this.errorCodes.values()].reduce((s, n) => s + n, 0),
      errorsByCode: Object.fromEntries([...this.errorCodes].sort((a, b) => b[1] - a[1])),
    };
    this.commitMs = [];
    this.totalMs = [];
    this.errorCodes = new Map();
    return out;
  }
}

const mb = (bytes: number | null): string => (bytes === null ? '-' : (bytes / 2 ** 20).toFixed(1));

/** The table's header, printed once the processes run (their names are columns). */
export function tableHeader(processes: readonly string[]): string[] {
  return [
    `| # | end s | tx | tx/s | commit p50 ms | p99 ms | p999 ms | errors | leader changes | term | leader | keys | store MB | disk MB | RSS MB ${processes.join(' / ')} | RssAnon MB |`,
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|',
  ];
}

export function tableRow(r: IntervalRow, processes: readonly string[]): string {
  const errors = r.errors === 0 ? '0' : `${r.errors} (${Object.entries(r.errorsByCode).map(([c, n]) => `${c}: ${n}`).join(', ')})`;
  const rss = processes.map((p) => fmt(r.rssMb[p], 0)).join(' / ');
  const anon = processes.map((p) => fmt(r.anonMb[p], 0)).join(' / ');
  return `| ${r.index} | ${r.endS.toFixed(0)} | ${r.tx} | ${fmt(r.txPerS, 0)} | ${fmt(r.commit.p50Ms, 1)} | ${fmt(r.commit.p99Ms, 1)} | ${fmt(r.commit.p999Ms, 1)} | ${errors} | ${r.leaderChanges} | ${r.term ?? '-'} | ${r.leader ?? '-'} | ${r.store.keys ?? '-'} | ${mb(r.store.bytes)} | ${mb(r.store.diskBytes)} | ${rss} | ${anon} |`;
}

export interface SoakTotals {
  readonly minutes: number;
  readonly tx: number;
  readonly errors: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly leaderChanges: number;
  /** Highest RSS of any process the soak started (the store's, the coordinator's, the participants'), MB. */
  readonly maxRssMb: number;
  readonly maxRssMbByProcess: Readonly<Record<string, number | null>>;
  /** A process the soak started exited during the load (counted as errors too, code process_exited). */
  readonly exited: readonly string[];
}

export function totalsOf(rows: readonly IntervalRow[], elapsedS: number, systemProcesses: readonly string[], exited: readonly string[]): SoakTotals {
  const errorsByCode: Record<string, number> = {};
  for (const r of rows) for (const [c, n] of Object.entries(r.errorsByCode)) errorsByCode[c] = (errorsByCode[c] ?? 0) + n;
  const maxRssMbByProcess: Record<string, number | null> = {};
  for (const r of rows) {
    for (const [p, v] of Object.entries(r.rssMb)) if (v !== null) maxRssMbByProcess[p] = Math.max(maxRssMbByProcess[p] ?? 0, v);
  }
  for (const p of Object.keys(rows[0]?.rssMb ?? {})) maxRssMbByProcess[p] ??= null;
  return {
    minutes: elapsedS / 60,
    tx: rows.reduce((s, r) => s + r.tx, 0),
    errors: rows.reduce((s, r) => s + r.errors, 0),
    errorsByCode,
    leaderChanges: rows.reduce((s, r) => s + r.leaderChanges, 0),
    maxRssMb: Math.max(0, ...systemProcesses.map((p) => maxRssMbByProcess[p] ?? 0)),
    maxRssMbByProcess,
    exited,
  };
}

/** The last line: `minutes=M tx=N errors=E leader_changes=L max_rss_mb=R`. */
export function finalLine(t: SoakTotals): string {
  return `minutes=${+t.minutes.toFixed(2)} tx=${t.tx} errors=${t.errors} leader_changes=${t.leaderChanges} max_rss_mb=${Math.round(t.maxRssMb)}`;
}

/** The gate: a soak passes with no error and no leader change. */
export function passed(t: SoakTotals): boolean {
  return t.errors === 0 && t.leaderChanges === 0;
}
