/**
 * The participant log's file: an append-only sequence of checksummed JSON
 * lines, written with group commit, and rewritten whole only to drop what is
 * no longer needed.
 *
 * Line format: `<crc32 of the JSON, 8 hex digits> <JSON>\n`. The first line
 * is the log's header; each later line is a payload the caller gives.
 *
 * Durability: `append` resolves only after the line is written and the file
 * fdatasynced (data and size); appends requested while a write is in flight
 * are written together by the next one and share its fdatasync (group
 * commit: N concurrent changes cost one write and one sync, and every waiter
 * is released only after that sync). `rewrite` replaces the file with a
 * snapshot the caller builds when the rewrite starts: temp file, fsync,
 * rename, fsync of the directory; appends waiting at that moment are part of
 * the snapshot and resolve with it.
 *
 * Recovery (`load`): every line must carry a matching checksum. A damaged or
 * unterminated LAST line is a write that never completed (its fdatasync did
 * not return, so nobody acted on it) and is dropped; damage anywhere else is
 * `log_corrupt` and stops the participant, as the store's WAL does.
 *
 * Fail-stop: after a failed write the file's tail is unknown, so every later
 * call fails too; the process restarts and recovers from what is on disk.
 */
import { crc32 } from 'node:zlib';
import { dirname } from 'node:path';
import { isNotFound, makeDirectoryDurably, nodeLogFs, ParticipantLogError, replaceFileDurably, type LogFileHandle, type LogFs } from './durable-json-file.js';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export function encodeLine(payload: string): string {
  return `${crc32(payload).toString(16).padStart(8, '0')} ${payload}\n`;
}

/** The payload of a line, or undefined when its checksum does not match. */
export function decodeLine(line: string): string | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const payload = line.slice(9);
  const sum = Number.parseInt(line.slice(0, 8), 16);
  return Number.isNaN(sum) || crc32(payload) !== sum ? undefined : payload;
}

export interface LoadedLines {
  /** The payloads in file order, header first; empty when the file does not exist. */
  readonly payloads: string[];
  /** A damaged or unterminated last line was dropped (the caller rewrites the file before appending). */
  readonly tornTail: boolean;
  /** The raw text, when it is not in this format (an older log, to be migrated by the caller). */
  readonly foreign?: string;
  readonly bytes: number;
}

export class LogFile {
  private handle: LogFileHandle | undefined;
  private pendingText = '';
  private waiters: Waiter[] = [];
  /** Builds the payloads of a full rewrite (header first); set while a rewrite is wanted. */
  private rewriteWith: (() => readonly string[]) | undefined;
  private flushing = false;
  private closed = false;
  private failure: unknown;
  /** Bytes in the file, including what was appended since the last rewrite. */
  bytes = 0;

  private constructor(
    readonly path: string,
    private readonly fs: LogFs,
  ) {}

  /** Reads and checks the file at `path`. */
  static async load(path: string, fs: LogFs = nodeLogFs): Promise<LoadedLines> {
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (e) {
      // A leftover temp file is a rewrite that never completed (nobody was told it was durable): ignore it.
      if (isNotFound(e)) return { payloads: [], tornTail: false, bytes: 0 };
      throw e;
    }
    if (text.startsWith('{')) return { payloads: [], tornTail: false, foreign: text, bytes: text.length };
    const lines = text.split('\n');
    const last = lines.pop(); // '' when the file ends with a newline, else an unterminated line
    let tornTail = last !== '';
    const payloads: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const payload = decodeLine(lines[i] as string);
      if (payload !== undefined) {
        payloads.push(payload);
        continue;
      }
      if (i === lines.length - 1 && payloads.length > 0) {
        tornTail = true;
        continue;
      }
      throw new ParticipantLogError('log_corrupt', 500, `${path}: line ${i + 1} is damaged (checksum mismatch)`, { path, line: i + 1 });
    }
    if (payloads.length === 0) throw new ParticipantLogError('log_corrupt', 500, `${path}: no header line`, { path });
    return { payloads, tornTail, bytes: Buffer.byteLength(text) };
  }

  /**
   * Opens the file for appending (the handle itself is opened by the first
   * append, so an instance that only reads holds no descriptor). With
   * `initial`, first replaces the file durably with those payloads, header
   * first: a new log, a migration, a torn tail to cut off. Without, the file
   * is fsynced once, so that lines a killed predecessor left in the page
   * cache are on disk before anyone acts on them. Every file operation goes
   * through `fs` (durable-json-file.ts states what it must guarantee).
   */
  static async open(path: string, fs: LogFs, bytes: number, initial?: readonly string[]): Promise<LogFile> {
    await makeDirectoryDurably(fs, dirname(path));
    const file = new LogFile(path, fs);
    if (initial !== undefined) {
      await file.replace(initial);
    } else {
      const h = await fs.open(path, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
      file.bytes = bytes;
    }
    return file;
  }

  /** Appends one payload; resolves once it is durable. */
  append(payload: string): Promise<void> {
    return this.enqueue(() => {
      this.pendingText += encodeLine(payload);
    });
  }

  /** Replaces the file with `build()`'s payloads, built when the rewrite starts; resolves once durable. */
  rewrite(build: () => readonly string[]): Promise<void> {
    return this.enqueue(() => {
      this.rewriteWith = build;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }

  private enqueue(add: () => void): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      add();
      this.waiters.push({ resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.waiters.length > 0) {
        const batch = this.waiters;
        this.waiters = [];
        const build = this.rewriteWith;
        this.rewriteWith = undefined;
        const text = this.pendingText;
        this.pendingText = '';
        try {
          // A rewrite's snapshot holds every change made so far, the pending appends' included.
          if (build !== undefined) await this.replace(build());
          else await this.appendDurably(text);
        } catch (e) {
          this.failure = e;
          for (const w of [...batch, ...this.waiters]) w.reject(e);
          this.waiters = [];
          return;
        }
        for (const w of batch) w.resolve();
      }
    } finally {
      this.flushing = false;
    }
  }

  private async appendDurably(text: string): Promise<void> {
    if (this.closed) throw new Error(`${this.path} is closed`);
    this.handle ??= await this.fs.open(this.path, 'a');
    const h = this.handle;
    await h.writeFile(text, 'utf8');
    await h.datasync();
    this.bytes += Buffer.byteLength(text);
  }

  private async replace(payloads: readonly string[]): Promise<void> {
    const text = payloads.map(encodeLine).join('');
    await replaceFileDurably(this.fs, this.path, text);
    // The old handle points at the replaced file: the next append opens the new one.
    const old = this.handle;
    this.handle = undefined;
    await old?.close();
    this.bytes = Buffer.byteLength(text);
  }
}
