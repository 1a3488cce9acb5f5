// Goal: the soak's ten-minute blocks and trend (bench/soak/blocks.ts), the
// numbers issue 15's soak targets read, computed right from known rows:
// sums, medians, the worst p999, each process's highest RSS, throughput of
// the last block against the first and RSS of the last against the second.
import { describe, expect, it } from 'vitest';
import { blockLines, blocksOf, trendOf } from '../../bench/soak/blocks.js';
import type { IntervalRow } from '../../bench/soak/intervals.js';

function row(index: number, tx: number, p999Ms: number, rss: number): IntervalRow {
  const q = { p50Ms: index, p99Ms: 10 * index, p999Ms, maxMs: p999Ms };
  return {
    index, startS: (index - 1) * 60, endS: index * 60, tx, txPerS: tx / 60, commit: q, total: q,
    errors: index === 3 ? 1 : 0, errorsByCode: {}, leaderChanges: 0, term: 2, leader: 'n1',
    rssMb: { n1: rss, coord: index === 1 ? null : 100 }, anonMb: { n1: rss / 2, coord: 50 },
    store: { keys: 1_000 * index, bytes: null, diskBytes: null },
  };
}

/** 25 rows: blocks of 10, 10 and 5; throughput 600, then 660, then 540 transactions a minute. */
const ROWS = Array.from({ length: 25 }, (_, i) => row(i + 1, i < 10 ? 600 : i < 20 ? 660 : 540, i === 14 ? 900 : 100 + i, 200 + i));

describe('soak blocks and trend', () => {
  it('sums, medians, worst p999 and highest RSS per block', () => {
    const [a, b, c] = blocksOf(ROWS);
    expect(blocksOf(ROWS)).toHaveLength(3);
    expect(a).toMatchObject({ firstRow: 1, lastRow: 10, tx: 6_000, txPerS: 10, commitP50Ms: 5.5, commitP99Ms: 55, errors: 1, keys: 10_000 });
    expect(a?.rssMb).toEqual({ n1: 209, coord: 100 });
    expect(b).toMatchObject({ firstRow: 11, lastRow: 20, tx: 6_600, txPerS: 11, commitP999WorstMs: 900, commitP999MedianMs: 115.5 });
    expect(c).toMatchObject({ firstRow: 21, lastRow: 25, tx: 2_700, txPerS: 9 });
  });

  it('throughput last against first, RSS last against the second block', () => {
    const t = trendOf(blocksOf(ROWS));
    expect(t?.throughputPct).toBeCloseTo(-10, 9);
    expect(t?.rssPct['n1']).toBeCloseTo(((224 - 219) / 219) * 100, 9);
    expect(t?.rssPct['coord']).toBe(0);
  });

  it('a block whose intervals committed nothing has no latency, not -Infinity', () => {
    const idle = ROWS.slice(0, 10).map((r) => ({ ...r, tx: 0, commit: { p50Ms: Number.NaN, p99Ms: Number.NaN, p999Ms: Number.NaN, maxMs: Number.NaN } }));
    const [b] = blocksOf(idle);
    expect(b?.commitP999WorstMs).toBeNaN();
    expect(b?.commitP999MedianMs).toBeNaN();
    expect(b?.txPerS).toBe(0);
  });

  it('says nothing with fewer than two blocks', () => {
    expect(trendOf(blocksOf(ROWS.slice(0, 10)))).toBeUndefined();
    expect(blockLines(ROWS.slice(0, 10), ['n1', 'coord'])).toEqual([]);
  });

  it('prints a table row per block and one trend line', () => {
    const lines = blockLines(ROWS, ['n1', 'coord']);
    expect(lines).toHaveLength(2 + 3 + 1);
    expect(lines[2]).toMatch(/^\| 1-10 \| 6000 \| 10 \| 5\.5 \| 55\.0 \| /);
    expect(lines[5]).toBe('trend: throughput last block against the first -10.0%; highest RSS, last block against the second: n1 +2.3%, coord +0.0%');
  });
});
