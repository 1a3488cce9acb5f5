/**
 * Rebuilds the node's durable Raft state from the WAL's records, in order.
 * Pure: the file reading and the torn-tail repair live in wal.ts.
 */
import { NONE } from '../raft/types.js';
import type { Entry, HardState } from '../raft/types.js';
import { WalCorruptError, WalGapError } from './wal-errors.js';
import type { SnapshotMarker, WalRecord } from './wal-format.js';

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

/** Folds records, oldest segment first, into the state that `WriteAheadLog.open` returns. */
export class Replay {
  /**
   * The log as Raft last saw it: entries `base + 1 ..` in order.
   * Invariant: run[i].index === base + 1 + i.
   */
  private run: Entry[] = [];
  /** Index just before the run: 0, a snapshot marker, or where released segments ended. */
  private base = 0;
  hardState: HardState = EMPTY_HARD_STATE;
  /** Segment holding the latest hard state record (undefined: none yet). */
  hardStateSeq: number | undefined;
  readonly markers: SnapshotMarker[] = [];
  /** Segment holding the latest snapshot marker (undefined: none yet). */
  markerSeq: number | undefined;
  /** Per segment: the highest entry index it holds (0 if none). */
  readonly maxIndexBySeq = new Map<number, number>();

  apply(seq: number, path: string, offset: number, record: WalRecord): void {
    switch (record.kind) {
      case 'entries':
        this.applyEntries(seq, path, offset, record.entries);
        return;
      case 'hardState':
        this.hardState = record.hardState;
        this.hardStateSeq = seq;
        return;
      case 'snapshot':
        this.applyMarker(record.marker);
        this.markerSeq = seq;
        return;
    }
  }

  /**
   * A batch starting at or below the last index replaces everything from its
   * first index on (Raft overwrote a suffix: Figure 2, AppendEntries step 3).
   * A batch that starts past the end means the entries in between went with
   * released segments: the run restarts there.
   */
  private applyEntries(seq: number, path: string, offset: number, batch: readonly Entry[]): void {
    const head = batch[0];
    if (head === undefined) return;
    batch.forEach((e, i) => {
      if (e.index !== head.index + i) throw new WalCorruptError(path, offset, 'entries batch is not contiguous');
    });
    const tail = batch[batch.length - 1] as Entry;
    this.maxIndexBySeq.set(seq, Math.max(this.maxIndexBySeq.get(seq) ?? 0, tail.index));
    if (head.index > this.lastIndex() + 1 || head.index <= this.base + 1) {
      this.run = [...batch];
      this.base = head.index - 1;
      return;
    }
    this.run.length = head.index - this.base - 1;
    this.run.push(...batch);
  }

  /**
   * Raft's snapshot restore (etcd-io/raft raftLog.restore): if the log holds
   * the snapshot's last entry with the same term, the log after it stays;
   * otherwise the whole log is replaced by the snapshot.
   */
  private applyMarker(marker: SnapshotMarker): void {
    this.markers.push(marker);
    if (marker.index <= this.base) return;
    const at = this.run[marker.index - this.base - 1];
    if (at !== undefined && at.term === marker.term) return;
    this.run = [];
    this.base = marker.index;
  }

  /** Index of the last entry in the log (the base if the run is empty). */
  lastIndex(): number {
    return this.run[this.run.length - 1]?.index ?? this.base;
  }

  /**
   * The entries after `snapshotIndex`. The WAL must know the log from that
   * index on: a snapshot older than the run's base leaves a hole.
   */
  entriesAfter(dir: string, snapshotIndex: number): Entry[] {
    if (snapshotIndex < this.base) throw new WalGapError(dir, snapshotIndex, this.base + 1);
    return this.run.slice(Math.max(0, snapshotIndex - this.base));
  }
}
