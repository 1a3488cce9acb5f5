/**
 * Simulated disks, with the failure model of a real one under a power cut:
 *
 * - `SimDisk` is the participant log's file system (participant's `LogFs`):
 *   writes land in a page cache at once (reads see them); `sync`/`datasync`
 *   make a file's data durable only when the simulated fsync completes (after
 *   a drawn latency, on the process's timers); a created or renamed name is
 *   durable only once its directory is fsynced. A crash keeps what was
 *   durable, plus a random prefix of each file's unsynced appended tail (a
 *   torn write: whole lines, part of a line, or nothing).
 * - `SimRaftDisk` is a store node's `RaftLogStore` and `SnapshotStore`
 *   (store/node/io.ts): the WAL's contract (entries and hard state durable
 *   when `save` resolves), with crashes inside a save (nothing persisted, a
 *   prefix, or all of it before the node hears back).
 *
 * Each disk outlives its process's incarnations; a call made by a dead
 * incarnation does nothing and never resolves.
 */
import type { LogFileHandle, LogFs } from '../../participant/log.js';
import type { Entry, HardState, Snapshot, StorageState } from '../../store/raft/index.js';
import type { RaftLogStore, SnapshotStore } from '../../store/node/io.js';
import type { SnapshotMarker } from '../../store/node/wal-format.js';
import type { Proc, World } from './world.js';

interface SimFile {
  /** What a read sees now (the page cache). */
  data: string;
  /** What survives a crash. */
  synced: string;
}

export interface SimDiskOptions {
  /** Simulated ms one fsync takes. */
  readonly fsyncMs: () => number;
  /** The mutation `fsync-lies`: fsync answers at once and the data becomes durable only later. */
  readonly fsyncLies?: boolean;
}

/** Simulated ms a lying fsync's data takes to become durable after it answered. */
const lyingFsyncDelayMs = 30;

export class SimDisk implements LogFs {
  private names = new Map<string, SimFile>();
  private durableNames = new Map<string, SimFile>();

  constructor(
    private readonly proc: Proc,
    private readonly world: World,
    private readonly opts: SimDiskOptions,
  ) {}

  /** The durable text of `path`: what a crash now would leave (before any torn tail). */
  durableText(path: string): string | undefined {
    return this.durableNames.get(path)?.synced;
  }

  /** The power goes: keep the durable names and data, plus a torn prefix of each unsynced tail. */
  crash(): void {
    const r = this.world.random;
    for (const f of this.durableNames.values()) {
      const tail = f.data.startsWith(f.synced) ? f.data.slice(f.synced.length) : '';
      const kept = tail.length === 0 || r.chance(0.5) ? '' : tail.slice(0, r.int(tail.length + 1));
      f.data = f.synced + kept;
    }
    this.names = new Map(this.durableNames);
  }

  readFile(path: string): Promise<string> {
    return this.io(() => {
      const f = this.names.get(path);
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return f.data;
    });
  }

  open(path: string, flags: 'a' | 'w' | 'r'): Promise<LogFileHandle> {
    return this.io(() => {
      let f = this.names.get(path);
      if (flags === 'r' && f === undefined) return this.directoryHandle();
      if (f === undefined) this.names.set(path, (f = { data: '', synced: '' }));
      if (flags === 'w') f.data = '';
      return this.fileHandle(f);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.io(() => {
      const f = this.names.get(from);
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${from}`), { code: 'ENOENT' });
      this.names.delete(from);
      this.names.set(to, f);
    });
  }

  mkdir(): Promise<unknown> {
    return this.io(() => undefined);
  }

  private fileHandle(f: SimFile): LogFileHandle {
    const sync = (): Promise<void> => this.fsync(() => (f.synced = f.data));
    return {
      writeFile: (data: string) => this.io(() => void (f.data += data)),
      sync,
      datasync: sync,
      close: () => this.io(() => undefined),
    };
  }

  /** A directory's fsync makes every name as it is now durable (one directory per log). */
  private directoryHandle(): LogFileHandle {
    const sync = (): Promise<void> => this.fsync(() => (this.durableNames = new Map(this.names)));
    const refuse = (): Promise<void> => Promise.reject(new Error('EISDIR'));
    return { writeFile: refuse, sync, datasync: sync, close: () => this.io(() => undefined) };
  }

  /** Completes `persist` after the fsync latency; a lying disk answers first and persists later. */
  private fsync(persist: () => void): Promise<void> {
    const inc = this.proc.incarnation;
    return new Promise<void>((resolve) => {
      if (!this.proc.isLive(inc)) return;
      const ms = this.opts.fsyncMs();
      if (this.opts.fsyncLies === true) {
        this.proc.timers.after(ms + lyingFsyncDelayMs, persist);
        this.proc.timers.after(0, resolve);
        return;
      }
      this.proc.timers.after(ms, () => {
        persist();
        resolve();
      });
    });
  }

  /** A call that completes at once, only for the live incarnation that made it. */
  private io<T>(f: () => T): Promise<T> {
    if (!this.proc.alive) return new Promise<T>(() => undefined);
    try {
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

export interface SimRaftDiskOptions {
  /** Simulated ms one WAL fsync takes. */
  readonly fsyncMs: () => number;
  /** Chance that the node dies inside a save: nothing, a prefix, or everything persisted. */
  readonly crashInSaveChance: () => number;
}

/**
 * A store node's durable state: hard state, log entries after the newest
 * durable snapshot, and that snapshot.
 */
export class SimRaftDisk implements RaftLogStore {
  private hardState: HardState = { term: 0, vote: '', commit: 0 };
  private entries: Entry[] = [];
  private snapshot: Snapshot | undefined;

  constructor(
    private readonly proc: Proc,
    private readonly world: World,
    private readonly opts: SimRaftDiskOptions,
  ) {}

  /** Writes the founders' first state, as a fresh node's start does (durable before anything runs). */
  bootstrap(state: StorageState): void {
    this.hardState = state.hardState;
    this.entries = [...state.entries];
    this.snapshot = state.snapshot;
  }

  /** What a restarting node reads back. */
  storageState(): StorageState {
    return this.snapshot === undefined ? { hardState: this.hardState, entries: [...this.entries] } : { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }

  get newestSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  save(entries: readonly Entry[], hardState?: HardState): Promise<void> {
    return this.afterFsync(() => {
      const crash = this.world.random.chance(this.opts.crashInSaveChance());
      const kept = crash ? entries.slice(0, this.world.random.int(entries.length + 1)) : entries;
      this.append(kept);
      if (hardState !== undefined && (!crash || kept.length === entries.length)) this.hardState = hardState;
      if (crash) {
        this.world.counters.inc('store crashes inside a save');
        this.proc.kill(`crash inside a WAL save (${kept.length} of ${entries.length} entries durable)`);
      }
    });
  }

  private append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    // A new entry at an index replaces that index and everything after it (log matching, §5.3).
    this.entries = this.entries.filter((e) => e.index < first.index);
    this.entries.push(...entries);
  }

  markSnapshot(_meta: SnapshotMarker): Promise<void> {
    return this.afterFsync(() => undefined);
  }

  releaseTo(index: number): Promise<number> {
    return this.afterFsync(() => {
      const before = this.entries.length;
      this.entries = this.entries.filter((e) => e.index > index);
      return before - this.entries.length;
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The snapshot is durable, and the entries it covers are no longer needed at start. */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.afterFsync(() => {
      if (this.snapshot !== undefined && this.snapshot.meta.index >= snapshot.meta.index) return;
      this.snapshot = snapshot;
      // §7: entries after the snapshot stay only when the log holds the snapshot's last entry.
      const { index, term } = snapshot.meta;
      const matches = this.entries.some((e) => e.index === index && e.term === term);
      this.entries = matches ? this.entries.filter((e) => e.index > index) : [];
    });
  }

  /** SnapshotStore's `save`. */
  get snapshots(): SnapshotStore {
    return { save: (s) => this.saveSnapshot(s) };
  }

  private afterFsync<T>(persist: () => T): Promise<T> {
    const inc = this.proc.incarnation;
    return new Promise<T>((resolve) => {
      if (!this.proc.isLive(inc)) return;
      this.proc.timers.after(this.opts.fsyncMs(), () => {
        const v = persist();
        if (this.proc.isLive(inc)) resolve(v);
      });
    });
  }
}
