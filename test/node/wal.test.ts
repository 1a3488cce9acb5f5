// Goal: the WAL gives back exactly what Raft saved (entries, hard state,
// overwritten suffixes, snapshot markers) across reopen, rotation and
// release, and coalesces concurrent saves into few fsyncs (group commit).
import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import { WalClosedError, WalGapError, WriteAheadLog } from '../../store/node/wal.js';
import type { WalFsyncEvent } from '../../store/node/wal.js';
import type { Entry } from '../../store/raft/types.js';
import { entries, entry, tempDirs } from './fixtures/wal-test-helpers.js';

const dirs = tempDirs('wal');
afterEach(dirs.cleanup);

async function reopen(dir: string, snapshotIndex = 0, segmentSizeBytes?: number) {
  const opened = await WriteAheadLog.open(dir, segmentSizeBytes === undefined ? { snapshotIndex } : { snapshotIndex, segmentSizeBytes });
  return opened;
}

/** Open, read the replayed state, close. */
async function readState(dir: string, snapshotIndex = 0) {
  const { wal, state } = await reopen(dir, snapshotIndex);
  await wal.close();
  return state;
}

async function walFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

describe('round trip', () => {
  it('returns the saved entries and the latest hard state after reopen', async () => {
    const dir = await dirs.make();
    const { wal, state } = await reopen(dir);
    expect(state).toMatchObject({ entries: [], lastIndex: 0, hardState: { term: 0, vote: '', commit: 0 } });
    expect(await walFiles(dir)).toEqual(['0000000000000001-0000000000000001.wal']);
    await wal.save(entries(1, 3), { term: 1, vote: 'a', commit: 1 });
    await wal.save(entries(4, 5), { term: 2, vote: 'b', commit: 4 });
    await wal.save([], { term: 2, vote: 'b', commit: 5 });
    await wal.close();

    const again = await reopen(dir);
    expect(again.state.entries).toEqual(entries(1, 5));
    expect(again.state.hardState).toEqual({ term: 2, vote: 'b', commit: 5 });
    expect(again.state.lastIndex).toBe(5);
    expect(again.state.repairedTail).toBeUndefined();
    // Appending after a reopen continues the same log.
    await again.wal.save([entry(6)]);
    await again.wal.close();
    expect((await readState(dir)).entries).toEqual(entries(1, 6));
  });

  it('returns only the entries after the snapshot the caller loaded', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    await wal.save(entries(1, 5));
    await wal.close();
    const state = await readState(dir, 3);
    expect(state.entries).toEqual(entries(4, 5));
    expect(state.lastIndex).toBe(5);
    // A snapshot past the log (installed from the leader): no entries, lastIndex is the snapshot.
    const past = await reopen(dir, 10);
    expect(past.state).toMatchObject({ entries: [], lastIndex: 10 });
    await past.wal.save([entry(11, 2)]);
    await past.wal.close();
    expect((await readState(dir, 10)).entries).toEqual([entry(11, 2)]);
  });

  it('splits a batch bigger than one record into several records', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    const big = Array.from({ length: 18 }, (_, i) => entry(i + 1, 1, 'x'.repeat(1024 * 1024)));
    await wal.save(big);
    await wal.close();
    const state = await readState(dir);
    expect(state.entries.map((e) => e.index)).toEqual(big.map((e) => e.index));
    expect(state.entries.every((e) => e.data.length === 1024 * 1024)).toBe(true);
  });
});

describe('overwritten suffix', () => {
  it('lets a later batch with a lower or equal index replace the tail on replay', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    await wal.save(entries(1, 5, 1));
    await wal.save(entries(3, 4, 2)); // a new leader overwrote 3..5
    await wal.save([entry(5, 3)]);
    await wal.save([entry(5, 4)]); // equal index: replaced again
    await wal.close();
    const state = await readState(dir);
    expect(state.entries).toEqual([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2), entry(5, 4)]);
  });

  it('replaces the whole log when the overwrite starts at the first index, even across segments', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir, 0, 256);
    for (let i = 1; i <= 10; i++) await wal.save([entry(i, 1)]);
    await wal.save(entries(1, 2, 7));
    await wal.close();
    expect((await walFiles(dir)).length).toBeGreaterThan(2);
    const state = await readState(dir);
    expect(state.entries).toEqual(entries(1, 2, 7));
    expect(state.lastIndex).toBe(2);
  });

  it('rejects (assertion) a batch that leaves a gap or overwrites a snapshot', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    await wal.save(entries(1, 3));
    await expect(wal.save([entry(5)])).rejects.toBeInstanceOf(AssertionError);
    await expect(wal.save([entry(4), entry(6)])).rejects.toBeInstanceOf(AssertionError);
    await wal.markSnapshot({ index: 2, term: 1 });
    await expect(wal.save([entry(2, 2)])).rejects.toBeInstanceOf(AssertionError);
    await wal.save([entry(3, 2)]);
    await wal.close();
  });
});

describe('snapshot markers', () => {
  it('keeps the log after a marker whose entry matches, and drops it when the term differs', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    await wal.save(entries(1, 10, 1));
    await wal.markSnapshot({ index: 6, term: 1 }); // local compaction: log stays
    await wal.close();
    const kept = await reopen(dir, 6);
    expect(kept.state.entries).toEqual(entries(7, 10, 1));
    expect(kept.state.snapshotMarkers).toEqual([{ index: 6, term: 1 }]);
    await kept.wal.markSnapshot({ index: 8, term: 5 }); // leader's snapshot conflicts: log discarded
    await kept.wal.close();
    const replaced = await reopen(dir, 8);
    expect(replaced.state).toMatchObject({ entries: [], lastIndex: 8 });
    await replaced.wal.close();
    // Entries 7 and 8 of the caller's older snapshot's log are gone with it.
    await expect(reopen(dir, 6)).rejects.toBeInstanceOf(WalGapError);
  });
});

describe('rotation and releaseTo', () => {
  it('rotates at segmentSizeBytes, keeps hard state and entries across releases', async () => {
    const dir = await dirs.make();
    const segmentSizeBytes = 1024;
    const { wal } = await reopen(dir, 0, segmentSizeBytes);
    // The hard state is saved once, in the first segment: rotation must carry it forward.
    await wal.save([entry(1)], { term: 1, vote: 'a', commit: 1 });
    for (let i = 2; i <= 100; i++) await wal.save([entry(i)]);
    const files = await walFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    expect(files[1]).toMatch(/^0000000000000002-00000000000000\d\d\.wal$/);
    expect(wal.stats.segmentsCreated).toBe(files.length - 1);

    await expect(wal.releaseTo(60)).rejects.toBeInstanceOf(AssertionError); // no snapshot at 60 yet
    await wal.markSnapshot({ index: 60, term: 1 });
    const released = await wal.releaseTo(60);
    expect(released).toBeGreaterThan(0);
    const left = await walFiles(dir);
    expect(left.length).toBeLessThan(files.length);
    expect(wal.stats.segmentsReleased).toBe(released);
    // The oldest kept segment starts at or below 61: nothing after the snapshot was lost.
    const oldestFirst = Number((left[0] as string).slice(17, 33));
    expect(oldestFirst).toBeLessThanOrEqual(61);
    await wal.save([entry(101)]);
    await wal.close();

    const { state, wal: again } = await reopen(dir, 60, segmentSizeBytes);
    expect(state.entries).toEqual(entries(61, 101));
    expect(state.hardState).toEqual({ term: 1, vote: 'a', commit: 1 });
    expect(state.snapshotMarkers.at(-1)).toEqual({ index: 60, term: 1 });
    await again.close();
    // The caller must not load a snapshot older than the released entries.
    await expect(reopen(dir, 10)).rejects.toBeInstanceOf(WalGapError);
  });

  it('never deletes the segment being written', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    await wal.save(entries(1, 50));
    await wal.markSnapshot({ index: 50, term: 1 });
    expect(await wal.releaseTo(50)).toBe(0);
    expect(await walFiles(dir)).toHaveLength(1);
    await wal.close();
  });
});

describe('group commit', () => {
  it('coalesces concurrent saves into far fewer fsyncs, in call order', async () => {
    const dir = await dirs.make();
    const events: WalFsyncEvent[] = [];
    const { wal } = await WriteAheadLog.open(dir, { onFsync: (e) => events.push(e) });
    const calls = 400;
    // Waves of concurrent saves: each wave is issued while the previous fsync may still run.
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= calls; i++) {
      saves.push(wal.save([entry(i)], { term: 1, vote: 'a', commit: i }));
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(saves);
    const { fsyncs } = wal.stats;
    expect(wal.stats.calls).toBe(calls);
    expect(fsyncs).toBe(events.length);
    expect(fsyncs).toBeLessThanOrEqual(calls / 10);
    expect(events.reduce((n, e) => n + e.calls, 0)).toBe(calls);
    await wal.close();
    const state = await readState(dir);
    expect(state.entries).toEqual(entries(1, calls));
    expect(state.hardState.commit).toBe(calls);
  });

  it('caps a batch at maxBatchBytes', async () => {
    const dir = await dirs.make();
    const events: WalFsyncEvent[] = [];
    const maxBatchBytes = 300;
    const { wal } = await WriteAheadLog.open(dir, { maxBatchBytes, onFsync: (e) => events.push(e) });
    const data = 'y'.repeat(100); // one record is about 160 bytes: two never fit in 300
    await Promise.all(Array.from({ length: 20 }, (_, i) => wal.save([entry(i + 1, 1, data)])));
    expect(events).toHaveLength(20);
    expect(events.every((e) => e.bytes <= maxBatchBytes && e.calls === 1)).toBe(true);
    await wal.close();
  });

  it('close waits for queued saves; later calls are refused', async () => {
    const dir = await dirs.make();
    const { wal } = await reopen(dir);
    const pending = [wal.save([entry(1)]), wal.save([entry(2)]), wal.markSnapshot({ index: 1, term: 1 })];
    await wal.close();
    await Promise.all(pending);
    await expect(wal.save([entry(3)])).rejects.toBeInstanceOf(WalClosedError);
    await expect(wal.save([entry(3)])).rejects.toMatchObject({ code: 'wal_closed' });
    const again = await reopen(dir);
    expect(again.state.entries.map((e: Entry) => e.index)).toEqual([1, 2]);
    await again.wal.close();
  });
});
