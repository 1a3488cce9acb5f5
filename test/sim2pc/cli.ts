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
import { finish, parseOrUsage, parseSeedArgs, runSeeds, UsageError, type SeedOptions } from '../support/seed-cli.js';
import { KNOWN_BUGS, MUTATIONS, type KnownBug, type Mutation } from './knobs.js';
import { defaultChaosMs, replayCommand, runSim2pc, type Sim2pcResult } from './sim.js';

export interface CliOptions extends SeedOptions {
  readonly chaosMs: number;
  readonly mutation: Mutation | undefined;
  readonly knownBugs: readonly KnownBug[];
  readonly noDurableCheck: boolean;
}

const USAGE = `usage: npm run sim:2pc -- [--seed S] [--seeds N] [--chaos-ms MS] [--mutation ${MUTATIONS.join('|')}] [--known-bug ${KNOWN_BUGS.join('|')}|all] [--no-durable-check] [--trace]`;
const maxChaosMs = 600_000;

export function parseArgs(argv: readonly string[]): CliOptions {
  let chaosMs = defaultChaosMs;
  let mutation: Mutation | undefined;
  let knownBugs: KnownBug[] = [];
  let noDurableCheck = false;
  const seeds = parseSeedArgs(argv, (arg, read) => {
    switch (arg) {
      case '--chaos-ms':
        chaosMs = read.int(500, maxChaosMs);
        return true;
      case '--mutation': {
        const m = read.string();
        if (!MUTATIONS.includes(m as Mutation)) throw new UsageError(`--mutation must be one of ${MUTATIONS.join(', ')}, got ${m}`);
        mutation = m as Mutation;
        return true;
      }
      case '--known-bug': {
        const b = read.string();
        if (b === 'all') knownBugs = [...KNOWN_BUGS];
        else if (KNOWN_BUGS.includes(b as KnownBug)) knownBugs.push(b as KnownBug);
        else throw new UsageError(`--known-bug must be all or one of ${KNOWN_BUGS.join(', ')}, got ${b}`);
        return true;
      }
      case '--no-durable-check':
        noDurableCheck = true;
        return true;
      default:
        return false;
    }
  });
  return { ...seeds, chaosMs, mutation, knownBugs, noDurableCheck };
}

function describeFailure(r: Sim2pcResult, opts: CliOptions): string[] {
  const first = (r.violation ?? '').split('\n')[0];
  return [`VIOLATION seed=${r.seed} invariant=${r.invariant ?? '?'} at=${r.atMs ?? '?'}ms ${first}`, `  replay: ${replayCommand(r.seed, opts)}`];
}

function describeCounters(counters: ReadonlyMap<string, number>): string[] {
  return [...counters].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `  ${k}: ${v}`);
}

export function main(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): number {
  const opts = parseOrUsage(() => parseArgs(argv), USAGE, out);
  if (opts === undefined) return 2;
  const total = new Map<string, number>();
  const byInvariant = new Map<string, number[]>();
  const { violations, seconds } = runSeeds(opts, out, (seed) => {
    const r = runSim2pc({ seed, chaosMs: opts.chaosMs, ...(opts.mutation === undefined ? {} : { mutation: opts.mutation }), knownBugs: opts.knownBugs, noDurableCheck: opts.noDurableCheck, trace: opts.trace });
    for (const [key, v] of r.counters) total.set(key, (total.get(key) ?? 0) + v);
    if (!r.ok) {
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
    return r.ok;
  });
  if (opts.seeds > 1) {
    out('totals:');
    for (const line of describeCounters(total)) out(line);
    for (const [inv, seeds] of byInvariant) out(`violated ${inv}: ${seeds.length} seeds (first: ${seeds.slice(0, 20).join(', ')})`);
  }
  out(`speed: ${opts.seeds} seeds in ${seconds.toFixed(1)}s wall clock = ${((opts.seeds / Math.max(seconds, 1e-9)) * 60).toFixed(0)} seeds/min`);
  return finish(opts.seeds, violations, out);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = main(process.argv.slice(2));
}
