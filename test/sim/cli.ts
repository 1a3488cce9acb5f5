/**
 * Runs the deterministic Raft simulator from the command line.
 *
 *   npm run sim -- --seed S [--nodes 5] [--steps K] [--trace]    one seed, replayed exactly
 *   npm run sim -- --seeds N [--seed S] [--nodes 5] [--steps K]  N seeds starting at S
 *
 * A violation prints the seed, the broken invariant and the exact command to
 * replay it. A multi-seed run prints a progress line every so often and ends
 * with exactly `seeds=N violations=V`; the exit code is 1 when V > 0, 2 on bad usage.
 */
import { pathToFileURL } from 'node:url';
import { finish, parseOrUsage, parseSeedArgs, runSeeds, UsageError, type SeedOptions } from '../support/seed-cli.js';
import { defaultSteps, replayCommand, runSimulation, type SimResult, type SimStats } from './simulator.js';

export interface CliOptions extends SeedOptions {
  readonly nodes: number;
  readonly steps: number;
}

const USAGE = 'usage: npm run sim -- [--seed S] [--seeds N] [--nodes 3|5] [--steps K] [--trace]';
const maxSteps = 1_000_000;

export function parseArgs(argv: readonly string[]): CliOptions {
  let nodes = 3;
  let steps = defaultSteps;
  const seeds = parseSeedArgs(argv, (arg, read) => {
    if (arg === '--nodes') {
      nodes = read.int(3, 5);
      if (nodes !== 3 && nodes !== 5) throw new UsageError('--nodes must be 3 or 5');
    } else if (arg === '--steps') {
      steps = read.int(0, maxSteps);
    } else {
      return false;
    }
    return true;
  });
  return { ...seeds, nodes, steps };
}

function describeFailure(r: SimResult): string[] {
  return [
    `VIOLATION seed=${r.seed} nodes=${r.nodes} step=${r.atStep ?? '?'} ${r.violation ?? ''}`,
    `  replay: ${replayCommand(r.seed, r.nodes, r.steps)}`,
  ];
}

function describeStats(s: SimStats): string {
  return (
    `ticks=${s.ticks} leaders=${s.leaders} acked=${s.proposalsAcked} reads=${s.readsAnswered} ` +
    `snapshots=${s.snapshotsInstalled} compactions=${s.compactions} crashes=${s.crashes} (mid-ready ${s.crashesMidReady}) held-readies=${s.readiesHeld} ` +
    `transfers=${s.transfers} partitions=${s.partitions} conf-changes=${s.confChanges} msgs=${s.messagesSent} dropped=${s.messagesDropped} liveness=${s.livenessTicks}t`
  );
}

export function main(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): number {
  const opts = parseOrUsage(() => parseArgs(argv), USAGE, out);
  if (opts === undefined) return 2;
  const total: SimStats = { ticks: 0, steps: 0, leaders: 0, proposalsAcked: 0, readsAnswered: 0, snapshotsInstalled: 0, compactions: 0, crashes: 0, crashesMidReady: 0, readiesHeld: 0, transfers: 0, partitions: 0, confChanges: 0, messagesSent: 0, messagesDropped: 0, livenessTicks: 0 };
  let maxLiveness = 0;
  const { violations, seconds } = runSeeds(opts, out, (seed) => {
    const r = runSimulation({ seed, nodes: opts.nodes, steps: opts.steps, trace: opts.trace });
    for (const key of Object.keys(total) as (keyof SimStats)[]) total[key] += r.stats[key];
    maxLiveness = Math.max(maxLiveness, r.stats.livenessTicks);
    if (!r.ok) {
      if (opts.trace) for (const line of r.trace) out(`  ${line}`);
      for (const line of describeFailure(r)) out(line);
    } else if (opts.seeds === 1) {
      out(`ok seed=${seed} nodes=${opts.nodes} ${describeStats(r.stats)}`);
      if (opts.trace) for (const line of r.trace) out(`  ${line}`);
    }
    return r.ok;
  });
  if (opts.seeds > 1) out(`totals: ${describeStats(total)} max-liveness=${maxLiveness}t`);
  out(`speed: ${total.ticks} simulated ticks in ${seconds.toFixed(1)}s wall clock = ${Math.round(total.ticks / Math.max(seconds, 1e-9))} ticks/s (${(opts.seeds / Math.max(seconds, 1e-9)).toFixed(1)} seeds/s)`);
  return finish(opts.seeds, violations, out);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = main(process.argv.slice(2));
}
