/**
 * One fenced-mutex fault run, on any store (fencing.test.ts runs it on the
 * built-in cluster, etcd-fencing.test.ts on etcd): client processes
 * (fencing-worker.ts) take one lock and append to one register with fenced
 * writes while the nemesis does its faults, and on through a quiet spell of
 * three TTLs once the store is whole (the lock must serve again); then the
 * checker (fencing-check.ts) reads the register's whole history from a watch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { nodeArgsFor, PACKAGE_ROOT } from '../../lib/entry.js';
import { SeededRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
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
  /** How long the nemesis injects faults; the quiet spell comes after. */
  readonly runMs: number;
  readonly ttlMs: number;
  readonly kinds?: readonly FaultKind[];
}

export interface FencingOutcome {
  readonly report: FencingReport;
  readonly acquisitions: number;
  /** Acquisitions in the quiet spell, after the last fault healed. */
  readonly acquisitionsAfterHeal: number;
  readonly faults: FaultCounts;
  readonly registerWrites: number;
  readonly line: string;
}

interface Worker {
  readonly child: ChildProcess;
  readonly events: Record<string, unknown>[];
  /** When each acquisition's line arrived (Date.now()). */
  readonly acquiredAt: number[];
  readonly exited: Promise<void>;
  /** The token it holds now (acquired, not yet released), if any. */
  holding: number | undefined;
}

/** Workers stop when the test closes their stdin; this deadline past the run is only a backstop. */
const WORKER_BACKSTOP_MS = 60_000;

/** Every worker ever started, so the file's afterAll can kill what is left by pid. */
export const everyWorker: ChildProcess[] = [];

function startWorker(o: FencingRunOptions, name: string, seed: number, keyBase: string): Worker {
  const arg = JSON.stringify({ ...o.storeArg, worker: name, lock: `${keyBase}-lock`, register: `${keyBase}/register`, durationMs: o.runMs + WORKER_BACKSTOP_MS, ttlMs: o.ttlMs, seed, unfenced: process.env['RECIPES_UNFENCED'] === '1' });
  const child = spawn(process.execPath, [...nodeArgsFor(`${PACKAGE_ROOT}/test/recipes/fencing-worker.ts`), arg], { cwd: PACKAGE_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  everyWorker.push(child);
  const w: Worker = { child, events: [], acquiredAt: [], holding: undefined, exited: new Promise((r) => child.once('exit', () => r())) };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    w.events.push(e);
    if (e['e'] === 'acq') {
      w.holding = e['token'] as number;
      w.acquiredAt.push(Date.now());
    }
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
  const faults = await new Nemesis(o.target, new SeededRandom(o.seed), o.ttlMs, holders, o.kinds ?? ALL_FAULTS).run(o.runMs);
  await o.target.whole();
  const healedAt = Date.now();
  await systemTimers.sleep(o.ttlMs * 3);
  for (const w of workers) w.child.stdin?.end();
  await Promise.all(workers.map((w) => w.exited));
  // The watch has delivered everything once it shows the register's last value.
  const last = await o.store.get(register);
  await waitFor('the watch to reach the last write', 20_000, () => last === null || JSON.stringify(history[history.length - 1]) === last.value);
  ac.abort();
  const watchError = await watching;
  if (watchError !== undefined) throw watchError;
  const report = checkFencing(history, workers.flatMap((w) => w.events.filter((e) => e['e'] === 'write') as unknown as WriteEvent[]));
  const acquisitions = workers.reduce((n, w) => n + w.acquiredAt.length, 0);
  const acquisitionsAfterHeal = workers.reduce((n, w) => n + w.acquiredAt.filter((t) => t >= healedAt).length, 0);
  const line = `acquisitions=${acquisitions} afterHeal=${acquisitionsAfterHeal} accepted=${report.accepted} refusedStale=${report.refused} unknown=${report.unknown} faults=${JSON.stringify(faults)} registerWrites=${history.length}`;
  return { report, acquisitions, acquisitionsAfterHeal, faults, registerWrites: history.length, line };
}
