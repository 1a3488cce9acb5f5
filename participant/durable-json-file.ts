/**
 * The file operations the participant's durable files need, as an injected
 * interface (`LogFs`): the process uses node:fs (`nodeLogFs`), the
 * deterministic simulation a simulated disk that loses what was not
 * synced, and tests a wrapper that watches every fsync. Nothing in
 * participant/ touches the file system except through it.
 *
 * And `DurableJsonFile`: an adapter for a SMALL JSON document that must
 * survive a power loss (the demo bank keeps its balances in one, the
 * inventory example its stock). It has lowdb's Adapter shape (read/write),
 * so `new Low(new DurableJsonFile(path), defaults)` works, but participant/
 * does not import lowdb, not even for the type (test/participant/log.test.ts
 * checks the fit). Why not lowdb's own JSONFile: it writes through steno,
 * which renames a temp file but never fsyncs, so a write survives a killed
 * process, not a power loss (docs/DECISIONS.md on lowdb). And never `JSONFilePreset`:
 * it silently swaps in memory when NODE_ENV === 'test'.
 *
 * Every write rewrites the whole document, so this suits documents of a few
 * kilobytes; the participant's log, which grows with traffic, is an
 * append-only file instead (log-file.ts).
 */
import * as fsp from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../lib/errors.js';

/**
 * Durability contract an implementation must keep (the log and DurableJsonFile rely
 * on exactly this, as on POSIX): written data survives a crash only once its
 * handle's `sync`/`datasync` resolved; a created, renamed or replaced
 * directory entry survives only once its directory was fsynced (`open(dir,
 * 'r')` then `sync`); a rename over an existing file is atomic.
 */
export interface LogFs {
  /** The whole file; rejects with an error whose `code` is 'ENOENT' when it does not exist. */
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  /** 'a' appends (the log), 'w' truncates (temp files), 'r' reads (directories, for fsync). */
  open(path: string, flags: 'a' | 'w' | 'r'): Promise<LogFileHandle>;
  /** Atomically replaces `to` with `from`. */
  rename(from: string, to: string): Promise<void>;
  /**
   * Creates `path` and missing parents. Resolves with the path of the first
   * directory it created, as node:fs does (the new directories are then
   * made durable by fsyncs of their parents); with anything else (undefined)
   * when none was created.
   */
  mkdir(path: string, opts: { recursive: true }): Promise<unknown>;
}

export interface LogFileHandle {
  writeFile(data: string, encoding: 'utf8'): Promise<void>;
  /** fsync: data and every metadata change. */
  sync(): Promise<void>;
  /** fdatasync: data and the metadata needed to read it back (the size), not times. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export const nodeLogFs: LogFs = {
  readFile: (path, encoding) => fsp.readFile(path, encoding),
  open: (path, flags) => fsp.open(path, flags),
  rename: (from, to) => fsp.rename(from, to),
  mkdir: (path, opts) => fsp.mkdir(path, opts),
};

/** Whether `e` is a file-not-found error (from node:fs or a simulated LogFs). */
export function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

export class ParticipantLogError extends AppError {
  constructor(
    override readonly code: 'log_corrupt' | 'log_failed' | 'log_full' | 'work_conflict' | 'tx_not_active' | 'invalid_tx_id',
    status: number,
    message: string,
    details: Readonly<Record<string, unknown>> = {},
    options?: { readonly cause?: unknown },
  ) {
    super(code, status, message, details, options);
    this.name = 'ParticipantLogError';
  }
}

/**
 * Replaces `path` with `text` durably: temp file, fsync, rename over the
 * file, fsync of the directory (the rename is durable only once the
 * directory entry is). A crash at any point leaves the old file or the new
 * one, never a mix; a leftover temp file is a write nobody was told about.
 */
export async function replaceFileDurably(fs: LogFs, path: string, text: string): Promise<void> {
  const tempPath = `${path}.tmp`;
  const file = await fs.open(tempPath, 'w');
  try {
    await file.writeFile(text, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(tempPath, path);
  await syncDirectory(fs, dirname(path));
}

/**
 * Creates `dir` (and missing parents) durably: each new directory's entry
 * is in its parent only once the parent is fsynced, or a crash could lose
 * the directory with every file later made durable in it.
 */
export async function makeDirectoryDurably(fs: LogFs, dir: string): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true });
  if (typeof first !== 'string') return; // it existed: nothing new to make durable
  // From the parent of the first new directory down to the parent of `dir`.
  const parents: string[] = [];
  for (let d = dirname(dir); ; d = dirname(d)) {
    parents.push(d);
    if (d === dirname(first) || d === dirname(d)) break;
  }
  for (const d of parents.reverse()) await syncDirectory(fs, d);
}

export async function syncDirectory(fs: LogFs, dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A JSON document (lowdb's Adapter shape) whose every write is durable
 * before it resolves (`replaceFileDurably`). Writes are serialized and grouped: a write
 * requested while another is in flight waits, and all writes that waited
 * share the next one, which carries the newest data. The data is serialized
 * when `write` is called (lowdb hands in the live object, which the caller
 * may go on changing), so a resolved write covers every change made before
 * it was requested, and nothing made after.
 */
export class DurableJsonFile<T> {
  private inFlight = false;
  private next: { text: string; waiters: { resolve: () => void; reject: (e: unknown) => void }[] } | undefined;

  constructor(
    readonly path: string,
    private readonly fs: LogFs = nodeLogFs,
  ) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await this.fs.readFile(this.path, 'utf8');
    } catch (e) {
      // A leftover temp file is a write that never completed (nobody was told it was durable): ignore it.
      if (isNotFound(e)) return null;
      throw e;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ParticipantLogError('log_corrupt', 500, `${this.path} is not valid JSON`, { path: this.path });
    }
  }

  write(data: T): Promise<void> {
    const text = JSON.stringify(data);
    return new Promise<void>((resolve, reject) => {
      if (this.next === undefined) this.next = { text, waiters: [] };
      this.next.text = text;
      this.next.waiters.push({ resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.next !== undefined) {
        const batch = this.next;
        this.next = undefined;
        try {
          await replaceFileDurably(this.fs, this.path, batch.text);
          for (const w of batch.waiters) w.resolve();
        } catch (e) {
          for (const w of batch.waiters) w.reject(e);
        }
      }
    } finally {
      this.inFlight = false;
    }
  }
}
