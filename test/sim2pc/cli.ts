/**
 * The 2PC simulation's command line (USAGE; docs/SIM2PC.md): one seed with
 * its digest and counters, or many over `--jobs` child processes, ending with
 * exactly `seeds=N violations=V`; exit 1 when V > 0, 2 on bad usage.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { finish, parseOrUsage, parseSeedArgs, runInWorkers, SeedProgress, seedsOf, UsageError, type SeedOptions, type SeedReport, type WorkerShare } from '../support/seed-cli.js';
import { MUTATIONS, type Mutation } from './knobs.js';
import { defaultChaosMs, replayCommand, runSim2pc, type Sim2pcResult } from './sim.js';

export interface CliOptions extends SeedOptions {
  readonly chaosMs: number;
  readonly mutation: Mutation | undefined;
  readonly noDurableCheck: boolean;
  readonly jobs: number;
  /** Internal: this process is one of `--jobs` workers, running every `stride`-th seed, printing JSON lines. */
  readonly worker: WorkerShare | undefined;
}

const USAGE = `usage: npm run sim:2pc -- [--seed S] [--seeds N] [--jobs J] [--chaos-ms MS] [--mutation ${MUTATIONS.join('|')}] [--no-durable-check] [--trace]`;
const maxChaosMs = 600_000;
const maxJobs = 64;
const SELF = fileURLToPath(import.meta.url);

export function parseArgs(argv: readonly string[]): CliOptions {
  let chaosMs = defaultChaosMs;
  let mutation: Mutation | undefined;
  let noDurableCheck = false;
  let jobs = 0;
  let worker: CliOptions['worker'];
  const seeds = parseSeedArgs(argv, (arg, read) => {
    if (arg === '--chaos-ms') chaosMs = read.int(500, maxChaosMs);
    else if (arg === '--jobs') jobs = read.int(1, maxJobs);
    else if (arg === '--worker') worker = { offset: read.int(0, maxJobs - 1), stride: read.int(1, maxJobs) };
    else if (arg === '--no-durable-check') noDurableCheck = true;
    else if (arg === '--mutation') {
      const m = read.string();
      if (!MUTATIONS.includes(m as Mutation)) throw new UsageError(`--mutation must be one of ${MUTATIONS.join(', ')}, got ${m}`);
      mutation = m as Mutation;
    } else return false;
    return true;
  });
  // Default: one process per core for a multi-seed run (a simulation is single-threaded).
  if (jobs === 0) jobs = Math.min(availableParallelism(), seeds.seeds);
  return { ...seeds, chaosMs, mutation, noDurableCheck, jobs, worker };
}

function reportOf(r: Sim2pcResult): SeedReport {
  const base = { seed: r.seed, ok: r.ok, counters: Object.fromEntries(r.counters) };
  return r.ok ? base : { ...base, invariant: r.invariant ?? '?', violation: (r.violation ?? '').split('\n')[0] ?? '', atMs: r.atMs ?? 0 };
}

function runOne(seed: number, opts: CliOptions): Promise<Sim2pcResult> {
  return runSim2pc({ seed, chaosMs: opts.chaosMs, ...(opts.mutation === undefined ? {} : { mutation: opts.mutation }), noDurableCheck: opts.noDurableCheck, trace: opts.trace });
}

function describeCounters(counters: ReadonlyMap<string, number>): string[] {
  return [...counters].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `  ${k}: ${v}`);
}

/** One seed, in full: its trace when asked, its counters, its digest. */
async function single(opts: CliOptions, out: (line: string) => void): Promise<number> {
  const r = await runOne(opts.seed, opts);
  if (opts.trace) for (const line of r.trace) out(`  ${line}`);
  if (r.ok) {
    out(`ok seed=${r.seed} digest=${r.digest}`);
    for (const line of describeCounters(r.counters)) out(line);
  } else {
    out(r.violation ?? '');
    out(`VIOLATION seed=${r.seed} invariant=${r.invariant ?? '?'} at=${r.atMs ?? '?'}ms digest=${r.digest}`);
    out(`  replay: ${replayCommand(r.seed, opts)}`);
  }
  return finish(1, r.ok ? 0 : 1, out);
}

/** Every seed of this process (all of them, or a worker's share), reported as it ends. */
async function local(opts: CliOptions, report: (r: SeedReport) => void): Promise<void> {
  for (const seed of seedsOf(opts, opts.worker)) report(reportOf(await runOne(seed, opts)));
}

export async function main(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const opts = parseOrUsage(() => parseArgs(argv), USAGE, out);
  if (opts === undefined) return 2;
  if (opts.worker !== undefined) {
    let failed = false;
    await local(opts, (r) => {
      failed ||= !r.ok;
      out(JSON.stringify(r));
    });
    return failed ? 1 : 0;
  }
  if (opts.seeds === 1) return single(opts, out);
  const total = new Map<string, number>();
  const byInvariant = new Map<string, number[]>();
  const progress = new SeedProgress(opts.seeds, out);
  const report = (r: SeedReport): void => {
    for (const [key, v] of Object.entries(r.counters)) total.set(key, (total.get(key) ?? 0) + v);
    if (!r.ok) {
      const inv = r.invariant ?? '?';
      byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), r.seed]);
      out(`VIOLATION seed=${r.seed} invariant=${inv} at=${r.atMs ?? '?'}ms ${r.violation ?? ''}`);
      out(`  replay: ${replayCommand(r.seed, opts)}`);
    }
    progress.record(r.seed, r.ok);
  };
  if (opts.jobs > 1) await runInWorkers(SELF, argv, opts.jobs, report);
  else await local(opts, report);
  out('totals:');
  for (const line of describeCounters(total)) out(line);
  for (const [inv, seeds] of byInvariant) out(`violated ${inv}: ${seeds.length} seeds (first: ${seeds.sort((a, b) => a - b).slice(0, 20).join(', ')})`);
  out(`speed: ${opts.seeds} seeds in ${progress.seconds.toFixed(1)}s wall clock = ${((opts.seeds / Math.max(progress.seconds, 1e-9)) * 60).toFixed(0)} seeds/min`);
  return finish(opts.seeds, progress.violations, out);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
