/** The 2PC benchmark's Markdown tables. */
import { fmt as f, ratio } from '../output.js';
import type { CallCounts } from './counting-store.js';
import type { LatencySummary, RowResult } from './workload.js';

export interface CostPerTx {
  /** Store write calls per begun transaction, by the coordinator and by the participants. */
  readonly coordinatorWrites: number;
  readonly participantWrites: number;
  readonly coordinatorReads: number;
  readonly participantReads: number;
  /** Store revisions per transaction (state-changing writes the store applied; the probe's taken out). */
  readonly storeRevisions: number | null;
  /** HTTP requests the store nodes served (forwards included), and their Raft appends (proposal batches), per begun transaction; null on etcd. */
  readonly storeRequests: number | null;
  readonly storeAppends: number | null;
  readonly coordinatorCalls: CallCounts;
  readonly participantCalls: CallCounts;
}

export interface CpuPerTx {
  /** CPU milliseconds per committed transaction in the measured window, by process group; null where /proc could not tell. */
  readonly store: number | null;
  readonly coordinator: number | null;
  readonly participants: number | null;
  readonly driver: number;
  /** Average cores busy over the measured window, all groups together. */
  readonly busyCores: number | null;
}

export interface BenchRow {
  readonly backend: string;
  readonly clients: number;
  readonly result: RowResult;
  readonly storeCas: LatencySummary & { readonly samples: number };
  readonly cost: CostPerTx;
  readonly cpu: CpuPerTx;
  /** Everyone's load on the machine during the row: 1-minute load average, and CPU pressure (PSI some avg10, %) at its end. */
  readonly machineLoad: { readonly loadAvg1Start: number; readonly loadAvg1End: number; readonly cpuPressurePct: number | null };
  readonly notes: readonly string[];
}

export function renderRows(rows: readonly BenchRow[]): string {
  const out = [
    '| store | clients | tx/s | commit p50 ms | commit p99 ms | begin→outcome p50 ms | begin→outcome p99 ms | store CAS p50 ms | store writes/tx (coord + parts) | store revisions/tx | store reads/tx | store HTTP requests/tx | log appends/tx | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const c = r.cost;
    const writes = c.coordinatorWrites + c.participantWrites;
    out.push(
      `| ${r.backend} | ${r.clients} | ${f(r.result.txPerS, 0)} | ${f(r.result.commit.p50Ms, 1)} | ${f(r.result.commit.p99Ms, 1)} | ${f(r.result.total.p50Ms, 1)} | ${f(r.result.total.p99Ms, 1)} | ${f(r.storeCas.p50Ms, 1)} | ${f(writes, 2)} (${f(c.coordinatorWrites, 2)} + ${f(c.participantWrites, 2)}) | ${f(c.storeRevisions, 2)} | ${f(c.coordinatorReads + c.participantReads, 2)} | ${f(c.storeRequests, 2)} | ${f(c.storeAppends, 2)} | ${r.result.errors} |`,
    );
  }
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.backend} at ${r.clients} clients: ${n}`));
  const errors = rows.filter((r) => r.result.errorSamples.length > 0).map((r) => `- ${r.backend} at ${r.clients} clients, first error: ${r.result.errorSamples[0] as string}`);
  return [...out, ...(notes.length + errors.length > 0 ? ['', ...notes, ...errors] : [])].join('\n');
}

export function renderCpu(rows: readonly BenchRow[]): string {
  const out = [
    '| store | clients | CPU ms/tx: store (3 nodes) | coordinator | participants (2) | bench client | busy cores (ours) | load avg | CPU pressure % |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const l = r.machineLoad;
    out.push(
      `| ${r.backend} | ${r.clients} | ${f(r.cpu.store, 2)} | ${f(r.cpu.coordinator, 2)} | ${f(r.cpu.participants, 2)} | ${f(r.cpu.driver, 2)} | ${f(r.cpu.busyCores, 2)} | ${f(l.loadAvg1Start, 1)}→${f(l.loadAvg1End, 1)} | ${f(l.cpuPressurePct, 0)} |`,
    );
  }
  return out.join('\n');
}

/** Side by side, per client count, the first backend against the second. */
export function renderComparison(rows: readonly BenchRow[], a: string, b: string): string {
  const out = [
    `| clients | ${a} tx/s | ${b} tx/s | tx/s ${a}/${b} | ${a} commit p50 ms | ${b} commit p50 ms | p50 ${a}/${b} | ${a} commit p99 ms | ${b} commit p99 ms | p99 ${a}/${b} |`,
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const clients = [...new Set(rows.map((r) => r.clients))];
  for (const c of clients) {
    const x = rows.find((r) => r.backend === a && r.clients === c)?.result;
    const y = rows.find((r) => r.backend === b && r.clients === c)?.result;
    out.push(
      `| ${c} | ${f(x?.txPerS, 0)} | ${f(y?.txPerS, 0)} | ${ratio(x?.txPerS, y?.txPerS)} | ${f(x?.commit.p50Ms, 1)} | ${f(y?.commit.p50Ms, 1)} | ${ratio(x?.commit.p50Ms, y?.commit.p50Ms)} | ${f(x?.commit.p99Ms, 1)} | ${f(y?.commit.p99Ms, 1)} | ${ratio(x?.commit.p99Ms, y?.commit.p99Ms)} |`,
    );
  }
  return out.join('\n');
}
