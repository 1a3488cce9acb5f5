/**
 * One soak, start to end: start the whole product as bench:2pc does
 * (bench/2pc/backends.ts: a 3-node store, built-in or etcd, one coordinator
 * and two participants, each its own process), run the 2PC load steadily
 * (load.ts) beside the sampler (sampler.ts), close an interval every
 * `intervalS` (a table row as it ends), then stop every process by pid and
 * write the HTML report and its JSON.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pacerFor } from '../../chaos/pacer.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { startBackend, storeStarter, type Backend, type BackendOptions } from '../2pc/backends.js';
import { machine, progress } from '../output.js';
import { blockLines, blocksOf, trendOf } from './blocks.js';
import { finalLine, IntervalStats, passed, tableHeader, tableRow, totalsOf, type IntervalRow, type SoakTotals } from './intervals.js';
import { runSteadyLoad, type SecondCounts } from './load.js';
import { writeSoakReport } from './report.js';
import { Sampler, type ProcRef } from './sampler.js';
import { builtinObserver, etcdObserver, type StoreObserver } from './store-status.js';

export type SoakStore = 'builtin' | 'etcd';

export interface SoakOptions {
  readonly durationS: number;
  readonly store: SoakStore;
  /** Transactions started per second across the clients; undefined: flat out. */
  readonly rate: number | undefined;
  readonly clients: number;
  readonly intervalS: number;
  /** The store's client ports from here (peers at +100), the coordinator at +50, participants at +52 and +54. */
  readonly basePort: number;
  readonly outDir: string;
  /** Transaction timeout sent with begin. */
  readonly timeoutMs: number;
  /** Keep the processes' data after a passing soak (always kept after a failing one). */
  readonly keepData: boolean;
  /** The built-in store's --snapshot-every; undefined: the node's default. */
  readonly snapshotEvery: number | undefined;
}

export interface SoakResult {
  readonly rows: readonly IntervalRow[];
  readonly totals: SoakTotals;
  readonly finalLine: string;
  readonly passed: boolean;
  readonly html: string;
  readonly json: string;
  readonly runDir: string;
}

/** Where the app processes listen, from the base port. */
export const APP_PORT_OFFSET = 50;

export interface SoakIo {
  out(line: string): void;
}

function backendOptions(o: SoakOptions): BackendOptions {
  return {
    basePort: o.basePort,
    etcdBasePort: o.basePort,
    appBasePort: o.basePort + APP_PORT_OFFSET,
    snapshotEvery: o.snapshotEvery,
    profileDir: undefined,
    maxClients: o.clients,
    timeoutMs: o.timeoutMs,
    participantsInBegin: false,
  };
}

/** Every process the soak started, by name: the store's members, the coordinator, the participants; and the driver (this process). */
function processesOf(b: Backend, store: SoakStore): { system: ProcRef[]; driver: ProcRef } {
  const prefix = store === 'builtin' ? 'n' : 'e';
  const members = b.storePids().map((_, i) => ({ name: `${prefix}${i + 1}`, pid: () => b.storePids()[i] }));
  const apps = [{ name: 'coord', pid: () => b.coordinator.pid }, ...b.participants.map((p, i) => ({ name: `part-${['a', 'b'][i] ?? i}`, pid: () => p.pid }))];
  return { system: [...members, ...apps], driver: { name: 'driver', pid: () => process.pid } };
}

interface Running {
  readonly o: SoakOptions;
  readonly io: SoakIo;
  readonly stats: IntervalStats;
  readonly sampler: Sampler;
  readonly store: StoreObserver;
  readonly names: readonly string[];
  readonly t0: number;
}

const nowS = (t0: number): number => (performance.now() - t0) / 1_000;

async function closeInterval(r: Running, rows: IntervalRow[], startS: number): Promise<void> {
  const endS = nowS(r.t0);
  const taken = r.stats.take();
  const size = await r.store.size();
  const row: IntervalRow = {
    index: rows.length + 1,
    startS,
    endS,
    ...taken,
    txPerS: taken.tx / Math.max(1e-9, endS - startS),
    leaderChanges: r.sampler.elections.take(),
    term: r.sampler.elections.term,
    leader: r.sampler.status.leader,
    ...r.sampler.takeIntervalRss(),
    store: size,
  };
  rows.push(row);
  r.io.out(tableRow(row, r.names));
}

/** The load for the duration (or until `abort`), an interval row at each boundary; the last row takes in the drain. */
async function runIntervals(r: Running, perSecond: SecondCounts, b: Backend, abort: AbortSignal): Promise<IntervalRow[]> {
  const load = new AbortController();
  // Every paced client waits on the signal: more listeners than Node's default warns about.
  setMaxListeners(r.o.clients + 16, load.signal);
  const onAbort = (): void => load.abort();
  abort.addEventListener('abort', onAbort, { once: true });
  const loadDone = runSteadyLoad({ targets: b.targets, clients: r.o.clients, pacer: pacerFor(r.o.rate), stats: r.stats, perSecond, now: () => performance.now() - r.t0, signal: load.signal });
  const ticker = setInterval(() => progress(`soak ${nowS(r.t0).toFixed(0)}/${r.o.durationS} s: ${r.stats.tx} committed in this interval`, false), 1_000);
  const rows: IntervalRow[] = [];
  try {
    for (let k = 1; !abort.aborted; k++) {
      const boundaryS = Math.min(k * r.o.intervalS, r.o.durationS);
      await keepAliveTimers.sleep(Math.max(0, boundaryS * 1_000 - (performance.now() - r.t0)), abort);
      if (boundaryS >= r.o.durationS || abort.aborted) break;
      await closeInterval(r, rows, rows.at(-1)?.endS ?? 0);
    }
    load.abort();
    await loadDone;
    progress('', false);
    await r.sampler.sampleOnce();
    await closeInterval(r, rows, rows.at(-1)?.endS ?? 0);
  } finally {
    load.abort();
    clearInterval(ticker);
    abort.removeEventListener('abort', onAbort);
  }
  return rows;
}

/** Data folders are big and of no use after a passing soak: the members' and participants' data go, the logs stay. */
function removeData(runDir: string): void {
  for (const d of ['store', 'etcd']) {
    const dir = join(runDir, d);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmSync(join(dir, e.name), { recursive: true, force: true });
  }
  for (const d of ['builtin-a', 'builtin-b', 'etcd-a', 'etcd-b']) rmSync(join(runDir, d), { recursive: true, force: true });
}

export async function runSoak(o: SoakOptions, io: SoakIo, abort: AbortSignal, command: string): Promise<SoakResult> {
  const started = new Date();
  const runDir = join(resolve(o.outDir), `${started.toISOString().replace(/[:.]/g, '-')}-${o.store}`);
  mkdirSync(runDir, { recursive: true });
  const opts = backendOptions(o);
  const backend = await startBackend(storeStarter(o.store, opts, runDir), opts, runDir, 0);
  const exitHook = (): void => {
    for (const pid of [...backend.storePids(), ...backend.procs.map((p) => p.pid)]) if (pid !== undefined) process.kill(pid, 'SIGKILL');
  };
  process.once('exit', exitHook);
  let result: { rows: IntervalRow[]; totals: SoakTotals; samples: Sampler['samples']; perSecond: SecondCounts; stats: IntervalStats; names: string[] };
  try {
    const { system, driver } = processesOf(backend, o.store);
    const names = [...system, driver].map((p) => p.name);
    const store = o.store === 'builtin' ? builtinObserver(backend.spec.endpoints, join(runDir, 'store')) : etcdObserver(backend.spec.endpoints);
    const t0 = performance.now();
    const stats = new IntervalStats();
    const sampler = new Sampler([...system, driver], store, () => nowS(t0), (name) => name !== 'driver' && stats.failed('process_exited', `${name} exited during the soak`));
    const perSecond: SecondCounts = { committed: [], errors: [] };
    io.out(`soak: store=${o.store} duration=${o.durationS}s interval=${o.intervalS}s clients=${o.clients} rate=${o.rate === undefined ? 'flat out' : `${o.rate}/s`} data=${runDir}`);
    io.out(`soak: pids ${[...system, driver].map((p) => `${p.name}=${p.pid() ?? '?'}`).join(' ')}`);
    for (const line of tableHeader(names)) io.out(line);
    sampler.start();
    let rows: IntervalRow[];
    try {
      rows = await runIntervals({ o, io, stats, sampler, store, names, t0 }, perSecond, backend, abort);
    } finally {
      await sampler.stop();
    }
    const totals = totalsOf(rows, nowS(t0), system.map((p) => p.name), sampler.exited);
    result = { rows, totals, samples: sampler.samples, perSecond, stats, names };
  } finally {
    await backend.close();
    process.removeListener('exit', exitHook);
  }
  for (const l of blockLines(result.rows, result.names.filter((n) => n !== 'driver'))) io.out(l);
  const blocks = blocksOf(result.rows);
  const line = finalLine(result.totals);
  const ok = passed(result.totals);
  const html = `${runDir}.html`;
  const json = `${runDir}.json`;
  const errorSamples = Object.fromEntries(result.stats.errorSamples);
  writeSoakReport({ options: o, command, startedAt: started.toISOString(), machine: machine(), loadAverage: os.loadavg(), processes: result.names, rows: result.rows, samples: result.samples, perSecond: result.perSecond, totals: result.totals, blocks, trend: trendOf(blocks), errorSamples, finalLine: line, passed: ok }, html, json);
  if (ok && !o.keepData) removeData(runDir);
  return { rows: result.rows, totals: result.totals, finalLine: line, passed: ok, html, json, runDir };
}
