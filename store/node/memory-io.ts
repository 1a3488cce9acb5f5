/**
 * In-memory RaftLogStore and SnapshotStore (hashicorp/raft's InmemStore and
 * InmemSnapshotStore): the contract of the WAL (wal.ts) and the snapshot
 * files (snapshot-file.ts) without a file system, for tests and simulations.
 *
 * Each object plays a disk that outlives the node using it. A write is
 * durable (seen by `reopen`) once its promise resolves; writes complete in
 * call order. `sync`, when given, is awaited before each write completes: a
 * simulation delays it on simulated time, or rejects it as a failed fsync,
 * after which the store refuses every later write (as the WAL does: what is
 * on disk is unknown until a restart). `reopen` is the restart after a crash:
 * writes not yet complete are lost and their promises never settle; crash the
 * node that used the store (StoreNode.crash) before reopening it.
 */
import { assert } from '../../lib/assert.js';
import type { Entry, HardState, Snapshot, StorageState } from '../raft/index.js';
import type { RaftLogStore, SnapshotStore } from './io.js';
import { DEFAULT_SNAPSHOT_RETAIN_COUNT } from './snapshot-file.js';
import { WalClosedError, WalFailedError, WalGapError } from './wal-errors.js';
import type { SnapshotMarker } from './wal-format.js';
import { EMPTY_HARD_STATE } from './wal-replay.js';

/** Stands for a directory in errors (the WAL's errors name the directory). */
const MEMORY_DIR = '(memory)';

export interface MemoryStoreOptions {
  /** Awaited before each write becomes durable: the fsync. Default: durable on the next microtask. */
  readonly sync?: () => Promise<void>;
}

/** What a reopened log holds, as WriteAheadLog.open's state. */
export interface MemoryLogState {
  readonly hardState: HardState;
  /** The log after the snapshot index asked for, contiguous. */
  readonly entries: readonly Entry[];
  readonly lastIndex: number;
}

const LOST: unique symbol = Symbol('lost in a crash');

/** Serializes writes, runs the fsync hook, and drops what a crash interrupted. */
class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private generation = 0;
  private failure: WalFailedError | undefined;
  private closed = false;

  constructor(private readonly sync: (() => Promise<void>) | undefined) {}

  /** Runs `apply` (the write becoming durable) after every earlier write and this one's sync. */
  run<R>(apply: () => R): Promise<R> {
    if (this.closed) return Promise.reject(new WalClosedError(MEMORY_DIR));
    const generation = this.generation;
    const step = this.tail.then(async (): Promise<R | typeof LOST> => {
      if (generation !== this.generation) return LOST;
      if (this.failure !== undefined) throw this.failure;
      try {
        await this.sync?.();
      } catch (e) {
        if (generation !== this.generation) return LOST;
        this.failure ??= new WalFailedError(MEMORY_DIR, e);
        throw this.failure;
      }
      return generation === this.generation ? apply() : LOST;
    });
    this.tail = step.catch(() => undefined);
    return step.then((r) => (r === LOST ? new Promise<R>(() => undefined) : r));
  }

  /** Waits for the writes made so far, then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }

  /** The process died: writes in flight are lost; the restarted one writes afresh. */
  crash(): void {
    this.generation++;
    this.tail = Promise.resolve();
    this.failure = undefined;
    this.closed = false;
  }
}

export class MemoryRaftLog implements RaftLogStore {
  private readonly queue: WriteQueue;
  private hardState: HardState = EMPTY_HARD_STATE;
  /** Index just before `run`: 0, a snapshot marker's index, or where released entries ended. */
  private base = 0;
  /** Entries base + 1, base + 2, ... */
  private run: Entry[] = [];
  private marker: SnapshotMarker | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.queue = new WriteQueue(options.sync);
  }

  save(entries: readonly Entry[], hardState?: HardState): Promise<void> {
    if (entries.length === 0 && hardState === undefined) return Promise.resolve();
    return this.queue.run(() => {
      this.append(entries);
      if (hardState !== undefined) this.hardState = hardState;
    });
  }

  /** An entry replaces the stored one at its index and everything after (§5.3); none behind a snapshot. */
  private append(entries: readonly Entry[]): void {
    const head = entries[0];
    if (head === undefined) return;
    entries.forEach((e, i) => assert(e.index === head.index + i, `entries not contiguous at ${e.index}`));
    assert(head.index <= this.lastIndex() + 1, `entries start at ${head.index}, past last index ${this.lastIndex()} + 1`);
    assert(head.index > (this.marker?.index ?? 0), `entry ${head.index} would overwrite snapshot ${this.marker?.index ?? 0}`);
    this.run.length = head.index - this.base - 1;
    this.run.push(...entries);
  }

  /**
   * As Raft's snapshot restore (and the WAL's replay): a log that holds the
   * snapshot's last entry with its term keeps what follows; any other log is
   * replaced by the snapshot.
   */
  markSnapshot(meta: SnapshotMarker): Promise<void> {
    return this.queue.run(() => {
      this.marker = { index: meta.index, term: meta.term };
      if (meta.index <= this.base) return;
      const at = this.run[meta.index - this.base - 1];
      if (at !== undefined && at.term === meta.term) return;
      this.run = [];
      this.base = meta.index;
    });
  }

  /** Drops the entries at or below `index`; resolves with how many. Only behind a durable snapshot marker. */
  releaseTo(index: number): Promise<number> {
    return this.queue.run(() => {
      const markerIndex = this.marker?.index ?? 0;
      assert(index <= markerIndex, `releaseTo(${index}) past the last durable snapshot marker ${markerIndex}`);
      const dropped = Math.min(Math.max(0, index - this.base), this.run.length);
      this.run.splice(0, dropped);
      this.base += dropped;
      return dropped;
    });
  }

  close(): Promise<void> {
    return this.queue.close();
  }

  /** The durable contents after `snapshotIndex`, without disturbing writes in flight (for checkers). */
  read(snapshotIndex = 0): MemoryLogState {
    if (snapshotIndex < this.base) throw new WalGapError(MEMORY_DIR, snapshotIndex, this.base + 1);
    const entries = this.run.slice(Math.max(0, snapshotIndex - this.base));
    return { hardState: this.hardState, entries, lastIndex: entries[entries.length - 1]?.index ?? Math.max(snapshotIndex, this.base) };
  }

  /** The restart after a crash (or a stop): writes in flight are lost; reads back what is durable. */
  reopen(snapshotIndex = 0): MemoryLogState {
    this.queue.crash();
    // As the WAL's open: a snapshot newer than the log (its marker lost in the crash) is where the log goes on.
    if (snapshotIndex > this.lastIndex()) {
      this.run = [];
      this.base = snapshotIndex;
    }
    return this.read(snapshotIndex);
  }

  private lastIndex(): number {
    return this.run[this.run.length - 1]?.index ?? this.base;
  }
}

export class MemorySnapshotStore implements SnapshotStore {
  private readonly queue: WriteQueue;
  /** Newest (highest index, then term) first. */
  private kept: Snapshot[] = [];

  constructor(
    options: MemoryStoreOptions = {},
    /** How many of the newest snapshots a save keeps, as the snapshot files' pruning does. */
    private readonly retainCount = DEFAULT_SNAPSHOT_RETAIN_COUNT,
  ) {
    assert(Number.isSafeInteger(retainCount) && retainCount >= 1, `bad retainCount ${retainCount}`);
    this.queue = new WriteQueue(options.sync);
  }

  save(snapshot: Snapshot): Promise<void> {
    return this.queue.run(() => {
      const others = this.kept.filter((s) => s.meta.index !== snapshot.meta.index || s.meta.term !== snapshot.meta.term);
      const all = [snapshot, ...others].sort((a, b) => b.meta.index - a.meta.index || b.meta.term - a.meta.term);
      this.kept = all.slice(0, this.retainCount);
    });
  }

  /** The newest durable snapshot, as loadNewestSnapshot finds it. */
  newest(): Snapshot | undefined {
    return this.kept[0];
  }

  /** The restart after a crash: saves in flight are lost. */
  reopen(): Snapshot | undefined {
    this.queue.crash();
    return this.newest();
  }
}

/**
 * What a restarted node reads back from memory stores, in the process's order
 * (process-io.ts): the newest snapshot, then the log after it. Hand the
 * result to StoreNode.create with the same two stores.
 */
export function reopenMemoryStorage(log: MemoryRaftLog, snapshots: MemorySnapshotStore): StorageState {
  const snapshot = snapshots.reopen();
  const { hardState, entries } = log.reopen(snapshot?.meta.index ?? 0);
  return { hardState, snapshot, entries };
}
