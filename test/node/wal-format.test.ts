// Goal: the WAL's byte format is what it claims: CRC-32 (IEEE) matches the
// standard check values and zlib, records round-trip, and scanSegment's
// torn-tail versus corruption rules hold on hand-built segments.
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { crc32 } from '../../store/node/crc32.js';
import { WalCorruptError } from '../../store/node/wal-errors.js';
import { encodeRecord, parseSegmentName, scanSegment, segmentName } from '../../store/node/wal-format.js';
import type { WalRecord } from '../../store/node/wal-format.js';
import { entries } from './fixtures/wal-test-helpers.js';

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(Buffer.alloc(0))).toBe(0);
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('agrees with zlib on random data and continues across pieces', () => {
    const rng = new SeededRandom(7);
    const zlibCrc = (zlib as { crc32?: (b: Uint8Array) => number }).crc32;
    for (let n = 0; n < 50; n++) {
      const bytes = Buffer.from(Array.from({ length: rng.int(3000) }, () => rng.int(256)));
      const cut = rng.int(bytes.length + 1);
      expect(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut)))).toBe(crc32(bytes));
      if (zlibCrc !== undefined) expect(crc32(bytes)).toBe(zlibCrc(bytes));
    }
  });
});

describe('records and segments', () => {
  const records: WalRecord[] = [
    { kind: 'hardState', hardState: { term: 2, vote: 'n1', commit: 3 } },
    { kind: 'entries', entries: entries(1, 3) },
    { kind: 'snapshot', marker: { index: 2, term: 1 } },
  ];
  const segment = Buffer.concat(records.map(encodeRecord));

  it('frames [length u32][crc32 u32][type u8][payload] with the CRC over type + payload', () => {
    const one = encodeRecord(records[0] as WalRecord);
    expect(one.readUInt32LE(0)).toBe(one.length - 8);
    expect(one.readUInt32LE(4)).toBe(crc32(one.subarray(8)));
    expect(one[8]).toBe(2);
    expect(JSON.parse(one.subarray(9).toString())).toEqual({ term: 2, vote: 'n1', commit: 3 });
  });

  it('scans a clean segment back into the same records', () => {
    const scan = scanSegment('seg', segment, true);
    expect(scan.records.map((r) => r.record)).toEqual(records);
    expect(scan).toMatchObject({ validBytes: segment.length, tornReason: undefined });
  });

  it('treats a short tail of the last segment as torn, of an older one as corrupt', () => {
    const short = segment.subarray(0, segment.length - 2);
    const lastStart = segment.length - encodeRecord(records[2] as WalRecord).length;
    expect(scanSegment('seg', short, true)).toMatchObject({ validBytes: lastStart, tornReason: expect.stringMatching(/incomplete record/) });
    expect(() => scanSegment('seg', short, false)).toThrow(WalCorruptError);
  });

  it('calls a CRC-valid record with a bad payload corruption even at the tail', () => {
    const body = Buffer.from('\x01{"not":"entries"}', 'latin1');
    const header = Buffer.alloc(8);
    header.writeUInt32LE(body.length, 0);
    header.writeUInt32LE(crc32(body), 4);
    expect(() => scanSegment('seg', Buffer.concat([segment, header, body]), true)).toThrow(/unexpected payload/);
  });

  it('names segments <seq>-<firstIndex>.wal, zero-padded so they sort', () => {
    expect(segmentName(1, 1)).toBe('0000000000000001-0000000000000001.wal');
    expect(parseSegmentName(segmentName(12, 345))).toEqual({ seq: 12, firstIndex: 345 });
    expect(parseSegmentName('0000000000000001-0000000000000001.wal.tmp')).toBeUndefined();
  });
});
