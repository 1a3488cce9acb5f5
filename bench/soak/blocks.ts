/**
 * The soak's rows in blocks (ten rows: ten minutes at the default interval)
 * and the trend across them, which is what issue 15's soak targets read:
 * throughput in the last block against the first, and each process's
 * highest RSS in the last block against the second (the first holds V8's
 * warm-up and the store's growth). Pure: rows in, numbers and lines out.
 */
import { fmt } from '../output.js';
import type { IntervalRow } from './intervals.js';

export const ROWS_PER_BLOCK = 10;

export interface SoakBlock {
  /** 1-based row numbers the block spans. */
  readonly firstRow: number;
  readonly lastRow: number;
  readonly tx: number;
  readonly txPerS: number;
  /** Medians of the rows' commit p50 and p99; the p999 as the rows' median and worst. */
  readonly commitP50Ms: number;
  readonly commitP99Ms: number;
  readonly commitP999MedianMs: number;
  readonly commitP999WorstMs: number;
  readonly errors: number;
  readonly leaderChanges: number;
  /** The store's key count at the block's end. */
  readonly keys: number | null;
  /** Each process's highest RSS and RssAnon in the block, MB (null: never read). */
  readonly rssMb: Readonly<Record<string, number | null>>;
  readonly anonMb: Readonly<Record<string, number | null>>;
}

export interface SoakTrend {
  /** Last block's throughput against the first's, in percent (+: faster). */
  readonly throughputPct: number;
  /** Each process's highest RSS in the last block against the second, in percent. */
  readonly rssPct: Readonly<Record<string, number | null>>;
}

function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

function highest(rows: readonly IntervalRow[], pick: (r: IntervalRow) => Readonly<Record<string, number | null>>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const r of rows) {
    for (const [p, v] of Object.entries(pick(r))) out[p] = v === null ? (out[p] ?? null) : Math.max(out[p] ?? 0, v);
  }
  return out;
}

function blockOf(rows: readonly IntervalRow[]): SoakBlock {
  const first = rows[0] as IntervalRow;
  const last = rows[rows.length - 1] as IntervalRow;
  const tx = rows.reduce((s, r) => s + r.tx, 0);
  const seconds = last.endS - first.startS;
  // An interval without a commit has NaN quantiles; a block of only such intervals has none either.
  const p999 = rows.map((r) => r.commit.p999Ms).filter((x) => !Number.isNaN(x));
  return {
    firstRow: first.index,
    lastRow: last.index,
    tx,
    txPerS: seconds > 0 ? tx / seconds : Number.NaN,
    commitP50Ms: median(rows.map((r) => r.commit.p50Ms)),
    commitP99Ms: median(rows.map((r) => r.commit.p99Ms)),
    commitP999MedianMs: median(p999),
    commitP999WorstMs: p999.length === 0 ? Number.NaN : Math.max(...p999),
    errors: rows.reduce((s, r) => s + r.errors, 0),
    leaderChanges: rows.reduce((s, r) => s + r.leaderChanges, 0),
    keys: last.store.keys ?? null,
    rssMb: highest(rows, (r) => r.rssMb),
    anonMb: highest(rows, (r) => r.anonMb),
  };
}

/** Consecutive blocks of `size` rows; a shorter last block stands as it is. */
export function blocksOf(rows: readonly IntervalRow[], size = ROWS_PER_BLOCK): SoakBlock[] {
  const blocks: SoakBlock[] = [];
  for (let i = 0; i < rows.length; i += size) blocks.push(blockOf(rows.slice(i, i + size)));
  return blocks;
}

function pct(now: number | null | undefined, then: number | null | undefined): number | null {
  return now === null || now === undefined || then === null || then === undefined || then === 0 ? null : ((now - then) / then) * 100;
}

/** Undefined with fewer than two blocks. RSS is judged from the second block on (the first is warm-up); with two blocks, against the first. */
export function trendOf(blocks: readonly SoakBlock[]): SoakTrend | undefined {
  if (blocks.length < 2) return undefined;
  const first = blocks[0] as SoakBlock;
  const last = blocks[blocks.length - 1] as SoakBlock;
  const base = blocks.length >= 3 ? (blocks[1] as SoakBlock) : first;
  const rssPct: Record<string, number | null> = {};
  for (const p of Object.keys(last.rssMb)) rssPct[p] = pct(last.rssMb[p], base.rssMb[p]);
  return { throughputPct: pct(last.txPerS, first.txPerS) ?? Number.NaN, rssPct };
}

function perProcess(values: Readonly<Record<string, number | null>>, names: readonly string[], digits = 0): string {
  return names.map((n) => fmt(values[n], digits)).join(' / ');
}

export interface BlockTable {
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly trend: string;
}

/** The blocks as table cells and the trend as one line, for stdout and the HTML report alike; undefined with fewer than two blocks. */
export function blockTable(rows: readonly IntervalRow[], names: readonly string[]): BlockTable | undefined {
  const blocks = blocksOf(rows);
  const trend = trendOf(blocks);
  if (trend === undefined) return undefined;
  const head = ['rows', 'tx', 'tx/s', 'commit p50 ms', 'p99 ms', 'p999 ms (median / worst)', 'errors', 'leader changes', 'keys', `highest RSS MB ${names.join(' / ')}`, 'highest RssAnon MB'];
  const cells = blocks.map((b) => [`${b.firstRow}-${b.lastRow}`, String(b.tx), fmt(b.txPerS, 0), fmt(b.commitP50Ms, 1), fmt(b.commitP99Ms, 1), `${fmt(b.commitP999MedianMs, 1)} / ${fmt(b.commitP999WorstMs, 1)}`, String(b.errors), String(b.leaderChanges), String(b.keys ?? '-'), perProcess(b.rssMb, names), perProcess(b.anonMb, names)]);
  const rss = names.map((n) => `${n} ${signed(trend.rssPct[n])}`).join(', ');
  return { head, rows: cells, trend: `trend: throughput last block against the first ${signed(trend.throughputPct)}; highest RSS, last block against the ${blocks.length >= 3 ? 'second' : 'first'}: ${rss}` };
}

/** The same as a Markdown table and the trend line; nothing with fewer than two blocks. */
export function blockLines(rows: readonly IntervalRow[], names: readonly string[]): string[] {
  const t = blockTable(rows, names);
  if (t === undefined) return [];
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(t.head), `|---|${t.head.slice(1).map((_, k) => (k < 8 ? '---:' : '---')).join('|')}|`, ...t.rows.map(line), t.trend];
}

function signed(v: number | null | undefined): string {
  return v === null || v === undefined || Number.isNaN(v) ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;
}
