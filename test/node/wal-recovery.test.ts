// Goal: start-up recovery tells a torn tail (a crash cut the last write: cut
// it off, keep the valid prefix, go on appending) from corruption anywhere
// else (stop with a WalCorruptError naming the file and byte offset), and
// never returns anything but a prefix of what was saved.
import { appendFile, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { WalCorruptError, WriteAheadLog } from '../../store/node/wal.js';
import type { Entry } from '../../store/raft/types.js';
import { entry, tempDirs } from './fixtures/wal-test-helpers.js';

const dirs = tempDirs('wal-recovery');
afterEach(dirs.cleanup);

const SAVES = 10;

/** Entry `i` of the test log; data of varying length so records differ in size. */
function nth(i: number): Entry {
  return entry(i, 1, `value-${i}-${'z'.repeat((i * 7) % 40)}`);
}

function prefix(n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => nth(i + 1));
}

/** A WAL of SAVES single-entry saves (one record each) in `segments` segment files. */
async function writeLog(segmentSizeBytes?: number): Promise<{ dir: string; files: string[] }> {
  const dir = await dirs.make();
  const { wal } = await WriteAheadLog.open(dir, segmentSizeBytes === undefined ? {} : { segmentSizeBytes });
  for (let i = 1; i <= SAVES; i++) await wal.save([nth(i)]);
  await wal.close();
  const files = (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort().map((n) => join(dir, n));
  return { dir, files };
}

/** Byte offsets of the records in a segment file. */
function recordOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let off = 0; off < bytes.length; off += 8 + bytes.readUInt32LE(off)) offsets.push(off);
  return offsets;
}

async function openState(dir: string) {
  const { wal, state } = await WriteAheadLog.open(dir);
  await wal.close();
  return state;
}

async function expectCorrupt(dir: string, path: string, offset: number): Promise<void> {
  const error: unknown = await WriteAheadLog.open(dir).then(
    async ({ wal }) => {
      await wal.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WalCorruptError);
  const corrupt = error as WalCorruptError;
  expect(corrupt.code).toBe('wal_corrupt');
  expect(corrupt.path).toBe(path);
  expect(corrupt.offset).toBe(offset);
  expect(corrupt.message).toContain(path);
  expect(corrupt.message).toContain(`byte offset ${offset}`);
}

function only(files: string[]): string {
  expect(files).toHaveLength(1);
  return files[0] as string;
}

describe('torn tail', () => {
  it.each([1, 3, 7, 8, 9, 20])('truncated by %i bytes: keeps the prefix, truncates, appends', async (cut) => {
    const { dir, files } = await writeLog();
    const file = only(files);
    const original = await readFile(file);
    const lastOffset = recordOffsets(original).at(-1) as number;
    await truncate(file, original.length - cut);

    const { wal, state } = await WriteAheadLog.open(dir);
    expect(state.entries).toEqual(prefix(SAVES - 1));
    expect(state.repairedTail).toMatchObject({ path: file, offset: lastOffset, droppedBytes: original.length - cut - lastOffset });
    expect((await stat(file)).size).toBe(lastOffset);
    await wal.save([nth(SAVES), nth(SAVES + 1)]);
    await wal.close();
    const after = await openState(dir);
    expect(after.entries).toEqual(prefix(SAVES + 1));
    expect(after.repairedTail).toBeUndefined();
  });

  it.each([1, 5, 100, 5000])('%i garbage bytes appended: all records kept, garbage cut off', async (count) => {
    const { dir, files } = await writeLog();
    const file = only(files);
    const size = (await stat(file)).size;
    const rng = new SeededRandom(count);
    await appendFile(file, Buffer.from(Array.from({ length: count }, () => rng.int(256))));

    const { wal, state } = await WriteAheadLog.open(dir);
    expect(state.entries).toEqual(prefix(SAVES));
    expect(state.repairedTail).toMatchObject({ offset: size, droppedBytes: count });
    expect((await stat(file)).size).toBe(size);
    await wal.save([nth(SAVES + 1)]);
    await wal.close();
    expect((await openState(dir)).entries).toEqual(prefix(SAVES + 1));
  });

  it('trailing zeros (a file extended but never written) are cut off', async () => {
    const { dir, files } = await writeLog();
    const file = only(files);
    const size = (await stat(file)).size;
    await appendFile(file, Buffer.alloc(4096));
    const state = await openState(dir);
    expect(state.entries).toEqual(prefix(SAVES));
    expect(state.repairedTail).toMatchObject({ offset: size, droppedBytes: 4096, reason: 'zero record length' });
  });

  it('a CRC mismatch in the last record, with nothing after it, is a torn write', async () => {
    const { dir, files } = await writeLog();
    const file = only(files);
    const bytes = await readFile(file);
    const lastOffset = recordOffsets(bytes).at(-1) as number;
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0x40;
    await writeFile(file, bytes);
    const state = await openState(dir);
    expect(state.entries).toEqual(prefix(SAVES - 1));
    expect(state.repairedTail?.offset).toBe(lastOffset);
    expect(state.repairedTail?.reason).toMatch(/CRC mismatch/);
  });

  it('an empty last segment (crash right after creating it) opens', async () => {
    const { dir, files } = await writeLog(200);
    expect(files.length).toBeGreaterThan(2);
    await truncate(files.at(-1) as string, 0);
    const state = await openState(dir);
    expect(state.entries.length).toBeGreaterThanOrEqual(SAVES - 2);
    expect(state.entries).toEqual(prefix(state.entries.length));
  });
});

describe('corruption', () => {
  it('a flipped byte in the middle of a segment throws WalCorruptError with file and offset, and changes nothing', async () => {
    const { dir, files } = await writeLog();
    const file = only(files);
    const bytes = await readFile(file);
    const offsets = recordOffsets(bytes);
    const victim = offsets[4] as number;
    bytes[victim + 12] = (bytes[victim + 12] as number) ^ 0x01;
    await writeFile(file, bytes);
    await expectCorrupt(dir, file, victim);
    expect(await readFile(file)).toEqual(bytes); // no truncation on corruption
  });

  it('a damaged length field in the middle is corruption, not a torn tail', async () => {
    const { dir, files } = await writeLog();
    const file = only(files);
    const bytes = await readFile(file);
    const victim = recordOffsets(bytes)[2] as number;
    bytes.writeUInt32LE(0x00ff_0000, victim); // "longer than the file": looks torn, but valid records follow
    await writeFile(file, bytes);
    await expectCorrupt(dir, file, victim);
  });

  it('damage in an older segment, even at its very end, is corruption', async () => {
    const { dir, files } = await writeLog(200);
    expect(files.length).toBeGreaterThan(2);
    const older = files[0] as string;
    const bytes = await readFile(older);
    const last = recordOffsets(bytes).at(-1) as number;
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x80;
    await writeFile(older, bytes);
    await expectCorrupt(dir, older, last);
    // A short older segment is corruption too: it was fsynced in full before the next began.
    await writeFile(older, bytes.subarray(0, bytes.length - 3));
    await expectCorrupt(dir, older, last);
  });

  it('a missing segment in the middle is corruption', async () => {
    const { dir, files } = await writeLog(200);
    expect(files.length).toBeGreaterThan(2);
    await rm(files[1] as string);
    await expectCorrupt(dir, files[2] as string, 0);
  });

  it('random single-byte damage yields either WalCorruptError or a prefix: never other data', async () => {
    const seed = Number(process.env.WAL_FUZZ_SEED ?? Date.now() % 2 ** 31);
    const rng = new SeededRandom(seed);
    const { dir, files } = await writeLog();
    const file = only(files);
    const original = await readFile(file);
    const offsets = recordOffsets(original);
    const lastOffset = offsets.at(-1) as number;
    for (let round = 0; round < 60; round++) {
      const pos = rng.int(original.length);
      const damaged = Buffer.from(original);
      damaged[pos] = (damaged[pos] as number) ^ (1 + rng.int(255));
      await writeFile(file, damaged);
      const record = offsets.filter((o) => o <= pos).length - 1;
      const where = `seed ${seed}, round ${round}, byte ${pos} in record ${record}`;
      if (pos < lastOffset) {
        await expectCorrupt(dir, file, offsets[record] as number).catch((e: unknown) => {
          throw new Error(`${where}: ${String(e)}`);
        });
      } else {
        const state = await openState(dir);
        expect(state.entries, where).toEqual(prefix(SAVES - 1));
      }
    }
  });
});
