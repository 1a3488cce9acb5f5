import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * What the two simulators' command lines share (test/sim/cli.ts,
 * test/sim2pc/cli.ts): `--seed S`, `--seeds N` and `--trace`, bounded
 * integer flags, usage errors (exit 2), the seed loop with a progress line
 * every 10 s, and the last line `seeds=N violations=V` (exit 1 when V > 0).
 */

export class UsageError extends Error {
  readonly code = 'usage';
}

/** Limits on the arguments, so a typo cannot start a run that never ends. */
const maxSeeds = 10_000_000;
const progressIntervalMs = 10_000;

export interface SeedOptions {
  readonly seed: number;
  readonly seeds: number;
  readonly trace: boolean;
}

/** Reads the value after the flag at `argv[i]`. */
export interface FlagReader {
  int(min: number, max: number): number;
  string(): string;
}

/**
 * Parses the shared flags; every other one goes to `extra`, which returns
 * false for a flag it does not know.
 */
export function parseSeedArgs(argv: readonly string[], extra: (arg: string, read: FlagReader) => boolean = () => false): SeedOptions {
  const opts = { seed: 1, seeds: 1, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const read: FlagReader = {
      int: (min, max) => {
        const raw = argv[++i];
        const v = Number(raw);
        if (raw === undefined || !Number.isInteger(v) || v < min || v > max) throw new UsageError(`${arg} needs an integer in [${min}, ${max}], got ${raw}`);
        return v;
      },
      string: () => {
        const raw = argv[++i];
        if (raw === undefined) throw new UsageError(`${arg} needs a value`);
        return raw;
      },
    };
    if (arg === '--seed') opts.seed = read.int(0, 2 ** 31 - 1);
    else if (arg === '--seeds') opts.seeds = read.int(1, maxSeeds);
    else if (arg === '--trace') opts.trace = true;
    else if (!extra(arg, read)) throw new UsageError(`unknown argument ${arg}`);
  }
  return opts;
}

/** Parses with `parse`; on a usage error prints it and the usage line and returns undefined (exit 2). */
export function parseOrUsage<T>(parse: () => T, usage: string, out: (line: string) => void): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out(err.message);
    out(usage);
    return undefined;
  }
}

/** The progress line of a multi-seed run, every 10 s and at the end. */
export class SeedProgress {
  private readonly started = performance.now();
  private lastProgress = this.started;
  private done = 0;
  violations = 0;

  constructor(
    private readonly total: number,
    private readonly out: (line: string) => void,
  ) {}

  /** One seed finished. */
  record(seed: number, ok: boolean): void {
    this.done++;
    if (!ok) this.violations++;
    const now = performance.now();
    if (this.total > 1 && (now - this.lastProgress >= progressIntervalMs || this.done === this.total)) {
      this.lastProgress = now;
      this.out(`progress: ${this.done}/${this.total} seeds (last ${seed}), ${this.violations} violations, ${this.seconds.toFixed(1)}s`);
    }
  }

  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}

/**
 * Runs `runOne` for seeds S..S+N-1 (it prints what it has to say about its
 * seed and answers whether the seed passed), with a progress line every 10 s
 * of a multi-seed run. Returns the violations and the wall-clock seconds.
 */
export function runSeeds(opts: SeedOptions, out: (line: string) => void, runOne: (seed: number) => boolean): { violations: number; seconds: number } {
  const progress = new SeedProgress(opts.seeds, out);
  for (let k = 0; k < opts.seeds; k++) progress.record(opts.seed + k, runOne(opts.seed + k));
  return { violations: progress.violations, seconds: progress.seconds };
}

/** One seed's summary as a `--jobs` worker prints it: one JSON line. */
export interface SeedReport {
  readonly seed: number;
  readonly ok: boolean;
  readonly invariant?: string;
  readonly violation?: string;
  readonly atMs?: number;
  readonly counters: Readonly<Record<string, number>>;
}

/** `--worker J N`: this process is worker J of N, running seeds S+J, S+J+N, ... */
export interface WorkerShare {
  readonly offset: number;
  readonly stride: number;
}

/** The seeds of a run, or of one worker's share of it. */
export function seedsOf(opts: SeedOptions, share: WorkerShare = { offset: 0, stride: 1 }): number[] {
  const out: number[] = [];
  for (let k = share.offset; k < opts.seeds; k += share.stride) out.push(opts.seed + k);
  return out;
}

/**
 * Spreads a run over `jobs` child processes of `script` (run again with the
 * same arguments plus `--worker J jobs`; each prints a SeedReport per line),
 * and reports every seed as it ends. One process per core: a simulation is
 * single-threaded.
 */
export async function runInWorkers(script: string, argv: readonly string[], jobs: number, report: (r: SeedReport) => void): Promise<void> {
  const runs = Array.from({ length: jobs }, (_, j) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...argv, '--worker', String(j), String(jobs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{')) report(JSON.parse(line) as SeedReport);
    });
    return new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 || code === 1 ? resolve() : reject(new Error(`worker ${j} exited with ${String(code)}`)))));
  });
  await Promise.all(runs);
}

/** The last line, and the exit code it means. */
export function finish(seeds: number, violations: number, out: (line: string) => void): number {
  out(`seeds=${seeds} violations=${violations}`);
  return violations > 0 ? 1 : 0;
}
