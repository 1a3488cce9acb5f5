// Goal: the load generator's measured window is reported exactly once at each
// edge, start before end, after the warmup: bench:store samples CPU there and
// divides by the operations counted in that same window.
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runPhase } from '../../bench/loadgen.js';

describe('runPhase window edges', () => {
  it('reports start after the warmup and end after start, once each', async () => {
    const edges: { edge: string; at: number }[] = [];
    const t0 = performance.now();
    const r = await runPhase(async () => void (await turn()), {
      concurrency: 4,
      warmupMs: 60,
      durationMs: 120,
      onWindow: (edge) => edges.push({ edge, at: performance.now() - t0 }),
    });
    expect(edges.map((e) => e.edge)).toEqual(['start', 'end']);
    expect(edges[0]!.at).toBeGreaterThanOrEqual(55);
    expect(edges[1]!.at - edges[0]!.at).toBeGreaterThanOrEqual(100);
    expect(r.ops).toBeGreaterThan(0);
  });

  it('still reports both edges when every operation fails', async () => {
    const edges: string[] = [];
    const r = await runPhase(async () => Promise.reject(new Error('down')), { concurrency: 2, warmupMs: 0, durationMs: 50, onWindow: (edge) => edges.push(edge) });
    expect(edges).toEqual(['start', 'end']);
    expect(r.errors).toBeGreaterThan(0);
  });
});
