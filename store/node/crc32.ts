/**
 * CRC-32 (IEEE 802.3, polynomial 0xEDB88320 reflected), the checksum zlib,
 * PNG and Ethernet use, for the WAL's records and snapshot files. node:zlib's
 * native one (Node 20.15 and later): about 4 times the table-driven JS loop it
 * replaced, which took 1.9% of a store leader's CPU under overwrites at a
 * large state (docs/BENCHMARKS.md). The values are the same, so files
 * written before read back unchanged.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * CRC-32 of `bytes`. Pass a previous result as `previous` to continue a
 * checksum over data that arrives in pieces: crc32(b, crc32(a)) == crc32(a ++ b).
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  return zlibCrc32(bytes, previous);
}
