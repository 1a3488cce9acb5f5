// Goal: run the deterministic simulator over thousands of seeds (3- and
// 5-node clusters, hostile network, crashes mid-Ready, compaction, transfers,
// ReadIndex, membership changes) and require zero safety or liveness
// violations; a failure names every failing seed with its replay command.
// Also pins down that a seed replays exactly, which everything else relies on.
import { describe, expect, it } from 'vitest';
import { main } from './cli.js';
import { defaultSteps, replayCommand, runSimulation, type SimResult } from './simulator.js';

/**
 * 2,000 seeds in all, at the CLI's default length (so a failure replays with
 * plain `--seed S`): the file runs in well under two minutes on two cores.
 * Long runs find more than many short ones: the deep bugs (Figure 8) need a
 * history of several terms with divergent tails before they show.
 */
const seedsPerChunk = 250;
const chunks = 4;
const stepsPerSeed = defaultSteps;

function runChunk(firstSeed: number, nodes: number): SimResult[] {
  const failures: SimResult[] = [];
  for (let seed = firstSeed; seed < firstSeed + seedsPerChunk; seed++) {
    const r = runSimulation({ seed, nodes, steps: stepsPerSeed });
    if (!r.ok) failures.push(r);
  }
  return failures;
}

function report(failures: readonly SimResult[]): string {
  return failures.map((r) => `seed ${r.seed} (${r.nodes} nodes) at step ${r.atStep}: ${r.violation}\n  replay: ${replayCommand(r.seed, r.nodes, r.steps)}`).join('\n');
}

describe('raft simulator', () => {
  for (const nodes of [3, 5]) {
    for (let c = 0; c < chunks; c++) {
      const first = 1 + c * seedsPerChunk;
      it(`${nodes} nodes, seeds ${first}..${first + seedsPerChunk - 1}: no violations`, () => {
        const failures = runChunk(first, nodes);
        expect(failures.length, report(failures)).toBe(0);
      });
    }
  }

  it('replays a seed exactly', () => {
    const a = runSimulation({ seed: 42, nodes: 5, steps: 300, trace: true });
    const b = runSimulation({ seed: 42, nodes: 5, steps: 300, trace: true });
    expect(b.stats).toEqual(a.stats);
    expect(b.trace).toEqual(a.trace);
    expect(a.stats.ticks).toBeGreaterThan(0);
  });

  it('the CLI ends with the summary line and exits 0 when clean', () => {
    const lines: string[] = [];
    const code = main(['--seeds', '3', '--seed', '7', '--steps', '100'], (l) => lines.push(l));
    expect(code).toBe(0);
    expect(lines[lines.length - 1]).toBe('seeds=3 violations=0');
    expect(lines.some((l) => l.startsWith('speed: '))).toBe(true);
    expect(main(['--nodes', '4'], () => {})).toBe(2);
  });
});
