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
import { defaultSteps, replayCommand, runSimulation, type SimResult, type SimStats } from './simulator.js';

export interface CliOptions {
  readonly seed: number;
  readonly seeds: number;
  readonly nodes: number;
  readonly steps: number;
  readonly trace: boolean;
}

const USAGE = 'usage: npm run sim -- [--seed S] [--seeds N] [--nodes 3|5] [--steps K] [--trace]';
/** Limits on the arguments, so a typo cannot start a run that never ends. */
const maxSeeds = 10_000_000;
const maxSteps = 1_000_000;
const progressIntervalMs = 10_000;

export class UsageError extends Error {
  readonly code = 'usage';
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const opts = { seed: 1, seeds: 1, nodes: 3, steps: defaultSteps, trace: false };
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
      case '--nodes':
        opts.nodes = int(3, 5);
        if (opts.nodes !== 3 && opts.nodes !== 5) throw new UsageError('--nodes must be 3 or 5');
        break;
      case '--steps':
        opts.steps = int(0, maxSteps);
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
  let ticks = 0;
  const total: SimStats = { ticks: 0, steps: 0, leaders: 0, proposalsAcked: 0, readsAnswered: 0, snapshotsInstalled: 0, compactions: 0, crashes: 0, crashesMidReady: 0, readiesHeld: 0, transfers: 0, partitions: 0, confChanges: 0, messagesSent: 0, messagesDropped: 0, livenessTicks: 0 };
  let maxLiveness = 0;
  for (let k = 0; k < opts.seeds; k++) {
    const seed = opts.seed + k;
    const r = runSimulation({ seed, nodes: opts.nodes, steps: opts.steps, trace: opts.trace });
    ticks += r.stats.ticks;
    for (const key of Object.keys(total) as (keyof SimStats)[]) total[key] += r.stats[key];
    maxLiveness = Math.max(maxLiveness, r.stats.livenessTicks);
    if (!r.ok) {
      violations++;
      if (opts.trace) for (const line of r.trace) out(`  ${line}`);
      for (const line of describeFailure(r)) out(line);
    } else if (opts.seeds === 1) {
      out(`ok seed=${seed} nodes=${opts.nodes} ${describeStats(r.stats)}`);
      if (opts.trace) for (const line of r.trace) out(`  ${line}`);
    }
    const now = performance.now();
    if (opts.seeds > 1 && (now - lastProgress >= progressIntervalMs || k + 1 === opts.seeds)) {
      lastProgress = now;
      out(`progress: ${k + 1}/${opts.seeds} seeds (last ${seed}), ${violations} violations, ${((now - started) / 1000).toFixed(1)}s`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (opts.seeds > 1) {
    out(`totals: ${describeStats(total)} max-liveness=${maxLiveness}t`);
  }
  out(`speed: ${ticks} simulated ticks in ${seconds.toFixed(1)}s wall clock = ${Math.round(ticks / Math.max(seconds, 1e-9))} ticks/s (${((opts.seeds / Math.max(seconds, 1e-9))).toFixed(1)} seeds/s)`);
  out(`seeds=${opts.seeds} violations=${violations}`);
  return violations > 0 ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = main(process.argv.slice(2));
}
