/**
 * The run's report: one self-contained HTML page (inline CSS and SVG, no
 * scripts) with throughput, commit latency and audit totals on one time
 * axis, the faults drawn as bands behind each chart and as a timeline per
 * process, then the checks, violations and fault log; and the raw series as
 * JSON beside it.
 */
import { writeFileSync } from 'node:fs';
import type { CheckOutcome } from './checks.js';
import type { ChaosOptions } from './options.js';
import type { RunRecord } from './record.js';
import { bands, dots, esc, FAULT_COLORS, fmt, frame, legend, linearY, logY, MARGIN, polyline, svg, timeAxis, WIDTH, yAxis, type Band } from './svg.js';

export interface ReportInput {
  readonly options: ChaosOptions;
  readonly record: RunRecord;
  readonly checks: readonly CheckOutcome[];
  readonly finalLine: string;
  readonly replay: string;
  readonly startedAt: string;
  /** Run time at which the load stopped, in ms. */
  readonly loadEndMs: number;
  readonly expectedTotal: number;
  readonly processes: readonly string[];
  readonly extra: Readonly<Record<string, unknown>>;
}

const COLORS = { committed: '#2ca02c', aborted: '#ff7f0e', unknown: '#d62728', p99: '#333' };
/** Points drawn per scatter at most: a long run is thinned evenly, the JSON keeps everything. */
const MAX_POINTS = 20_000;

export function writeReport(input: ReportInput, htmlPath: string, jsonPath: string): void {
  writeFileSync(jsonPath, `${JSON.stringify(rawSeries(input))}\n`);
  writeFileSync(htmlPath, html(input));
}

function rawSeries(i: ReportInput): unknown {
  const r = i.record;
  return {
    version: 1,
    seed: i.options.seed,
    options: i.options,
    startedAt: i.startedAt,
    finalLine: i.finalLine,
    replay: i.replay,
    loadEndMs: i.loadEndMs,
    checks: i.checks,
    violations: r.violations,
    faults: r.faults,
    progress: r.progress,
    transfers: r.transfers,
    audits: r.audits,
    ...i.extra,
  };
}

function faultBands(i: ReportInput, endS: number): Band[] {
  return i.record.faults.map((f) => ({ startS: f.startMs / 1000, endS: (f.endMs ?? f.healedMs ?? endS * 1000) / 1000, kind: f.kind, label: `${f.description} ${(f.startMs / 1000).toFixed(1)}-${((f.endMs ?? endS * 1000) / 1000).toFixed(1)} s` }));
}

function thin<T>(items: readonly T[]): readonly T[] {
  if (items.length <= MAX_POINTS) return items;
  const step = items.length / MAX_POINTS;
  return Array.from({ length: MAX_POINTS }, (_, k) => items[Math.floor(k * step)] as T);
}

function throughputChart(i: ReportInput, endS: number): string {
  const f = frame(240, endS);
  const bucketS = Math.max(2, Math.ceil(endS / 150));
  const n = Math.ceil(endS / bucketS) + 1;
  const series = { committed: new Array<number>(n).fill(0), aborted: new Array<number>(n).fill(0), unknown: new Array<number>(n).fill(0) };
  for (const t of i.record.transfers) {
    const b = Math.min(n - 1, Math.floor(t.endMs / 1000 / bucketS));
    series[t.outcome][b] = (series[t.outcome][b] ?? 0) + 1 / bucketS;
  }
  const max = Math.max(1, ...series.committed, ...series.aborted, ...series.unknown);
  const { y, ticks } = linearY(f, max);
  const line = (vals: number[], color: string): string => polyline(f, vals.map((v, k) => [(k + 0.5) * bucketS, v] as const), y, color);
  return svg(f, bands(f, faultBands(i, endS)) + timeAxis(f) + yAxis(f, ticks, y, 'transfers / s') + line(series.committed, COLORS.committed) + line(series.aborted, COLORS.aborted) + line(series.unknown, COLORS.unknown));
}

function latencyChart(i: ReportInput, endS: number): string {
  const f = frame(280, endS);
  const withLatency = i.record.transfers.filter((t) => t.commitMs !== null);
  const lat = withLatency.map((t) => t.commitMs as number);
  const { y, ticks } = logY(f, lat.reduce((m, v) => Math.min(m, v), 1), lat.reduce((m, v) => Math.max(m, v), 10));
  const pts = (o: 'committed' | 'aborted'): (readonly [number, number])[] => thin(withLatency.filter((t) => t.outcome === o)).map((t) => [t.endMs / 1000, t.commitMs as number] as const);
  // p99 per bucket, as Jepsen's latency-quantiles plot draws it.
  const bucketS = Math.max(2, Math.ceil(endS / 120));
  const buckets = new Map<number, number[]>();
  for (const t of withLatency) {
    const b = Math.floor(t.endMs / 1000 / bucketS);
    buckets.set(b, [...(buckets.get(b) ?? []), t.commitMs as number]);
  }
  const p99 = [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, v]) => [(b + 0.5) * bucketS, quantile(v, 0.99)] as const);
  const unknown = i.record.transfers.filter((t) => t.outcome === 'unknown').map((t) => `<line x1="${f.x(t.endMs / 1000).toFixed(1)}" y1="${f.plotTop}" x2="${f.x(t.endMs / 1000).toFixed(1)}" y2="${f.plotTop + 8}" stroke="${COLORS.unknown}"/>`);
  return svg(f, bands(f, faultBands(i, endS)) + timeAxis(f) + yAxis(f, ticks, y, 'commit latency, ms (log)') + dots(f, pts('committed'), y, COLORS.committed) + dots(f, pts('aborted'), y, COLORS.aborted) + polyline(f, p99, y, COLORS.p99, 1) + unknown.join(''));
}

function auditChart(i: ReportInput, endS: number): string {
  const f = frame(200, endS);
  const totals = i.record.audits.filter((a) => a.total !== null).map((a) => a.total as number);
  const lo = totals.reduce((m, v) => Math.min(m, v), i.expectedTotal);
  const hi = totals.reduce((m, v) => Math.max(m, v), i.expectedTotal);
  const pad = Math.max(1, (hi - lo) * 0.2, i.expectedTotal * 0.001);
  const y = (v: number): number => f.plotBottom - ((v - (lo - pad)) / (hi + pad - (lo - pad))) * (f.plotBottom - f.plotTop);
  const ticks = lo === hi ? [lo - pad, lo, lo + pad] : [lo, (lo + hi) / 2, hi];
  const ok = i.record.audits.filter((a) => a.total !== null).map((a) => [a.endMs / 1000, a.total as number] as const);
  const bad = ok.filter(([, v]) => v !== i.expectedTotal);
  const missed = i.record.audits.filter((a) => a.total === null).map((a) => `<text x="${f.x(a.endMs / 1000).toFixed(1)}" y="${f.plotBottom - 4}" font-size="10" fill="#888" text-anchor="middle">×<title>audit ${esc(a.txId)}: ${a.outcome}${a.outcome === 'committed' ? ', a read was lost' : ''}</title></text>`);
  const expected = `<line x1="${MARGIN.left}" y1="${y(i.expectedTotal).toFixed(1)}" x2="${WIDTH - MARGIN.right}" y2="${y(i.expectedTotal).toFixed(1)}" stroke="#2ca02c" stroke-dasharray="4 3"/>`;
  return svg(f, bands(f, faultBands(i, endS)) + timeAxis(f) + yAxis(f, ticks, y, 'audit total') + expected + dots(f, ok, y, '#1f77b4', 3) + dots(f, bad, y, COLORS.unknown, 5) + missed.join(''));
}

function timeline(i: ReportInput, endS: number): string {
  const rows = i.processes;
  const rowH = 18;
  const f = frame(MARGIN.top + rows.length * rowH + MARGIN.bottom, endS);
  const parts: string[] = [timeAxis(f)];
  rows.forEach((name, k) => {
    const y = MARGIN.top + k * rowH;
    parts.push(`<text x="${MARGIN.left - 6}" y="${y + rowH / 2}" font-size="11" text-anchor="end" dominant-baseline="middle">${esc(name)}</text>`);
    for (const fault of i.record.faults.filter((x) => x.target === name)) {
      const x1 = f.x(fault.startMs / 1000);
      const x2 = f.x((fault.endMs ?? endS * 1000) / 1000);
      // Never whole again: the tail runs to the end, outlined, so a stuck process stands out.
      const never = fault.healedMs === null;
      const healed = never ? f.x(endS) : f.x((fault.healedMs ?? 0) / 1000);
      const color = FAULT_COLORS[fault.kind] ?? '#999';
      parts.push(`<rect x="${x1.toFixed(1)}" y="${y + 3}" width="${Math.max(1, x2 - x1).toFixed(1)}" height="${rowH - 6}" fill="${color}"><title>${esc(fault.description)}${fault.note === undefined ? '' : ` (${esc(fault.note)})`}</title></rect>`);
      if (healed > x2) parts.push(`<rect x="${x2.toFixed(1)}" y="${y + 7}" width="${(healed - x2).toFixed(1)}" height="${rowH - 14}" fill="${color}" fill-opacity="0.35"${never ? ' stroke="#d62728" stroke-dasharray="3 2"' : ''}><title>${never ? 'never whole again' : 'recovering'}</title></rect>`);
    }
  });
  return svg(f, parts.join(''));
}

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

function html(i: ReportInput): string {
  const r = i.record;
  const endS = r.faults.reduce((m, f) => Math.max(m, f.healedMs ?? f.endMs ?? 0), i.loadEndMs) / 1000;
  const failed = r.violations.length > 0;
  const faultLegend = legend(Object.entries(FAULT_COLORS).map(([k, c]) => ({ label: k, color: c, band: true })));
  const lat = r.transfers.filter((t) => t.commitMs !== null).map((t) => t.commitMs as number);
  const checks = i.checks.map((c) => `<tr><td class="${c.ok ? 'ok' : 'bad'}">${c.ok ? 'ok' : 'FAIL'}</td><td>${esc(c.name)}</td><td>${esc(c.detail)}</td></tr>`).join('');
  const violations = r.violations.slice(0, 500).map((v) => `<li><b>${esc(v.check)}</b>: ${esc(v.message)}</li>`).join('');
  const faults = r.faults
    .map((f) => `<tr><td>${(f.startMs / 1000).toFixed(1)}</td><td>${f.endMs === null ? '-' : (f.endMs / 1000).toFixed(1)}</td><td>${f.healedMs === null ? 'never' : (f.healedMs / 1000).toFixed(1)}</td><td>${esc(f.lane)}</td><td>${esc(f.kind)}</td><td>${esc(f.description)}</td><td>${esc(f.note ?? '')}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chaos seed ${i.options.seed}: ${failed ? 'VIOLATIONS' : 'ok'}</title>
<style>
body{font-family:sans-serif;margin:24px;max-width:1040px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
code,pre{background:#f4f4f4;padding:2px 4px}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
.ok{color:#2ca02c;font-weight:bold}.bad{color:#d62728;font-weight:bold}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
.verdict{font-size:18px;padding:8px 12px;display:inline-block;border-radius:4px;color:#fff;background:${failed ? '#d62728' : '#2ca02c'}}
</style></head><body>
<h1>Chaos run, seed ${i.options.seed}</h1>
<p class="verdict">${failed ? `${r.violations.length} violation(s)` : 'no violations'}</p>
<p><code>${esc(i.finalLine)}</code></p>
<p>Started ${esc(i.startedAt)}; ${i.options.durationS} s of load, store ${esc(i.options.store)}, faults ${esc(i.options.faults.join(', ') || 'none')}, ${i.options.clients} transfer clients, an audit every ~${i.options.auditEveryMs} ms.
Commit latency p50 ${fmt(quantile(lat, 0.5))} ms, p99 ${fmt(quantile(lat, 0.99))} ms.</p>
<p>Replay the fault schedule (timing is not replayed): <code>${esc(i.replay)}</code></p>
<h2>Throughput</h2>
${legend([{ label: 'committed', color: COLORS.committed }, { label: 'aborted', color: COLORS.aborted }, { label: 'unknown to the client', color: COLORS.unknown }])}${faultLegend}
${throughputChart(i, endS)}
<h2>Commit latency</h2>
${legend([{ label: 'committed', color: COLORS.committed }, { label: 'aborted', color: COLORS.aborted }, { label: 'p99', color: COLORS.p99 }, { label: 'no answer (tick at top)', color: COLORS.unknown }])}
${latencyChart(i, endS)}
<h2>Audit totals</h2>
${legend([{ label: 'audit total', color: '#1f77b4' }, { label: `expected ${i.expectedTotal}`, color: '#2ca02c' }, { label: 'wrong total', color: COLORS.unknown }, { label: '× audit aborted or a read lost', color: '#888' }])}
${auditChart(i, endS)}
<h2>Faults per process</h2>
${faultLegend}
${timeline(i, endS)}
<h2>Checks</h2><table><tr><th></th><th>check</th><th>detail</th></tr>${checks}</table>
${failed ? `<h2>Violations</h2><ol>${violations}</ol>` : ''}
<h2>Fault log</h2><table><tr><th>start s</th><th>lifted s</th><th>whole s</th><th>lane</th><th>kind</th><th>fault</th><th>note</th></tr>${faults}</table>
</body></html>
`;
}
