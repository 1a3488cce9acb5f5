/**
 * `SimDisk`, the participant log's `LogFs`, with the failure model of a real
 * disk under a power cut (docs/SIM2PC.md, "The disk"). It outlives its
 * process; a call made by a dead incarnation does nothing and never resolves.
 */
import type { LogFileHandle, LogFs } from '../../participant/log.js';
import type { Proc, World } from './world.js';

interface SimFile {
  /** What a read sees now (the page cache). */
  data: string;
  /** What survives a crash. */
  synced: string;
}

/** Simulated ms a lying fsync's data takes to become durable after it answered. */
const lyingFsyncDelayMs = 30;

export class SimDisk implements LogFs {
  private names = new Map<string, SimFile>();
  private durableNames = new Map<string, SimFile>();

  constructor(
    private readonly proc: Proc,
    private readonly world: World,
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
      const ms = 1 + this.world.random.int(this.world.knobs.maxFsyncMs);
      // The mutation `fsync-lies`: the fsync answers at once and the data becomes durable only later.
      if (this.world.mutation === 'fsync-lies') {
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
