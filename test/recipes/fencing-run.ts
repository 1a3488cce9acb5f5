/**
 * One fenced-mutex fault run, on any store (fencing.test.ts runs it on the
 * built-in cluster, etcd-fencing.test.ts on etcd): client processes
 * (fencing-worker.ts) take one lock and append to one register with fenced
 * writes while the nemesis does its faults; then the checker
 * (fencing-check.ts) reads the register's whole history from a watch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { nodeArgsFor, PACKAGE_ROOT } from '../../lib/entry.js';
import { SeededRandom } from '../../lib/random.js';
import { waitFor } from '../support/wait.js';
import { checkFencing, type FencingReport, type WriteEvent } from './fencing-check.js';
import type { FaultTarget } from './fault-targets.js';
import { ALL_FAULTS, Nemesis, type FaultCounts, type FaultKind } from './nemesis.js';

export interface FencingRunOptions {
  /** How the workers reach the store: `{ endpoints }` (built-in) or `{ store: 'etcd://...' }`. */
  readonly storeArg: { readonly endpoints: string[] } | { readonly store: string };
  /** The test's own client, for the register's history. */
  readonly store: TxStore;
  readonly target: FaultTarget;
  readonly seed: number;
  readonly workers: number;
  readonly runMs: number;
  readonly ttlMs: number;
  readonly kinds?: readonly FaultKind[];
}

export interface FencingOutcome {
  readonly report: FencingReport;
  readonly acquisitions: number;
  readonly faults: FaultCounts;
  readonly registerWrites: number;
  readonly line: string;
}

interface Worker {
  readonly child: ChildProcess;
  readonly events: Record<string, unknown>[];
  readonly exited: Promise<void>;
  /** The token it holds now (acquired, not yet released), if any. */
  holding: number | undefined;
}

/** Every worker ever started, so the file's afterAll can kill what is left by pid. */
export const everyWorker: ChildProcess[] = [];

function startWorker(o: FencingRunOptions, name: string, seed: number, keyBase: string): Worker {
  const arg = JSON.stringify({ ...o.storeArg, worker: name, lock: `${keyBase}-lock`, register: `${keyBase}/register`, durationMs: o.runMs, ttlMs: o.ttlMs, seed, unfenced: process.env['RECIPES_UNFENCED'] === '1' });
  const child = spawn(process.execPath, [...nodeArgsFor(`${PACKAGE_ROOT}/test/recipes/fencing-worker.ts`), arg], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  everyWorker.push(child);
  const w: Worker = { child, events: [], holding: undefined, exited: new Promise((r) => child.once('exit', () => r())) };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    w.events.push(e);
    if (e['e'] === 'acq') w.holding = e['token'] as number;
    if (e['e'] === 'rel' || e['e'] === 'err') w.holding = undefined;
  });
  return w;
}

/** Every value of the register in acceptance order, from a watch that resumes across member kills. */
async function recordHistory(store: TxStore, key: string, fromRevision: number, signal: AbortSignal, into: string[][]): Promise<void> {
  for await (const e of store.watch(key, { fromRevision, signal })) {
    if (e.key === key && e.type === 'put') into.push(JSON.parse(e.value as string) as string[]);
  }
}

export async function runFencing(o: FencingRunOptions): Promise<FencingOutcome> {
  const keyBase = `fencing-${o.seed}-${Date.now().toString(36)}`;
  const register = `${keyBase}/register`;
  const start = (await o.store.range(keyBase)).revision + 1;
  const ac = new AbortController();
  const history: string[][] = [];
  const watching = recordHistory(o.store, register, start, ac.signal, history).catch((e: unknown) => e);
  const workers = Array.from({ length: o.workers }, (_, i) => startWorker(o, `w${i + 1}`, o.seed + i + 1, keyBase));
  const holders = (): number[] => workers.filter((w) => w.holding !== undefined && w.child.pid !== undefined).map((w) => w.child.pid as number);
  const faults = await new Nemesis(o.target, new SeededRandom(o.seed), o.ttlMs, holders, o.kinds ?? ALL_FAULTS).run(o.runMs - 3_000);
  await Promise.all(workers.map((w) => w.exited));
  await o.target.whole();
  // The watch has delivered everything once it shows the register's last value.
  const last = await o.store.get(register);
  await waitFor('the watch to reach the last write', 20_000, () => last === null || JSON.stringify(history[history.length - 1]) === last.value);
  ac.abort();
  const watchError = await watching;
  if (watchError !== undefined) throw watchError;
  const report = checkFencing(history, workers.flatMap((w) => w.events.filter((e) => e['e'] === 'write') as unknown as WriteEvent[]));
  const acquisitions = workers.reduce((n, w) => n + w.events.filter((e) => e['e'] === 'acq').length, 0);
  const line = `acquisitions=${acquisitions} accepted=${report.accepted} refusedStale=${report.refused} unknown=${report.unknown} faults=${JSON.stringify(faults)} registerWrites=${history.length}`;
  return { report, acquisitions, faults, registerWrites: history.length, line };
}
