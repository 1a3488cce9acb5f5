/**
 * The write-ahead log of a Raft node: entries, hard state and snapshot
 * markers, appended to segment files and fsynced before `save` resolves.
 *
 * The contract with the Raft core (etcd-io/raft doc.go): `await wal.save(
 * ready.entries, ready.hardState)` before sending the Ready's messages. Raft
 * may overwrite a log suffix; the WAL never rewrites in place: it appends the
 * new entries and replay lets a later batch truncate what came before it.
 *
 * Durability: every acknowledged `save` was written and fdatasynced; a new
 * segment's directory entry is fsynced before anything in it is acknowledged.
 * Saves made while an fsync is running are coalesced into the next single
 * write + fsync (group commit), capped at `maxBatchBytes`.
 *
 * Recovery (see wal-format.ts for the rules): a torn last record is cut off;
 * damage anywhere else stops the node with a WalCorruptError.
 *
 * Snapshot order the node should keep: save the snapshot file
 * (snapshot-file.ts), then `markSnapshot`, then `releaseTo(snapshot index)`.
 */
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assert } from '../../lib/assert.js';
import type { Entry, HardState } from '../raft/types.js';
import type { RaftLogStore } from './io.js';
import { WalClosedError, WalCorruptError, WalFailedError } from './wal-errors.js';
import { encodeRecord, parseSegmentName, scanSegment, segmentName } from './wal-format.js';
import type { SnapshotMarker } from './wal-format.js';
import { fsyncDir, writeFully } from './wal-fs.js';
import { Replay } from './wal-replay.js';

export { WalClosedError, WalCorruptError, WalFailedError, WalGapError } from './wal-errors.js';
export type { SnapshotMarker } from './wal-format.js';
export { fsyncDir } from './wal-fs.js';

export const DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024;

export interface WalOptions {
  /** Index of the snapshot the caller loaded (0: none). `state.entries` starts right after it. */
  readonly snapshotIndex?: number;
  /** A segment that reached this size is closed and a new one started. Default 64 MiB. */
  readonly segmentSizeBytes?: number;
  /** Most bytes one group-commit write may carry (a single bigger save still goes alone). Default 8 MiB. */
  readonly maxBatchBytes?: number;
  /** Called after every fdatasync of a segment: for tests and metrics. */
  readonly onFsync?: (event: WalFsyncEvent) => void;
}

export interface WalFsyncEvent {
  readonly durationMs: number;
  readonly bytes: number;
  /** Calls (save or markSnapshot) that this one write + fsync made durable. */
  readonly calls: number;
}

export interface WalTailRepair {
  readonly path: string;
  /** Where the file was truncated. */
  readonly offset: number;
  readonly droppedBytes: number;
  readonly reason: string;
}

export interface WalState {
  /** The latest saved hard state ({term: 0, vote: '', commit: 0} if none). */
  readonly hardState: HardState;
  /** The log after `options.snapshotIndex`, contiguous from snapshotIndex + 1. */
  readonly entries: readonly Entry[];
  /** Last entry's index, or `snapshotIndex` if there are no entries. */
  readonly lastIndex: number;
  /** Snapshot markers found in the kept segments, oldest first. */
  readonly snapshotMarkers: readonly SnapshotMarker[];
  /** Set when start-up cut off a torn tail: worth a log line. */
  readonly repairedTail: WalTailRepair | undefined;
}

export interface WalStats {
  readonly calls: number;
  readonly writes: number;
  readonly fsyncs: number;
  readonly bytesWritten: number;
  readonly segmentsCreated: number;
  readonly segmentsReleased: number;
}

interface Segment {
  readonly seq: number;
  readonly firstIndex: number;
  readonly path: string;
  /** Highest entry index written to this segment (0: none). */
  maxIndex: number;
}

/** One save or markSnapshot call waiting for its write + fsync. */
interface Pending {
  readonly bytes: Buffer;
  readonly maxEntryIndex: number;
  /** The log's last index once this call is applied. */
  readonly lastIndexAfter: number;
  readonly hardState: HardState | undefined;
  readonly marker: SnapshotMarker | undefined;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

interface Config {
  readonly segmentSizeBytes: number;
  readonly maxBatchBytes: number;
  readonly onFsync: ((event: WalFsyncEvent) => void) | undefined;
}

interface Durable {
  lastIndex: number;
  hardState: HardState;
  /** Segment holding the latest hard state record; it is never released. */
  hardStateSeq: number | undefined;
  marker: SnapshotMarker | undefined;
  /** Segment holding the latest marker record; it is never released. */
  markerSeq: number | undefined;
}

export class WriteAheadLog implements RaftLogStore {
  private readonly queue: Pending[] = [];
  private flushing = false;
  private closing = false;
  private failure: WalFailedError | undefined;
  private idleWaiters: (() => void)[] = [];
  private closePromise: Promise<void> | undefined;
  private releasing: Promise<unknown> = Promise.resolve();
  private counters = { calls: 0, writes: 0, fsyncs: 0, bytesWritten: 0, segmentsCreated: 0, segmentsReleased: 0 };
  // What calls so far asked for, durable or not: checked by save's assertions.
  private queuedLastIndex: number;
  private queuedMarkerIndex: number;

  private constructor(
    readonly dir: string,
    private readonly config: Config,
    /** Oldest first. Invariant: seqs are consecutive; the last one is being written. */
    private readonly segments: Segment[],
    private handle: FileHandle,
    /** Size of the current segment. */
    private segmentBytes: number,
    private readonly durable: Durable,
  ) {
    this.queuedLastIndex = durable.lastIndex;
    this.queuedMarkerIndex = durable.marker?.index ?? 0;
  }

  /** Open (or create) the WAL in `dir` and replay it. Throws WalCorruptError or WalGapError. */
  static async open(dir: string, options: WalOptions = {}): Promise<{ wal: WriteAheadLog; state: WalState }> {
    const config = resolveConfig(options);
    const snapshotIndex = options.snapshotIndex ?? 0;
    assert(Number.isSafeInteger(snapshotIndex) && snapshotIndex >= 0, `bad snapshotIndex ${snapshotIndex}`);
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined) await fsyncDir(dirname(created));
    const segments = await listSegments(dir);
    if (segments.length === 0) {
      const path = join(dir, segmentName(1, snapshotIndex + 1));
      await (await open(path, 'wx')).close();
      await fsyncDir(dir);
      segments.push({ seq: 1, firstIndex: snapshotIndex + 1, path, maxIndex: 0 });
    }
    const replay = new Replay();
    let repairedTail: WalTailRepair | undefined;
    let lastBytes = 0;
    for (const [i, segment] of segments.entries()) {
      const bytes = await readFile(segment.path);
      const scan = scanSegment(segment.path, bytes, i === segments.length - 1);
      for (const { offset, record } of scan.records) replay.apply(segment.seq, segment.path, offset, record);
      segment.maxIndex = replay.maxIndexBySeq.get(segment.seq) ?? 0;
      lastBytes = scan.validBytes;
      if (scan.tornReason !== undefined) {
        const droppedBytes = bytes.length - scan.validBytes;
        repairedTail = { path: segment.path, offset: scan.validBytes, droppedBytes, reason: scan.tornReason };
      }
    }
    const entries = replay.entriesAfter(dir, snapshotIndex);
    const last = segments[segments.length - 1] as Segment;
    const handle = await open(last.path, 'r+');
    if (repairedTail !== undefined) {
      try {
        await handle.truncate(lastBytes);
        await handle.datasync();
      } catch (e) {
        await handle.close();
        throw e;
      }
    }
    const durable: Durable = {
      lastIndex: Math.max(replay.lastIndex(), snapshotIndex),
      hardState: replay.hardState,
      hardStateSeq: replay.hardStateSeq,
      marker: replay.markers[replay.markers.length - 1],
      markerSeq: replay.markerSeq,
    };
    const wal = new WriteAheadLog(dir, config, segments, handle, lastBytes, durable);
    const state: WalState = {
      hardState: replay.hardState,
      entries,
      lastIndex: entries[entries.length - 1]?.index ?? snapshotIndex,
      snapshotMarkers: replay.markers,
      repairedTail,
    };
    return { wal, state };
  }

  /**
   * Append `entries` (contiguous; the first may be <= the last index, which
   * overwrites the suffix from there) and the hard state, and fsync. Resolves
   * once durable. Rejects with WalClosedError or WalFailedError.
   */
  save(entries: readonly Entry[], hardState?: HardState): Promise<void> {
    return new Promise((resolve, reject) => {
      this.checkWritable();
      const head = entries[0];
      const tail = entries[entries.length - 1];
      const parts: Buffer[] = [];
      if (head !== undefined && tail !== undefined) {
        entries.forEach((e, i) => assert(e.index === head.index + i, `entries not contiguous at ${e.index}`));
        assert(head.index <= this.queuedLastIndex + 1, `entries start at ${head.index}, past last index ${this.queuedLastIndex} + 1`);
        assert(head.index > this.queuedMarkerIndex, `entry ${head.index} would overwrite snapshot ${this.queuedMarkerIndex}`);
        parts.push(...encodeEntries(entries));
        this.queuedLastIndex = tail.index;
      }
      if (hardState !== undefined) parts.push(encodeRecord({ kind: 'hardState', hardState }));
      if (parts.length === 0) {
        resolve();
        return;
      }
      this.enqueue({
        bytes: Buffer.concat(parts),
        maxEntryIndex: tail?.index ?? 0,
        lastIndexAfter: this.queuedLastIndex,
        hardState,
        marker: undefined,
        resolve,
        reject,
      });
    });
  }

  /**
   * Record that a snapshot at (index, term) is safely saved, so replay can
   * start there and `releaseTo(index)` may drop the segments before it.
   */
  markSnapshot(meta: SnapshotMarker): Promise<void> {
    return new Promise((resolve, reject) => {
      this.checkWritable();
      const marker: SnapshotMarker = { index: meta.index, term: meta.term };
      this.queuedMarkerIndex = Math.max(this.queuedMarkerIndex, marker.index);
      this.queuedLastIndex = Math.max(this.queuedLastIndex, marker.index);
      const bytes = encodeRecord({ kind: 'snapshot', marker });
      this.enqueue({ bytes, maxEntryIndex: 0, lastIndexAfter: this.queuedLastIndex, hardState: undefined, marker, resolve, reject });
    });
  }

  /**
   * Delete, oldest first, whole segments whose entries are all <= `index`,
   * never the one being written nor those holding the latest hard state or
   * snapshot marker. `index` must not pass the last durable snapshot marker.
   * Returns how many segments were deleted.
   */
  releaseTo(index: number): Promise<number> {
    // One release at a time, so that deletions stay oldest first across calls
    // and a crash never leaves a hole in the segment sequence.
    const run = this.releasing.then(() => this.releaseNow(index));
    this.releasing = run.catch(() => undefined);
    return run;
  }

  private async releaseNow(index: number): Promise<number> {
    const markerIndex = this.durable.marker?.index ?? 0;
    assert(index <= markerIndex, `releaseTo(${index}) past the last durable snapshot marker ${markerIndex}`);
    const current = this.segments[this.segments.length - 1] as Segment;
    const keepFrom = Math.min(current.seq, this.durable.hardStateSeq ?? Infinity, this.durable.markerSeq ?? Infinity);
    let count = 0;
    while (count < this.segments.length) {
      const s = this.segments[count] as Segment;
      if (s.seq >= keepFrom || s.maxIndex > index) break;
      count++;
    }
    const doomed = this.segments.splice(0, count);
    for (const [i, segment] of doomed.entries()) {
      try {
        await unlink(segment.path);
      } catch (e) {
        this.segments.unshift(...doomed.slice(i));
        throw e;
      }
      this.counters.segmentsReleased++;
    }
    if (count > 0) await fsyncDir(this.dir);
    return count;
  }

  /** Counters since open: fsyncs much lower than calls means group commit works. */
  get stats(): WalStats {
    return { ...this.counters };
  }

  /** Wait for queued calls to become durable, then close the file. Idempotent. */
  close(): Promise<void> {
    this.closing = true;
    this.closePromise ??= (async () => {
      if (this.flushing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      await this.handle.close();
    })();
    return this.closePromise;
  }

  private checkWritable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing) throw new WalClosedError(this.dir);
  }

  private enqueue(pending: Pending): void {
    this.counters.calls++;
    this.queue.push(pending);
    if (this.flushing) return;
    this.flushing = true;
    // Start on a microtask so calls made in the same tick share the first write.
    queueMicrotask(() => void this.drain());
  }

  /** The group-commit loop: one write + fdatasync per batch of queued calls. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      if (this.failure !== undefined) {
        for (const p of batch) p.reject(this.failure);
        continue;
      }
      try {
        await this.writeBatch(batch);
      } catch (e) {
        this.failure = new WalFailedError(this.dir, e);
        for (const p of batch) p.reject(this.failure);
        continue;
      }
      for (const p of batch) p.resolve();
    }
    this.flushing = false;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    for (const next of this.queue) {
      if (batch.length > 0 && bytes + next.bytes.length > this.config.maxBatchBytes) break;
      batch.push(next);
      bytes += next.bytes.length;
    }
    this.queue.splice(0, batch.length);
    return batch;
  }

  private async writeBatch(batch: readonly Pending[]): Promise<void> {
    const rotated = this.segmentBytes >= this.config.segmentSizeBytes;
    const header = rotated ? await this.rotate() : Buffer.alloc(0);
    const segment = this.segments[this.segments.length - 1] as Segment;
    const bytes = Buffer.concat([header, ...batch.map((p) => p.bytes)]);
    for (const p of batch) segment.maxIndex = Math.max(segment.maxIndex, p.maxEntryIndex);
    await writeFully(this.handle, bytes, this.segmentBytes);
    this.segmentBytes += bytes.length;
    this.counters.writes++;
    this.counters.bytesWritten += bytes.length;
    const startMs = performance.now();
    await this.handle.datasync();
    this.counters.fsyncs++;
    this.config.onFsync?.({ durationMs: performance.now() - startMs, bytes: bytes.length, calls: batch.length });
    this.applyDurable(batch, segment.seq, rotated);
  }

  private applyDurable(batch: readonly Pending[], seq: number, rotated: boolean): void {
    const d = this.durable;
    if (rotated && d.hardStateSeq !== undefined) d.hardStateSeq = seq;
    if (rotated && d.markerSeq !== undefined) d.markerSeq = seq;
    for (const p of batch) {
      d.lastIndex = p.lastIndexAfter;
      if (p.hardState !== undefined) {
        d.hardState = p.hardState;
        d.hardStateSeq = seq;
      }
      if (p.marker !== undefined) {
        d.marker = p.marker;
        d.markerSeq = seq;
      }
    }
  }

  /**
   * Start the next segment. Its first records repeat the latest hard state and
   * snapshot marker (as etcd's WAL does on a cut), so older segments can be
   * released without losing them. Returns those records for the next write.
   */
  private async rotate(): Promise<Buffer> {
    const previous = this.segments[this.segments.length - 1] as Segment;
    const seq = previous.seq + 1;
    const firstIndex = this.durable.lastIndex + 1;
    const path = join(this.dir, segmentName(seq, firstIndex));
    const handle = await open(path, 'wx');
    try {
      await fsyncDir(this.dir);
      // Everything in the previous segment was fdatasynced by earlier batches.
      await this.handle.close();
    } catch (e) {
      await handle.close();
      throw e;
    }
    this.handle = handle;
    this.segments.push({ seq, firstIndex, path, maxIndex: 0 });
    this.segmentBytes = 0;
    this.counters.segmentsCreated++;
    const records: Buffer[] = [];
    const d = this.durable;
    if (d.hardStateSeq !== undefined) records.push(encodeRecord({ kind: 'hardState', hardState: d.hardState }));
    if (d.marker !== undefined) records.push(encodeRecord({ kind: 'snapshot', marker: d.marker }));
    return Buffer.concat(records);
  }
}

function resolveConfig(options: WalOptions): Config {
  const segmentSizeBytes = options.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
  const maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  assert(Number.isSafeInteger(segmentSizeBytes) && segmentSizeBytes > 0, `bad segmentSizeBytes ${segmentSizeBytes}`);
  assert(Number.isSafeInteger(maxBatchBytes) && maxBatchBytes > 0, `bad maxBatchBytes ${maxBatchBytes}`);
  return { segmentSizeBytes, maxBatchBytes, onFsync: options.onFsync };
}

/** One or more entries records, split so that each stays under RECORD_MAX_BYTES. */
function encodeEntries(entries: readonly Entry[]): Buffer[] {
  try {
    return [encodeRecord({ kind: 'entries', entries })];
  } catch (e) {
    if (!(e instanceof RangeError) || entries.length === 1) throw e;
    const half = Math.ceil(entries.length / 2);
    return [...encodeEntries(entries.slice(0, half)), ...encodeEntries(entries.slice(half))];
  }
}

/** The segment files in `dir`, oldest first; a missing one in the middle is corruption. */
async function listSegments(dir: string): Promise<Segment[]> {
  const segments: Segment[] = [];
  for (const name of await readdir(dir)) {
    const parsed = parseSegmentName(name);
    if (parsed !== undefined) segments.push({ ...parsed, path: join(dir, name), maxIndex: 0 });
  }
  segments.sort((a, b) => a.seq - b.seq);
  segments.forEach((s, i) => {
    const prev = segments[i - 1];
    if (prev !== undefined && s.seq !== prev.seq + 1) {
      throw new WalCorruptError(s.path, 0, `segment ${prev.seq + 1} is missing before it`);
    }
  });
  return segments;
}
