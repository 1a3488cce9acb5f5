/**
 * Snapshot files: `<dir>/<term>-<index>.snap`, one per saved snapshot.
 *
 * File layout: [magic "RAFTSNP1"][length u32 LE][crc32 u32 LE][payload]
 * where the payload is the JSON of the Snapshot and the CRC-32 covers it, so
 * a damaged file is detected instead of restoring a wrong state machine.
 *
 * Durability: written to a temp file, fsynced, renamed into place, then the
 * directory is fsynced: a crash leaves either the old set of snapshots or the
 * new one, never a half-written `.snap`.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assert } from '../../lib/assert.js';
import type { Snapshot } from '../raft/types.js';
import { crc32 } from './crc32.js';
import { errnoCode, fsyncDir, replaceFileDurably } from './wal-fs.js';

export const DEFAULT_SNAPSHOT_RETAIN_COUNT = 2;

const MAGIC = Buffer.from('RAFTSNP1', 'ascii');
const HEADER_BYTES = MAGIC.length + 8;
const SNAPSHOT_NAME = /^(\d{16})-(\d{16})\.snap$/;
const TEMP_SUFFIX = '.tmp';
const BROKEN_SUFFIX = '.broken';

export interface SaveSnapshotOptions {
  /** How many of the newest snapshot files to keep after this save. Default 2. */
  readonly retainCount?: number;
}

export interface DamagedSnapshot {
  readonly path: string;
  readonly reason: string;
  /** Where the file was moved so it is not tried again (etcd's `.broken`). */
  readonly movedTo: string;
}

export interface LoadSnapshotOptions {
  /** Told about each damaged snapshot skipped on the way to a valid one. Default: a warning on stderr. */
  readonly onDamaged?: (report: DamagedSnapshot) => void;
}

export function snapshotFileName(term: number, index: number): string {
  return `${String(term).padStart(16, '0')}-${String(index).padStart(16, '0')}.snap`;
}

/** Write `snapshot` durably into `dir` and prune older files. Returns the file's path. */
export async function saveSnapshot(dir: string, snapshot: Snapshot, options: SaveSnapshotOptions = {}): Promise<string> {
  const retainCount = options.retainCount ?? DEFAULT_SNAPSHOT_RETAIN_COUNT;
  assert(Number.isSafeInteger(retainCount) && retainCount >= 1, `bad retainCount ${retainCount}`);
  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined) await fsyncDir(dirname(created));
  const path = join(dir, snapshotFileName(snapshot.meta.term, snapshot.meta.index));
  await replaceFileDurably(path, encodeSnapshot(snapshot), TEMP_SUFFIX);
  await pruneSnapshots(dir, retainCount);
  return path;
}

/**
 * The newest snapshot in `dir` that reads back intact, or undefined if none.
 * Damaged files are renamed to `*.broken` and reported, then the next older
 * one is tried. I/O errors other than damage are thrown.
 */
export async function loadNewestSnapshot(dir: string, options: LoadSnapshotOptions = {}): Promise<Snapshot | undefined> {
  const onDamaged = options.onDamaged ?? warnDamaged;
  for (const name of await listSnapshots(dir)) {
    const path = join(dir, name);
    const decoded = decodeSnapshot(await readFile(path));
    if (typeof decoded !== 'string' && name === snapshotFileName(decoded.meta.term, decoded.meta.index)) {
      return decoded;
    }
    const reason = typeof decoded === 'string' ? decoded : 'file name does not match the snapshot inside';
    const movedTo = path + BROKEN_SUFFIX;
    await rename(path, movedTo);
    await fsyncDir(dir);
    onDamaged({ path, reason, movedTo });
  }
  return undefined;
}

/** Keep the `retainCount` newest snapshot files; delete older ones and leftover temp files. */
export async function pruneSnapshots(dir: string, retainCount: number): Promise<string[]> {
  const names = await listSnapshots(dir);
  const doomed = names.slice(retainCount).map((name) => join(dir, name));
  for (const name of await readdir(dir)) {
    if (name.endsWith('.snap' + TEMP_SUFFIX)) doomed.push(join(dir, name));
  }
  for (const path of doomed) await rm(path, { force: true });
  if (doomed.length > 0) await fsyncDir(dir);
  return doomed;
}

/** Snapshot file names in `dir`, newest (highest index, then term) first. */
async function listSnapshots(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  const parsed = names.flatMap((name) => {
    const m = SNAPSHOT_NAME.exec(name);
    return m ? [{ name, term: Number(m[1]), index: Number(m[2]) }] : [];
  });
  parsed.sort((a, b) => b.index - a.index || b.term - a.term);
  return parsed.map((p) => p.name);
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  const payload = Buffer.from(JSON.stringify({ meta: snapshot.meta, data: snapshot.data }));
  // The u32 length field caps a snapshot at 4 GiB; V8's string limit is lower anyway.
  assert(payload.length <= 0xffffffff, `snapshot of ${payload.length} bytes is too large`);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(payload.length, MAGIC.length);
  header.writeUInt32LE(crc32(payload), MAGIC.length + 4);
  return Buffer.concat([header, payload]);
}

/** The snapshot in `bytes`, or why it is damaged. */
export function decodeSnapshot(bytes: Buffer): Snapshot | string {
  if (bytes.length < HEADER_BYTES) return `file too short (${bytes.length} bytes)`;
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) return 'bad magic';
  const length = bytes.readUInt32LE(MAGIC.length);
  if (length !== bytes.length - HEADER_BYTES) return `length ${length} does not match file (${bytes.length - HEADER_BYTES} bytes)`;
  const payload = bytes.subarray(HEADER_BYTES);
  if (crc32(payload) !== bytes.readUInt32LE(MAGIC.length + 4)) return 'CRC mismatch';
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    return `payload is not JSON (${String(e)})`;
  }
  return isSnapshot(value) ? value : 'payload is not a snapshot';
}

function isSnapshot(v: unknown): v is Snapshot {
  if (typeof v !== 'object' || v === null || !('meta' in v) || !('data' in v)) return false;
  const { meta, data } = v;
  if (typeof data !== 'string' || typeof meta !== 'object' || meta === null) return false;
  if (!('index' in meta) || !('term' in meta) || !('conf' in meta)) return false;
  const { index, term, conf } = meta;
  return isIndex(index) && isIndex(term) && isConfState(conf);
}

function isConfState(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || !('voters' in v) || !('learners' in v)) return false;
  return isStringArray(v.voters) && isStringArray(v.learners);
}

function isStringArray(v: unknown): boolean {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isIndex(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function warnDamaged(report: DamagedSnapshot): void {
  console.warn(`snapshot ${report.path} is damaged (${report.reason}); moved to ${report.movedTo}`);
}
