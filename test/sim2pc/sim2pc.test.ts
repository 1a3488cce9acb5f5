// Goal: the whole 2PC system on the code that ships keeps every invariant
// (checker.ts) under crashes, lost messages and partitions, and quiesces after
// healing: zero violations over 300 seeds; each planted bug is caught; a seed
// replays to the byte. Seeds run in child processes, as `npm run sim:2pc`
// runs them: a planted bug may make a runtime reject a promise nobody awaits,
// which the simulation reports as a violation and Vitest would report as an
// error of the test run.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Mutation } from './knobs.js';

/** 300 seeds at the CLI's default length (so a failure replays with plain `--seed S`), in chunks. */
const seedsPerChunk = 30;
const chunks = 10;
/** A chunk takes about 10 s on an idle core; bounded well above a loaded machine's pace. */
const chunkTimeoutMs = 120_000;

interface CliRun {
  readonly status: number | null;
  readonly lines: readonly string[];
}

function cli(args: readonly string[]): CliRun {
  // One process per chunk: Vitest already runs test files side by side.
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/sim2pc/cli.ts', '--jobs', '1', ...args], { encoding: 'utf8', timeout: chunkTimeoutMs });
  return { status: r.status, lines: `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '') };
}

function violations(run: CliRun): string[] {
  return run.lines.filter((l) => l.startsWith('VIOLATION') || l.startsWith('  replay:'));
}

function caught(mutation: Mutation, seeds: number, extra: readonly string[] = []): { lines: string[]; invariants: string[] } {
  const run = cli(['--seeds', String(seeds), '--seed', '1', '--mutation', mutation, ...extra]);
  const lines = violations(run);
  const invariants = lines.flatMap((l) => /invariant=(.+?) at=/.exec(l)?.[1] ?? []);
  return { lines, invariants };
}

describe('2PC simulation on the real runtimes', () => {
  for (let c = 0; c < chunks; c++) {
    const first = 1 + c * seedsPerChunk;
    it(`seeds ${first}..${first + seedsPerChunk - 1}: no violations`, () => {
      const run = cli(['--seeds', String(seedsPerChunk), '--seed', String(first)]);
      expect(violations(run).join('\n')).toBe('');
      expect(run.lines[run.lines.length - 1]).toBe(`seeds=${seedsPerChunk} violations=0`);
      expect(run.status).toBe(0);
    });
  }

  it('replays a seed to the byte: two runs print one digest and the same trace, line for line', () => {
    const run = (): readonly string[] => cli(['--seed', '42', '--chaos-ms', '2000', '--trace']).lines;
    const a = run();
    expect(a.some((l) => /^ok seed=42 digest=[0-9a-f]{16}$/.test(l))).toBe(true);
    expect(run()).toEqual(a);
  });

  it('catches a coordinator that writes the decision without CAS', () => {
    const r = caught('decision-without-cas', 30);
    expect(r.invariants.length, 'no seed in 1..30 caught the mutation').toBeGreaterThan(0);
    for (const inv of r.invariants) expect(['stable decisions', 'client outcomes', 'commit rule', 'atomicity', 'assertion']).toContain(inv);
  });

  it('catches votes written without CAS (the first writer no longer wins)', () => {
    const r = caught('vote-overwrites', 30);
    expect(r.invariants.length, 'no seed in 1..30 caught the mutation').toBeGreaterThan(0);
  });

  it('catches a participant disk whose fsync answers before the data is durable', () => {
    const r = caught('fsync-lies', 30);
    expect(r.invariants).toContain('durable votes');
  });

  it('the CLI ends with the summary line, prints the replay command of a failing seed, and refuses bad usage', () => {
    const ok = cli(['--seeds', '2', '--seed', '7']);
    expect(ok.lines[ok.lines.length - 1]).toBe('seeds=2 violations=0');
    expect(ok.status).toBe(0);
    const bad = cli(['--mutation', 'nope']);
    expect(bad.status).toBe(2);
  });
});
