/**
 * The soak's report: one self-contained HTML page (inline CSS and SVG, drawn
 * with the chaos runner's chart helpers, chaos/svg.ts) with throughput,
 * commit latency, RSS per process, the store's size and its term over time,
 * the interval table and the errors; and everything as JSON beside it.
 */
import { writeFileSync } from 'node:fs';
import { dots, esc, fmt, frame, legend, linearY, logY, polyline, svg, timeAxis, yAxis } from '../../chaos/svg.js';
import { blockTable, type SoakBlock, type SoakTrend } from './blocks.js';
import type { IntervalRow, SoakTotals } from './intervals.js';
import type { SecondCounts } from './load.js';
import type { SoakOptions } from './run.js';
import type { Sample } from './sampler.js';

export interface SoakReportInput {
  readonly options: SoakOptions;
  readonly command: string;
  readonly startedAt: string;
  readonly machine: Readonly<Record<string, unknown>>;
  readonly loadAverage: readonly number[];
  readonly processes: readonly string[];
  readonly rows: readonly IntervalRow[];
  readonly samples: readonly Sample[];
  readonly perSecond: SecondCounts;
  readonly totals: SoakTotals;
  /** Ten-row blocks and the trend across them (blocks.ts); no trend with fewer than two blocks. */
  readonly blocks: readonly SoakBlock[];
  readonly trend: SoakTrend | undefined;
  readonly errorSamples: Readonly<Record<string, readonly string[]>>;
  readonly finalLine: string;
  readonly passed: boolean;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const COLORS = { committed: '#2ca02c', interval: '#1f77b4', errors: '#d62728', p50: '#2ca02c', p99: '#ff7f0e', p999: '#d62728', keys: '#1f77b4', bytes: '#2ca02c', disk: '#8c564b' };
/** Points per line at most: a long soak is thinned evenly; the JSON keeps everything. */
const MAX_POINTS = 2_000;

type Point = readonly [number, number];

function thin(points: readonly Point[]): readonly Point[] {
  if (points.length <= MAX_POINTS) return points;
  const step = points.length / MAX_POINTS;
  return Array.from({ length: MAX_POINTS }, (_, k) => points[Math.floor(k * step)] as Point);
}

const defined = (points: readonly (readonly [number, number | null | undefined])[]): Point[] => points.filter((p): p is Point => p[1] !== null && p[1] !== undefined && !Number.isNaN(p[1]));
const mid = (r: IntervalRow): number => (r.startS + r.endS) / 2;

export function writeSoakReport(input: SoakReportInput, htmlPath: string, jsonPath: string): void {
  writeFileSync(jsonPath, `${JSON.stringify({ version: 1, ...input }, null, 1)}\n`);
  writeFileSync(htmlPath, html(input));
}

function throughputChart(i: SoakReportInput, endS: number): string {
  const f = frame(240, endS);
  const perS = i.perSecond.committed.map((v, s) => [s + 0.5, v] as const);
  const errors = i.perSecond.errors.map((v, s) => [s + 0.5, v] as const);
  const intervals = i.rows.map((r) => [mid(r), r.txPerS] as const);
  const { y, ticks } = linearY(f, Math.max(1, ...perS.map((p) => p[1]), ...intervals.map((p) => p[1])));
  return svg(f, timeAxis(f) + yAxis(f, ticks, y, 'transactions / s') + polyline(f, thin(perS), y, COLORS.committed, 0.8) + polyline(f, thin(errors), y, COLORS.errors, 1) + polyline(f, intervals, y, COLORS.interval, 2.5) + dots(f, intervals, y, COLORS.interval, 3.5));
}

function latencyChart(i: SoakReportInput, endS: number): string {
  const f = frame(260, endS);
  const series = (q: 'p50Ms' | 'p99Ms' | 'p999Ms'): Point[] => defined(i.rows.map((r) => [mid(r), r.commit[q]] as const));
  const all = [...series('p50Ms'), ...series('p999Ms')].map((p) => p[1]);
  const { y, ticks } = logY(f, Math.min(1, ...all), Math.max(10, ...all));
  const line = (q: 'p50Ms' | 'p99Ms' | 'p999Ms', color: string): string => polyline(f, series(q), y, color, 2) + dots(f, series(q), y, color, 3);
  return svg(f, timeAxis(f) + yAxis(f, ticks, y, 'commit latency, ms (log)') + line('p50Ms', COLORS.p50) + line('p99Ms', COLORS.p99) + line('p999Ms', COLORS.p999));
}

function rssChart(i: SoakReportInput, endS: number): string {
  const f = frame(280, endS);
  const series = i.processes.map((name) => defined(i.samples.map((s) => [s.t, s.rssMb[name]] as const)));
  const { y, ticks } = linearY(f, Math.max(1, ...series.flat().map((p) => p[1])));
  return svg(f, timeAxis(f) + yAxis(f, ticks, y, 'RSS, MB') + series.map((pts, k) => polyline(f, thin(pts), y, PALETTE[k % PALETTE.length] as string)).join(''));
}

function storeCharts(i: SoakReportInput, endS: number): string {
  const keys = defined(i.rows.map((r) => [r.endS, r.store.keys] as const));
  const fk = frame(200, endS);
  const k = linearY(fk, Math.max(1, ...keys.map((p) => p[1])));
  const keyChart = svg(fk, timeAxis(fk) + yAxis(fk, k.ticks, k.y, 'keys') + polyline(fk, keys, k.y, COLORS.keys, 2) + dots(fk, keys, k.y, COLORS.keys, 3));
  const bytes = defined(i.rows.map((r) => [r.endS, r.store.bytes === null ? null : r.store.bytes / 2 ** 20] as const));
  const disk = defined(i.rows.map((r) => [r.endS, r.store.diskBytes === null ? null : r.store.diskBytes / 2 ** 20] as const));
  const fb = frame(200, endS);
  const b = linearY(fb, Math.max(1, ...bytes.map((p) => p[1]), ...disk.map((p) => p[1])));
  const line = (pts: Point[], color: string): string => polyline(fb, pts, b.y, color, 2) + dots(fb, pts, b.y, color, 3);
  const byteChart = svg(fb, timeAxis(fb) + yAxis(fb, b.ticks, b.y, 'MB') + line(bytes, COLORS.bytes) + line(disk, COLORS.disk));
  return `${keyChart}\n${legend([{ label: 'keys and values (as the store counts them)', color: COLORS.bytes }, { label: 'on disk (the leader\u2019s data folder; etcd: its database file)', color: COLORS.disk }])}\n${byteChart}`;
}

function termChart(i: SoakReportInput, endS: number): string {
  const f = frame(160, endS);
  const terms = defined(i.samples.map((s) => [s.t, s.term] as const));
  const lo = Math.min(...terms.map((p) => p[1]), Number.POSITIVE_INFINITY);
  const hi = Math.max(...terms.map((p) => p[1]), Number.NEGATIVE_INFINITY);
  const base = Number.isFinite(lo) ? lo - 1 : 0;
  const { y, ticks } = linearY(f, Math.max(2, (Number.isFinite(hi) ? hi : 1) - base));
  const pts = terms.map(([t, v]) => [t, v - base] as const);
  return svg(f, timeAxis(f) + yAxis(f, ticks, y, `term \u2212 ${fmt(base)}`) + polyline(f, thin(pts), y, '#333', 2));
}

function intervalTable(i: SoakReportInput): string {
  const head = ['#', 'end s', 'tx', 'tx/s', 'p50 ms', 'p99 ms', 'p999 ms', 'errors', 'leader changes', 'term', 'leader', 'keys', 'store MB', 'disk MB', ...i.processes.map((p) => `${p} MB`), 'RssAnon MB'];
  const mb = (v: number | null): string => (v === null ? '-' : (v / 2 ** 20).toFixed(1));
  const n = (v: number | null | undefined, d: number): string => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
  const rows = i.rows.map((r) => {
    const errors = r.errors === 0 ? '0' : `${r.errors}: ${Object.entries(r.errorsByCode).map(([c, k]) => `${c} ${k}`).join(', ')}`;
    const cells = [r.index, n(r.endS, 0), r.tx, n(r.txPerS, 0), n(r.commit.p50Ms, 1), n(r.commit.p99Ms, 1), n(r.commit.p999Ms, 1), errors, r.leaderChanges, r.term ?? '-', r.leader ?? '-', r.store.keys ?? '-', mb(r.store.bytes), mb(r.store.diskBytes), ...i.processes.map((p) => n(r.rssMb[p], 0)), i.processes.map((p) => n(r.anonMb[p], 0)).join(' / ')];
    return `<tr>${cells.map((c, k) => `<td class="${(k === 7 && r.errors > 0) || (k === 8 && r.leaderChanges > 0) ? 'bad' : ''}">${esc(String(c))}</td>`).join('')}</tr>`;
  });
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.join('')}</table>`;
}

/** The ten-interval blocks and the trend line (blocks.ts), the numbers the soak targets read; nothing below two blocks. */
function blocksSection(i: SoakReportInput): string {
  const t = blockTable(i.rows, i.processes.filter((p) => p !== 'driver'));
  if (t === undefined) return '<p>Fewer than two blocks of ten intervals: no trend.</p>';
  const row = (cells: readonly string[], tag: string): string => `<tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  return `<table>${row(t.head, 'th')}${t.rows.map((r) => row(r, 'td')).join('')}</table><p>${esc(t.trend)}</p>`;
}

function errorList(i: SoakReportInput): string {
  const entries = Object.entries(i.totals.errorsByCode);
  if (entries.length === 0) return '<p>No errors.</p>';
  return `<table><tr><th>code</th><th>count</th><th>first messages</th></tr>${entries.map(([c, k]) => `<tr><td>${esc(c)}</td><td>${k}</td><td>${(i.errorSamples[c] ?? []).map((m) => esc(m)).join('<br>')}</td></tr>`).join('')}</table>`;
}

function html(i: SoakReportInput): string {
  const o = i.options;
  const endS = Math.max(1, i.rows.at(-1)?.endS ?? 0, i.samples.at(-1)?.t ?? 0);
  const t = i.totals;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>soak ${esc(o.store)} ${o.durationS} s: ${i.passed ? 'ok' : 'FAILED'}</title>
<style>
body{font-family:sans-serif;margin:24px;max-width:1040px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
code{background:#f4f4f4;padding:2px 4px}
table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top}
.bad{color:#d62728;font-weight:bold}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
.verdict{font-size:18px;padding:8px 12px;display:inline-block;border-radius:4px;color:#fff;background:${i.passed ? '#2ca02c' : '#d62728'}}
</style></head><body>
<h1>Soak: 2PC on the ${o.store === 'builtin' ? 'built-in store' : 'etcd'}, ${o.durationS} s</h1>
<p class="verdict">${i.passed ? 'no errors, no leader change' : `${t.errors} error(s), ${t.leaderChanges} leader change(s)${t.exited.length > 0 ? `, exited: ${esc(t.exited.join(', '))}` : ''}`}</p>
<p><code>${esc(i.finalLine)}</code></p>
<p>Started ${esc(i.startedAt)}: <code>${esc(i.command)}</code>; ${o.clients} clients, ${o.rate === undefined ? 'flat out' : `at most ${o.rate} transactions started per second`}, a row every ${o.intervalS} s. Load average at the end ${i.loadAverage.map((v) => v.toFixed(1)).join(' / ')}.</p>
<h2>Throughput</h2>
${legend([{ label: 'committed per second', color: COLORS.committed }, { label: 'per interval', color: COLORS.interval }, { label: 'errors per second', color: COLORS.errors }])}
${throughputChart(i, endS)}
<h2>Commit latency per interval</h2>
${legend([{ label: 'p50', color: COLORS.p50 }, { label: 'p99', color: COLORS.p99 }, { label: 'p999', color: COLORS.p999 }])}
${latencyChart(i, endS)}
<h2>RSS per process</h2>
${legend(i.processes.map((p, k) => ({ label: p, color: PALETTE[k % PALETTE.length] as string })))}
${rssChart(i, endS)}
<h2>Store size</h2>
${storeCharts(i, endS)}
<h2>Store term (every rise is an election)</h2>
${termChart(i, endS)}
<h2>Blocks of ten intervals</h2>
${blocksSection(i)}
<h2>Intervals</h2>
${intervalTable(i)}
<h2>Errors</h2>
${errorList(i)}
</body></html>
`;
}
