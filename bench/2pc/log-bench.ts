/**
 * The participant log on its own: how many transactions per second one
 * participant's log takes (each transaction is the four durable changes a
 * participant makes: work, vote, applied, acked), at several concurrencies,
 * with a number of acknowledged records already retained (the log keeps them
 * for `retentionMs`, ten minutes by default, so a busy participant's log is
 * never small).
 *
 *   npx tsx bench/2pc/log-bench.ts [--retained 0,5000] [--clients 1,16,64] [--duration 4] [--dir D]
 *
 * It measures the disk under the log's own write pattern (group commit,
 * fdatasync), so run it on the disk the participants use (--dir).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseFlags, stringFlag } from '../../lib/args.js';
import { percentile } from '../loadgen.js';
import { ParticipantLog } from '../../participant/log.js';

const { values } = parseFlags({ retained: { type: 'string' }, clients: { type: 'string' }, duration: { type: 'string' }, dir: { type: 'string' } });
const list = (name: string, fallback: string): number[] =>
  (stringFlag(values, name) ?? fallback).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: bad number ${s}`);
    return n;
  });
const retainedCounts = list('retained', '0,5000');
const clientCounts = list('clients', '1,16,64');
const durationMs = Number(stringFlag(values, 'duration') ?? '4') * 1_000;
const base = mkdtempSync(join(stringFlag(values, 'dir') ?? os.tmpdir(), 'log-bench-'));

console.log('| retained records | clients | tx/s (4 log writes each) | tx p50 ms | tx p99 ms |');
console.log('|---:|---:|---:|---:|---:|');
try {
  for (const retained of retainedCounts) {
    for (const clients of clientCounts) {
      const log = await ParticipantLog.open({ path: join(base, `${retained}-${clients}`, 'log.json'), participant: 'bench' });
      const T0 = Date.now();
      // The retention window: acknowledged records, as a participant holds them after a while.
      for (let i = 0; i < retained; i += 500) {
        await Promise.all(
          Array.from({ length: Math.min(500, retained - i) }, async (_, j) => {
            const id = `old${i + j}`;
            await log.recordWork(id, { n: i + j }, T0);
            await log.recordVote(id, 'yes', undefined, T0);
            await log.recordApplied(id, 'commit', T0);
            await log.recordAcked(id, T0);
          }),
        );
      }
      const latencies: number[] = [];
      const stopAt = performance.now() + durationMs;
      await Promise.all(
        Array.from({ length: clients }, async (_, w) => {
          for (let i = 0; performance.now() < stopAt; i++) {
            const id = `t${w}x${i}`;
            const t0 = performance.now();
            await log.recordWork(id, { n: i }, Date.now());
            await log.recordVote(id, 'yes', undefined, Date.now());
            await log.recordApplied(id, 'commit', Date.now());
            await log.recordAcked(id, Date.now());
            latencies.push(performance.now() - t0);
          }
        }),
      );
      latencies.sort((a, b) => a - b);
      console.log(`| ${retained} | ${clients} | ${(latencies.length / (durationMs / 1_000)).toFixed(0)} | ${percentile(latencies, 0.5).toFixed(1)} | ${percentile(latencies, 0.99).toFixed(1)} |`);
      await log.close();
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
