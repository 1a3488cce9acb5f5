/**
 * Runs the 2PC simulation from the command line.
 *
 *   npm run sim:2pc -- --seed S [--trace]                one seed, replayed exactly
 *   npm run sim:2pc -- --seeds N [--seed S]              N seeds starting at S (default 1)
 *   npm run sim:2pc -- ... [--chaos-ms MS]               simulated ms of faults before healing
 *   npm run sim:2pc -- ... [--mutation NAME]             plant a bug in the simulation's driver
 *                                                        (vote-before-durable, decision-without-cas)
 *   npm run sim:2pc -- ... [--known-bug NAME|all]        leave a bug this simulation found in place
 *                                                        instead of working around it (knobs.ts KNOWN_BUGS)
 *   npm run sim:2pc -- ... [--no-durable-check]          without the "durable votes" check (for the
 *                                                        vote-before-durable mutation: what else catches it)
 *
 * A violation prints the seed, the broken invariant and the exact command
 * that replays it. The run ends with exactly `seeds=N violations=V`; the exit
 * code is 1 when V > 0, 2 on bad usage.
 */
import { pathToFileURL } from 'node:url';
import { KNOWN_BUGS, MUTATIONS, type KnownBug, type Mutation } from './knobs.js';
import { defaultChaosMs, replayCommand, runSim2pc, type Sim2pcResult } from './sim.js';

export interface CliOptions {
  readonly seed: number;
  readonly seeds: number;
  readonly chaosMs: number;
  readonly mutation: Mutation | undefined;
  readonly knownBugs: readonly KnownBug[];
  readonly noDurableCheck: boolean;
  readonly trace: boolean;
}

const USAGE = `usage: npm run sim:2pc -- [--seed S] [--seeds N] [--chaos-ms MS] [--mutation ${MUTATIONS.join('|')}] [--known-bug ${KNOWN_BUGS.join('|')}|all] [--no-durable-check] [--trace]`;
/** Limits on the arguments, so a typo cannot start a run that never ends. */
const maxSeeds = 10_000_000;
const maxChaosMs = 600_000;
const progressIntervalMs = 10_000;

export class UsageError extends Error {
  readonly code = 'usage';
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const opts: { seed: number; seeds: number; chaosMs: number; mutation: Mutation | undefined; knownBugs: KnownBug[]; noDurableCheck: boolean; trace: boolean } = {
    seed: 1,
    seeds: 1,
    chaosMs: defaultChaosMs,
    mutation: undefined,
    knownBugs: [],
    noDurableCheck: false,
    trace: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const int = (min: number, max: number): number => {
      const raw = argv[++i];
      const v = Number(raw);
      if (raw === undefined || !Number.isInteger(v) || v < min || v > max) throw new UsageError(`${arg} needs an integer in [${min}, ${max}], got ${raw}`);
      return v;
    };
    switch (arg) {
      case '--seed':
        opts.seed = int(0, 2 ** 31 - 1);
        break;
      case '--seeds':
        opts.seeds = int(1, maxSeeds);
        break;
      case '--chaos-ms':
        opts.chaosMs = int(500, maxChaosMs);
        break;
      case '--mutation': {
        const m = argv[++i];
        if (!MUTATIONS.includes(m as Mutation)) throw new UsageError(`--mutation must be one of ${MUTATIONS.join(', ')}, got ${m}`);
        opts.mutation = m as Mutation;
        break;
      }
      case '--known-bug': {
        const b = argv[++i];
        if (b === 'all') opts.knownBugs = [...KNOWN_BUGS];
        else if (KNOWN_BUGS.includes(b as KnownBug)) opts.knownBugs.push(b as KnownBug);
        else throw new UsageError(`--known-bug must be all or one of ${KNOWN_BUGS.join(', ')}, got ${b}`);
        break;
      }
      case '--no-durable-check':
        opts.noDurableCheck = true;
        break;
      case '--trace':
        opts.trace = true;
        break;
      default:
        throw new UsageError(`unknown argument ${arg}`);
    }
  }
  return opts;
}

function describeFailure(r: Sim2pcResult, opts: CliOptions): string[] {
  const first = (r.violation ?? '').split('\n')[0];
  return [`VIOLATION seed=${r.seed} invariant=${r.invariant ?? '?'} at=${r.atMs ?? '?'}ms ${first}`, `  replay: ${replayCommand(r.seed, opts)}`];
}

function describeCounters(counters: ReadonlyMap<string, number>): string[] {
  return [...counters].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `  ${k}: ${v}`);
}

export function main(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): number {
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out(err.message);
    out(USAGE);
    return 2;
  }
  const started = performance.now();
  let lastProgress = started;
  let violations = 0;
  const total = new Map<string, number>();
  const byInvariant = new Map<string, number[]>();
  for (let k = 0; k < opts.seeds; k++) {
    const seed = opts.seed + k;
    const r = runSim2pc({ seed, chaosMs: opts.chaosMs, ...(opts.mutation === undefined ? {} : { mutation: opts.mutation }), knownBugs: opts.knownBugs, noDurableCheck: opts.noDurableCheck, trace: opts.trace });
    for (const [key, v] of r.counters) total.set(key, (total.get(key) ?? 0) + v);
    if (!r.ok) {
      violations++;
      const inv = r.invariant ?? '?';
      byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), seed]);
      if (opts.trace) for (const line of r.trace) out(`  ${line}`);
      if (opts.seeds === 1 && r.violation !== undefined) out(r.violation);
      for (const line of describeFailure(r, opts)) out(line);
    } else if (opts.seeds === 1) {
      if (opts.trace) for (const line of r.trace) out(`  ${line}`);
      out(`ok seed=${seed}`);
      for (const line of describeCounters(r.counters)) out(line);
    }
    const now = performance.now();
    if (opts.seeds > 1 && (now - lastProgress >= progressIntervalMs || k + 1 === opts.seeds)) {
      lastProgress = now;
      out(`progress: ${k + 1}/${opts.seeds} seeds (last ${seed}), ${violations} violations, ${((now - started) / 1000).toFixed(1)}s`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (opts.seeds > 1) {
    out('totals:');
    for (const line of describeCounters(total)) out(line);
    for (const [inv, seeds] of byInvariant) out(`violated ${inv}: ${seeds.length} seeds (first: ${seeds.slice(0, 20).join(', ')})`);
  }
  out(`speed: ${opts.seeds} seeds in ${seconds.toFixed(1)}s wall clock = ${((opts.seeds / Math.max(seconds, 1e-9)) * 60).toFixed(0)} seeds/min`);
  out(`seeds=${opts.seeds} violations=${violations}`);
  return violations > 0 ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = main(process.argv.slice(2));
}
