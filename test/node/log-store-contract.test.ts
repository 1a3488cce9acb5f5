// Goal: the in-memory log store (store/node/memory-io.ts) keeps the WAL's
// contract, so a node driven over it (the simulation) sees what a node over
// the real WAL sees: the same assertions run against both, through save,
// suffix overwrite, snapshot markers, release, close and reopen.
import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import type { RaftLogStore } from '../../store/node/io.js';
import { MemoryRaftLog, MemorySnapshotStore, reopenMemoryStorage } from '../../store/node/memory-io.js';
import { WalClosedError, WalGapError, WriteAheadLog } from '../../store/node/wal.js';
import type { Entry, HardState, Snapshot } from '../../store/raft/types.js';
import { entries, entry, tempDirs } from './fixtures/wal-test-helpers.js';

const dirs = tempDirs('log-contract');
afterEach(dirs.cleanup);

interface Opened {
  readonly log: RaftLogStore;
  readonly state: { readonly hardState: HardState; readonly entries: readonly Entry[] };
}

/** Opens the same durable log again (after the previous handle was closed or crashed). */
type Reopen = (snapshotIndex?: number) => Promise<Opened>;

const stores: readonly (readonly [string, () => Promise<Reopen>])[] = [
  [
    'WriteAheadLog',
    async () => {
      const dir = await dirs.make();
      return async (snapshotIndex = 0) => {
        const { wal, state } = await WriteAheadLog.open(dir, { snapshotIndex });
        return { log: wal, state };
      };
    },
  ],
  [
    'MemoryRaftLog',
    async () => {
      const mem = new MemoryRaftLog();
      return async (snapshotIndex = 0) => ({ log: mem, state: mem.reopen(snapshotIndex) });
    },
  ],
];

describe.each(stores)('%s', (_name, make) => {
  it('starts empty and gives back saved entries and the latest hard state', async () => {
    const reopen = await make();
    const first = await reopen();
    expect(first.state).toMatchObject({ entries: [], hardState: { term: 0, vote: '', commit: 0 } });
    await first.log.save(entries(1, 3), { term: 1, vote: 'a', commit: 1 });
    await first.log.save(entries(4, 5), { term: 2, vote: 'b', commit: 4 });
    await first.log.save([], { term: 2, vote: 'b', commit: 5 });
    await first.log.close();
    const again = await reopen();
    expect(again.state.entries).toEqual(entries(1, 5));
    expect(again.state.hardState).toEqual({ term: 2, vote: 'b', commit: 5 });
    await again.log.close();
  });

  it('lets a later save replace the suffix from its first index (§5.3)', async () => {
    const reopen = await make();
    const { log } = await reopen();
    await log.save(entries(1, 5));
    await log.save([entry(3, 2), entry(4, 2)]);
    await log.close();
    const { log: again, state } = await reopen();
    expect(state.entries).toEqual([entry(1), entry(2), entry(3, 2), entry(4, 2)]);
    await again.close();
  });

  it('goes on after a snapshot newer than the log, whose marker a crash lost (found by sim seed 2380)', async () => {
    const reopen = await make();
    const { log } = await reopen();
    await log.save(entries(1, 3));
    await log.close();
    // The snapshot at 6 was saved, the crash came before its marker: the log still ends at 3.
    const behind = await reopen(6);
    expect(behind.state.entries).toEqual([]);
    await behind.log.save(entries(7, 8));
    await behind.log.close();
    const again = await reopen(6);
    expect(again.state.entries).toEqual(entries(7, 8));
    await again.log.close();
  });

  it('keeps the log after a marker whose entry matches, and replaces a log that does not match', async () => {
    const reopen = await make();
    const { log } = await reopen();
    await log.save(entries(1, 5));
    await log.markSnapshot({ index: 3, term: 1 });
    await log.close();
    const kept = await reopen(3);
    expect(kept.state.entries).toEqual(entries(4, 5));
    // A snapshot from a leader whose log differs at its index: nothing stored survives it.
    await kept.log.markSnapshot({ index: 4, term: 7 });
    await kept.log.save([entry(5, 7)]);
    await kept.log.close();
    const replaced = await reopen(4);
    expect(replaced.state.entries).toEqual([entry(5, 7)]);
    await replaced.log.close();
  });

  it('refuses to overwrite entries behind a snapshot marker or to release past one', async () => {
    const reopen = await make();
    const { log } = await reopen();
    await log.save(entries(1, 5));
    await log.markSnapshot({ index: 3, term: 1 });
    await expect(log.save([entry(3, 2)])).rejects.toBeInstanceOf(AssertionError);
    await expect(log.releaseTo(4)).rejects.toBeInstanceOf(AssertionError);
    await log.close();
  });

  it('still gives back the log after the snapshot once the entries behind it are released', async () => {
    const reopen = await make();
    const { log } = await reopen();
    await log.save(entries(1, 6), { term: 1, vote: 'a', commit: 6 });
    await log.markSnapshot({ index: 4, term: 1 });
    await log.releaseTo(4);
    await log.save([entry(7)]);
    await log.close();
    const again = await reopen(4);
    expect(again.state.entries).toEqual(entries(5, 7));
    expect(again.state.hardState).toEqual({ term: 1, vote: 'a', commit: 6 });
    await again.log.close();
  });

  it('refuses writes once closed', async () => {
    const reopen = await make();
    const { log } = await reopen();
    await log.save(entries(1, 2));
    await log.close();
    await expect(log.save([entry(3)])).rejects.toBeInstanceOf(WalClosedError);
  });
});

describe('MemoryRaftLog as a disk under crashes', () => {
  it('loses a write whose fsync had not completed, and never settles its promise', async () => {
    let release: (() => void) | undefined;
    const log = new MemoryRaftLog({ sync: () => (release === undefined ? new Promise<void>((r) => (release = r)) : Promise.resolve()) });
    const inFlight = log.save(entries(1, 2));
    let settled = false;
    inFlight.then(
      () => (settled = true),
      () => (settled = true),
    );
    await Promise.resolve();
    expect(log.reopen().entries).toEqual([]);
    release?.();
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect(log.read().entries).toEqual([]);
    // The restarted process writes afresh.
    await log.save(entries(1, 1));
    expect(log.read().entries).toEqual(entries(1, 1));
  });

  it('refuses every write after a failed fsync, until a restart', async () => {
    let fail = true;
    const log = new MemoryRaftLog({ sync: () => (fail ? Promise.reject(new Error('EIO')) : Promise.resolve()) });
    await expect(log.save(entries(1, 1))).rejects.toMatchObject({ code: 'wal_failed' });
    fail = false;
    await expect(log.save(entries(1, 1))).rejects.toMatchObject({ code: 'wal_failed' });
    log.reopen();
    await log.save(entries(1, 1));
    expect(log.read().entries).toEqual(entries(1, 1));
  });

  it('reports a gap when asked for a log older than what was released', async () => {
    const log = new MemoryRaftLog();
    await log.save(entries(1, 5));
    await log.markSnapshot({ index: 4, term: 1 });
    await log.releaseTo(4);
    expect(() => log.reopen(2)).toThrow(WalGapError);
  });
});

describe('MemorySnapshotStore', () => {
  const snap = (index: number, term = 1): Snapshot => ({ meta: { index, term, conf: { voters: ['n1'], learners: [] } }, data: `s${index}` });

  it('restarts from the newest snapshot and the log after it, keeping a bounded number', async () => {
    const log = new MemoryRaftLog();
    const snaps = new MemorySnapshotStore({}, 2);
    await log.save(entries(1, 9), { term: 1, vote: '', commit: 9 });
    for (const i of [3, 6, 8]) {
      await snaps.save(snap(i));
      await log.markSnapshot({ index: i, term: 1 });
    }
    const stored = reopenMemoryStorage(log, snaps);
    expect(stored.snapshot?.meta.index).toBe(8);
    expect(stored.entries).toEqual(entries(9, 9));
    expect(stored.hardState.commit).toBe(9);
    // Pruned to the two newest, as the snapshot files are.
    await snaps.save(snap(2));
    expect(snaps.newest()?.meta.index).toBe(8);
  });
});
