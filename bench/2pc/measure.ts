/**
 * Measuring one row of the 2PC benchmark: settle the backend, take a
 * snapshot of its counters (store calls per process, the store's revision,
 * CPU time per process), run the closed loop beside a store probe, settle
 * again, take the second snapshot, and turn the differences into costs per
 * transaction. Settling (no live transaction at the coordinator, none open
 * at the participants) makes the acks and garbage collection of the row's
 * transactions count in the row, and none of the previous row's.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { keepAliveTimers } from '../../lib/timers.js';
import { tlsHttpClient } from '../../lib/tls.js';
import type { Backend } from './backends.js';
import { addCounts, diffCounts, readsOf, writesOf, zeroCounts, type CallCounts } from './counting-store.js';
import type { ChildReport } from './ipc.js';
import { cpuMsOf } from '../proc-cpu.js';
import { progress } from '../output.js';
import type { BenchRow, CpuPerTx } from './report.js';
import { runRow, StoreProbe } from './workload.js';

/** Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), in percent; null where unknown. */
function cpuPressure(): number | null {
  try {
    const m = /some avg10=([0-9.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m?.[1] === undefined ? null : Number(m[1]);
  } catch {
    return null;
  }
}

export interface RowPlan {
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number | undefined;
  readonly txs: number | undefined;
}

interface Snapshot {
  readonly coordinator: ChildReport;
  readonly participants: readonly ChildReport[];
  readonly revision: number;
  /** Summed over the store's nodes; null when they cannot be read (etcd). */
  readonly storeRequests: number | null;
  readonly storeAppends: number | null;
}

interface CpuSample {
  /** CPU milliseconds used so far, by process group; null where /proc cannot tell. */
  readonly store: number | null;
  readonly coordinator: number | null;
  readonly participants: number | null;
  readonly driver: number;
  readonly atMs: number;
}

function sumCpu(pids: readonly (number | undefined)[]): number | null {
  return cpuMsOf(pids) ?? null;
}

function cpuNow(b: Backend): CpuSample {
  const usage = process.cpuUsage();
  return {
    store: sumCpu(b.storePids()),
    coordinator: sumCpu([b.coordinator.pid]),
    participants: sumCpu(b.participants.map((p) => p.pid)),
    driver: (usage.user + usage.system) / 1_000,
    atMs: performance.now(),
  };
}

async function snapshot(b: Backend): Promise<Snapshot> {
  const [coordinator, ...participants] = await Promise.all(b.procs.map((p) => p.report()));
  const revision = (await b.driverStore.store.range('bench2pc/', { limit: 1 })).revision;
  const [storeRequests, storeAppends] = b.spec.kind === 'builtin' ? await storeCounters(b.spec.endpoints, ['store_http_requests_total', 'store_proposal_batches_total']) : [null, null];
  return { coordinator: coordinator as ChildReport, participants, revision, storeRequests: storeRequests ?? null, storeAppends: storeAppends ?? null };
}

/** Counters of the built-in store's /metrics, summed over its nodes; null if a node does not answer. */
async function storeCounters(endpoints: readonly string[], names: readonly string[]): Promise<(number | null)[]> {
  const http = tlsHttpClient({}); // https: the process's CA and client certificate (secure.ts sets them)
  const texts = await Promise.all(endpoints.map((e) => http.request({ method: 'GET', url: `${e}/metrics`, timeoutMs: 5_000 }).then((r) => r.text, () => null)));
  http.close();
  return names.map((name) => {
    let sum = 0;
    for (const t of texts) {
      const m = t === null ? null : new RegExp(`^${name} (\\d+)`, 'm').exec(t);
      if (m === null) return null;
      sum += Number(m[1]);
    }
    return sum;
  });
}

/** Waits until the coordinator drives nothing and the participants hold nothing open (acks, GC done). */
async function quiesce(b: Backend, timeoutMs = 30_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const [c, ...ps] = await Promise.all(b.procs.map((p) => p.report()));
    const live = c?.metrics['twopc_live_transactions'] ?? 0;
    const open = ps.reduce((n, p) => n + (p.metrics['twopc_participant_open_transactions'] ?? 0), 0);
    if (live === 0 && open === 0) return undefined;
    last = `${live} live at the coordinator, ${open} open at the participants`;
    await keepAliveTimers.sleep(200);
  }
  return `not settled after ${timeoutMs / 1_000} s (${last}); per-transaction costs include unfinished work`;
}

function participantCounts(s: Snapshot): CallCounts {
  return s.participants.reduce((acc, p) => addCounts(acc, p.counts), zeroCounts());
}

function perTx(after: number | null, before: number | null, n: number): number | null {
  return after === null || before === null || n === 0 ? null : (after - before) / n;
}

/**
 * CPU per committed transaction over the measured window only (steady
 * state: warm-up, settling and idle time left out), and the cores all of it
 * kept busy. Background work (heartbeats, watch keepalives, recovery scans,
 * the probe) is in it too; it matters only when throughput is low.
 */
function cpuCost(a: CpuSample | undefined, z: CpuSample, committed: number): CpuPerTx {
  if (a === undefined) return { store: null, coordinator: null, participants: null, driver: 0, busyCores: null };
  const groups = [perTx(z.store, a.store, 1), perTx(z.coordinator, a.coordinator, 1), perTx(z.participants, a.participants, 1), z.driver - a.driver];
  const busy = groups.some((x) => x === null) ? null : (groups as number[]).reduce((s, x) => s + x, 0) / Math.max(1, z.atMs - a.atMs);
  return {
    store: perTx(z.store, a.store, committed),
    coordinator: perTx(z.coordinator, a.coordinator, committed),
    participants: perTx(z.participants, a.participants, committed),
    driver: committed === 0 ? 0 : (z.driver - a.driver) / committed,
    busyCores: busy,
  };
}

export async function measureRow(b: Backend, plan: RowPlan, label: string, tag: string): Promise<BenchRow> {
  const { clients } = plan;
  const notes: string[] = [];
  const settled = await quiesce(b);
  if (settled !== undefined) notes.push(`before the row: ${settled}`);
  const loadStart = os.loadavg()[0] ?? 0;
  const before = await snapshot(b);
  const probe = new StoreProbe(b.driverStore.store, `bench2pc/probe/${tag}`);
  probe.start();
  let windowStart: CpuSample | undefined;
  const startTimer = setTimeout(() => (windowStart = cpuNow(b)), plan.warmupMs);
  const goal = plan.txs === undefined ? `${((plan.durationMs ?? 0) / 1_000).toFixed(0)} s` : `${plan.txs} txs`;
  const result = await runRow(b.targets, {
    clients,
    warmupMs: plan.warmupMs,
    ...(plan.txs === undefined ? { durationMs: plan.durationMs as number } : { txs: plan.txs }),
    onProgress: (ms, done, errors) => progress(`${label} ${(ms / 1_000).toFixed(1)} s (${goal})  ${done} committed  ${(done / Math.max(ms / 1_000, 1e-3)).toFixed(0)} tx/s  ${errors} errors`, false),
  });
  const windowEnd = cpuNow(b);
  clearTimeout(startTimer);
  const storeCas = await probe.stop();
  const machineLoad = { loadAvg1Start: loadStart, loadAvg1End: os.loadavg()[0] ?? 0, cpuPressurePct: cpuPressure() };
  const after_ = await quiesce(b);
  if (after_ !== undefined) notes.push(`after the row: ${after_}`);
  const after = await snapshot(b);
  const n = result.begun;
  const coordinatorCalls = diffCounts(after.coordinator.counts, before.coordinator.counts);
  const participantCalls = diffCounts(participantCounts(after), participantCounts(before));
  return {
    backend: b.label,
    clients,
    result,
    storeCas,
    cost: {
      coordinatorWrites: n === 0 ? 0 : writesOf(coordinatorCalls) / n,
      participantWrites: n === 0 ? 0 : writesOf(participantCalls) / n,
      coordinatorReads: n === 0 ? 0 : readsOf(coordinatorCalls) / n,
      participantReads: n === 0 ? 0 : readsOf(participantCalls) / n,
      storeRevisions: n === 0 ? null : (after.revision - before.revision - probe.writes) / n,
      // The probe's CAS and the snapshots' /metrics and range reads are the bench's own requests, not the transactions'.
      storeRequests: perTx(after.storeRequests, before.storeRequests === null ? null : before.storeRequests + probe.writes + b.spec.endpoints.length + 1, n),
      storeAppends: perTx(after.storeAppends, before.storeAppends === null ? null : before.storeAppends + probe.writes, n),
      coordinatorCalls,
      participantCalls,
    },
    cpu: cpuCost(windowStart, windowEnd, result.committed),
    machineLoad,
    notes,
  };
}

