// Goal: snapshot files round-trip, are written atomically (temp + fsync +
// rename), a damaged one is detected by its CRC, skipped, moved aside and
// reported while the next older one loads, and only the newest N are kept.
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, loadNewestSnapshot, saveSnapshot, snapshotFileName } from '../../store/node/snapshot-file.js';
import type { DamagedSnapshot } from '../../store/node/snapshot-file.js';
import type { Snapshot } from '../../store/raft/types.js';
import { tempDirs } from './fixtures/wal-test-helpers.js';

const dirs = tempDirs('snap');
afterEach(dirs.cleanup);

function snap(index: number, term = 1, data = `state@${index}`): Snapshot {
  return { meta: { index, term, conf: { voters: ['n1', 'n2', 'n3'], learners: [] } }, data };
}

describe('snapshot files', () => {
  it('round-trips and names the file <term>-<index>.snap', async () => {
    const dir = join(await dirs.make(), 'snap'); // created on demand
    expect(await loadNewestSnapshot(dir)).toBeUndefined();
    const s = snap(42, 3, 'ünïcödé and "quotes"\n');
    const path = await saveSnapshot(dir, s);
    expect(path).toBe(join(dir, '0000000000000003-0000000000000042.snap'));
    expect(await readdir(dir)).toEqual([snapshotFileName(3, 42)]); // no temp file left
    expect(await loadNewestSnapshot(dir)).toEqual(s);
  });

  it('loads the newest by index', async () => {
    const dir = await dirs.make();
    await saveSnapshot(dir, snap(10, 1), { retainCount: 5 });
    await saveSnapshot(dir, snap(30, 2), { retainCount: 5 });
    await saveSnapshot(dir, snap(20, 3), { retainCount: 5 });
    expect((await loadNewestSnapshot(dir))?.meta.index).toBe(30);
  });

  it.each([
    ['a flipped byte', async (p: string) => {
      const b = await readFile(p);
      b[b.length - 3] = (b[b.length - 3] as number) ^ 0x10;
      await writeFile(p, b);
    }, /CRC mismatch/],
    ['a truncated file', (p: string) => truncate(p, 30), /length .* does not match/],
    ['an empty file', (p: string) => truncate(p, 0), /too short/],
  ])('skips %s, moves it aside, reports it and loads the older one', async (_name, damage, reason) => {
    const dir = await dirs.make();
    await saveSnapshot(dir, snap(10));
    const newest = await saveSnapshot(dir, snap(20));
    await damage(newest);
    const reports: DamagedSnapshot[] = [];
    const loaded = await loadNewestSnapshot(dir, { onDamaged: (r) => reports.push(r) });
    expect(loaded).toEqual(snap(10));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ path: newest, movedTo: `${newest}.broken` });
    expect(reports[0]?.reason).toMatch(reason);
    expect((await readdir(dir)).sort()).toEqual([snapshotFileName(1, 10), `${snapshotFileName(1, 20)}.broken`]);
  });

  it('rejects a valid file under the wrong name', async () => {
    const dir = await dirs.make();
    await writeFile(join(dir, snapshotFileName(1, 99)), encodeSnapshot(snap(5)));
    const reports: DamagedSnapshot[] = [];
    expect(await loadNewestSnapshot(dir, { onDamaged: (r) => reports.push(r) })).toBeUndefined();
    expect(reports[0]?.reason).toMatch(/name does not match/);
  });

  it('keeps only the newest retainCount files (default 2) and removes stale temp files', async () => {
    const dir = await dirs.make();
    await writeFile(join(dir, `${snapshotFileName(1, 1)}.tmp`), 'half-written by a crashed save');
    for (const index of [1, 2, 3, 4]) await saveSnapshot(dir, snap(index));
    expect((await readdir(dir)).sort()).toEqual([snapshotFileName(1, 3), snapshotFileName(1, 4)]);
    for (const index of [5, 6, 7]) await saveSnapshot(dir, snap(index), { retainCount: 3 });
    expect((await readdir(dir)).sort()).toEqual([5, 6, 7].map((i) => snapshotFileName(1, i)));
  });

  it('decodeSnapshot explains what is wrong', () => {
    const good = encodeSnapshot(snap(7));
    expect(decodeSnapshot(good)).toEqual(snap(7));
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x58;
    expect(decodeSnapshot(badMagic)).toBe('bad magic');
    expect(decodeSnapshot(good.subarray(0, 10))).toMatch(/too short/);
  });
});
