/**
 * The WAL's on-disk format and the recovery rules that read it back. Pure:
 * bytes in, records out; no file I/O here, so the rules are easy to test.
 *
 * A segment file is a sequence of records, each framed as
 *
 *     [length u32 LE][crc32 u32 LE][type u8][payload]
 *
 * where `length` counts the type byte plus the payload and the CRC-32 (IEEE)
 * covers exactly those `length` bytes. Payloads are JSON.
 */
import type { Entry, HardState } from '../raft/types.js';
import { crc32 } from './crc32.js';
import { WalCorruptError } from './wal-errors.js';

export const RECORD_HEADER_BYTES = 8;
/**
 * Largest `length` (type byte + payload) of one record. Part of the format:
 * recovery treats a larger length as damage, so never lower it below what an
 * existing WAL holds. The writer splits big entry batches to stay under it.
 */
export const RECORD_MAX_BYTES = 16 * 1024 * 1024;

const TYPE_ENTRIES = 1;
const TYPE_HARD_STATE = 2;
const TYPE_SNAPSHOT = 3;

/** Records that a snapshot at (index, term) was saved, so replay can start there. */
export interface SnapshotMarker {
  readonly index: number;
  readonly term: number;
}

export type WalRecord =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  | { readonly kind: 'snapshot'; readonly marker: SnapshotMarker };

export function encodeRecord(record: WalRecord): Buffer {
  const { type, payload } = encodePayload(record);
  const body = Buffer.allocUnsafe(1 + payload.length);
  body[0] = type;
  payload.copy(body, 1);
  if (body.length > RECORD_MAX_BYTES) {
    throw new RangeError(`WAL record of ${body.length} bytes exceeds RECORD_MAX_BYTES (${RECORD_MAX_BYTES})`);
  }
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(body.length, 0);
  header.writeUInt32LE(crc32(body), 4);
  return Buffer.concat([header, body]);
}

function encodePayload(record: WalRecord): { type: number; payload: Buffer } {
  switch (record.kind) {
    case 'entries':
      return { type: TYPE_ENTRIES, payload: Buffer.from(JSON.stringify(record.entries)) };
    case 'hardState':
      return { type: TYPE_HARD_STATE, payload: Buffer.from(JSON.stringify(record.hardState)) };
    case 'snapshot':
      return { type: TYPE_SNAPSHOT, payload: Buffer.from(JSON.stringify(record.marker)) };
  }
}

export interface ScannedRecord {
  /** Byte offset of the record's header in its segment. */
  readonly offset: number;
  readonly record: WalRecord;
}

export interface SegmentScan {
  readonly records: readonly ScannedRecord[];
  /** Length of the valid prefix; the file is truncated here if a torn tail follows. */
  readonly validBytes: number;
  /** Why the bytes after `validBytes` were judged a torn tail (undefined: none). */
  readonly tornReason: string | undefined;
}

/**
 * Parse one segment. Recovery rules (etcd's, made a little stricter):
 * - In any segment but the last, every byte must belong to a valid record:
 *   those segments were fsynced in full before the next one was created.
 * - In the last segment, a bad record (short header, short payload, CRC
 *   mismatch, zero length: trailing zeros) is a torn tail, the remains of a
 *   write that a crash interrupted before it was acknowledged, but only if no
 *   valid record follows it anywhere in the file. A valid record after a bad
 *   one means damage in the middle of the log: that is corruption.
 * - A record whose CRC matches but whose content cannot be decoded was
 *   written that way: corruption, wherever it is.
 */
export function scanSegment(path: string, bytes: Buffer, isLast: boolean): SegmentScan {
  const records: ScannedRecord[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const framed = frameAt(bytes, offset);
    if (typeof framed === 'string') {
      if (!isLast) throw new WalCorruptError(path, offset, `${framed} in a segment that is not the last`);
      const next = findValidFrameAfter(bytes, offset + 1);
      if (next !== undefined) {
        throw new WalCorruptError(path, offset, `${framed}, followed by a valid record at offset ${next}`);
      }
      return { records, validBytes: offset, tornReason: framed };
    }
    records.push({ offset, record: decodeBody(path, offset, framed) });
    offset += RECORD_HEADER_BYTES + framed.length;
  }
  return { records, validBytes: offset, tornReason: undefined };
}

/** The CRC-checked body (type + payload) of the record at `offset`, or why there is none. */
function frameAt(bytes: Buffer, offset: number): Buffer | string {
  const available = bytes.length - offset;
  if (available < RECORD_HEADER_BYTES) return `incomplete record header (${available} of ${RECORD_HEADER_BYTES} bytes)`;
  const length = bytes.readUInt32LE(offset);
  if (length === 0) return 'zero record length';
  if (length > RECORD_MAX_BYTES) return `record length ${length} exceeds RECORD_MAX_BYTES`;
  if (available - RECORD_HEADER_BYTES < length) {
    return `incomplete record (${available - RECORD_HEADER_BYTES} of ${length} bytes)`;
  }
  const body = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
  const expected = bytes.readUInt32LE(offset + 4);
  const actual = crc32(body);
  if (actual !== expected) return `CRC mismatch (stored ${hex(expected)}, computed ${hex(actual)})`;
  return body;
}

/**
 * First offset >= `from` where a complete record with a matching CRC starts.
 * Run only on the tail of the last segment after a bad record, so its cost
 * (a CRC per plausible header) is paid once, at start-up, after a crash.
 */
function findValidFrameAfter(bytes: Buffer, from: number): number | undefined {
  for (let p = from; p + RECORD_HEADER_BYTES < bytes.length; p++) {
    const length = bytes.readUInt32LE(p);
    if (length === 0 || length > RECORD_MAX_BYTES || p + RECORD_HEADER_BYTES + length > bytes.length) continue;
    const type = bytes[p + RECORD_HEADER_BYTES];
    if (type !== TYPE_ENTRIES && type !== TYPE_HARD_STATE && type !== TYPE_SNAPSHOT) continue;
    if (typeof frameAt(bytes, p) !== 'string') return p;
  }
  return undefined;
}

function decodeBody(path: string, offset: number, body: Buffer): WalRecord {
  const type = body[0];
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8', 1));
  } catch (e) {
    throw new WalCorruptError(path, offset, `record payload is not JSON (${String(e)})`);
  }
  if (type === TYPE_ENTRIES && Array.isArray(value) && value.every(isEntry)) {
    return { kind: 'entries', entries: value };
  }
  if (type === TYPE_HARD_STATE && isHardState(value)) return { kind: 'hardState', hardState: value };
  if (type === TYPE_SNAPSHOT && isMarker(value)) return { kind: 'snapshot', marker: value };
  throw new WalCorruptError(path, offset, `record of type ${String(type)} has an unexpected payload`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isEntry(v: unknown): v is Entry {
  return (
    isObject(v) &&
    isIndex(v.index) &&
    isIndex(v.term) &&
    (v.type === 'normal' || v.type === 'conf') &&
    typeof v.data === 'string'
  );
}

function isHardState(v: unknown): v is HardState {
  return isObject(v) && isIndex(v.term) && typeof v.vote === 'string' && isIndex(v.commit);
}

function isMarker(v: unknown): v is SnapshotMarker {
  return isObject(v) && isIndex(v.index) && isIndex(v.term);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

// Segment file names: `<seq>-<firstIndex>.wal`, both zero-padded decimal so
// that names sort in log order. `firstIndex` is the index the segment was
// expected to start at when created (Raft may later overwrite below it).

const SEGMENT_NAME = /^(\d{16})-(\d{16})\.wal$/;

export function segmentName(seq: number, firstIndex: number): string {
  return `${String(seq).padStart(16, '0')}-${String(firstIndex).padStart(16, '0')}.wal`;
}

export function parseSegmentName(name: string): { seq: number; firstIndex: number } | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  return { seq: Number(m[1]), firstIndex: Number(m[2]) };
}
