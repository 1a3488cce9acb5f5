/**
 * The participant's local durable log: for each transaction, the work it
 * received, its vote (written here BEFORE the vote goes to the store), the
 * decision it applied, and when its ack reached the store. Recovery at start
 * reads it together with the store (see participant/machine.ts).
 *
 * Why lowdb: it is the named choice, and a participant's log is a
 * small JSON document (open transactions plus a retention window), read whole
 * at start and rewritten on change; lowdb is exactly that and nothing more.
 *
 * Two lowdb traps, avoided on purpose (shared/STYLE.md):
 * - `JSONFilePreset` silently swaps in a memory adapter when
 *   NODE_ENV === 'test' (Vitest sets it), so a persistence test would test
 *   nothing. We construct `new Low(adapter, defaults)` explicitly.
 * - lowdb's own JSONFile writes through steno, which renames a temp file but
 *   never fsyncs: the write survives a killed process, not a power loss. A
 *   participant promises that a "yes" in the store is backed by a durable
 *   prepare record, so `DurableJsonFile` writes a temp file, fsyncs it,
 *   renames it over the log, and fsyncs the directory before a write resolves.
 *
 * Cost: every write rewrites the whole file, so the log is kept small by
 * `compact` (acknowledged records past a retention time are dropped), and
 * concurrent writes are grouped into one fsync (group commit).
 */
import * as fsp from 'node:fs/promises';
import { dirname } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { assert } from '../lib/assert.js';
import { AppError } from '../lib/errors.js';
import { isValidTxId, type Decision, type JsonValue, type VoteValue } from '../coordinator/protocol.js';

// ---------------------------------------------------------------------------
// The durable file adapter

/** The file operations the adapter needs; injected so tests can watch the fsyncs. */
export interface LogFs {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  open(path: string, flags: 'w' | 'r'): Promise<LogFileHandle>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string, opts: { recursive: true }): Promise<unknown>;
}

export interface LogFileHandle {
  writeFile(data: string, encoding: 'utf8'): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export const nodeLogFs: LogFs = {
  readFile: (path, encoding) => fsp.readFile(path, encoding),
  open: (path, flags) => fsp.open(path, flags),
  rename: (from, to) => fsp.rename(from, to),
  mkdir: (path, opts) => fsp.mkdir(path, opts),
};

export class ParticipantLogError extends AppError {
  constructor(code: 'log_corrupt' | 'log_failed' | 'log_full' | 'work_conflict' | 'tx_not_active' | 'invalid_tx_id', status: number, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(code, status, message, details);
    this.name = 'ParticipantLogError';
  }
}

/**
 * A lowdb adapter that makes each write durable before it resolves:
 * temp file, fsync, rename, fsync of the directory. Writes are serialized
 * (one temp file) and grouped: a write requested while another is in flight
 * waits, and all writes that waited share the next one, which carries the
 * newest data. The data is serialized when `write` is called, so a resolved
 * write always covers every change made before it was requested.
 */
export class DurableJsonFile<T> implements Adapter<T> {
  private readonly tempPath: string;
  private inFlight = false;
  private next: { text: string; waiters: { resolve: () => void; reject: (e: unknown) => void }[] } | undefined;

  constructor(
    readonly path: string,
    private readonly fs: LogFs = nodeLogFs,
  ) {
    this.tempPath = `${path}.tmp`;
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await this.fs.readFile(this.path, 'utf8');
    } catch (e) {
      // A leftover temp file is a write that never completed (nobody was told it was durable): ignore it.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
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
    while (this.next !== undefined) {
      const batch = this.next;
      this.next = undefined;
      this.inFlight = true;
      try {
        await this.writeDurably(batch.text);
        for (const w of batch.waiters) w.resolve();
      } catch (e) {
        for (const w of batch.waiters) w.reject(e);
      } finally {
        this.inFlight = false;
      }
    }
  }

  private async writeDurably(text: string): Promise<void> {
    const file = await this.fs.open(this.tempPath, 'w');
    try {
      await file.writeFile(text, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await this.fs.rename(this.tempPath, this.path);
    // The rename is durable only once the directory entry is.
    const dir = await this.fs.open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

// ---------------------------------------------------------------------------
// The log

export interface LoggedVote {
  readonly vote: VoteValue;
  readonly reason?: string;
  /** Epoch ms. */
  readonly at: number;
}

export interface LogRecord {
  readonly txId: string;
  /** The work received; null when the participant never got any (it then votes "no"). */
  readonly work: JsonValue | null;
  /** Epoch ms of the first record. */
  readonly receivedAt: number;
  readonly vote?: LoggedVote;
  readonly applied?: { readonly decision: Decision; readonly at: number };
  /** Epoch ms when the ack was confirmed in the store. */
  readonly ackedAt?: number;
}

export interface LogData {
  readonly version: 1;
  readonly participant: string;
  readonly txs: Record<string, LogRecord>;
}

export interface ParticipantLogOptions {
  readonly path: string;
  readonly participant: string;
  /** Most records kept; new work past it is refused with `log_full`. */
  readonly maxRecords?: number;
  readonly fs?: LogFs;
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function validateData(data: unknown, path: string, participant: string): LogData {
  const bad = (why: string): never => {
    throw new ParticipantLogError('log_corrupt', 500, `${path}: ${why}`, { path });
  };
  if (typeof data !== 'object' || data === null) return bad('not an object');
  const d = data as Record<string, unknown>;
  if (d['version'] !== 1) bad(`unknown version ${String(d['version'])}`);
  if (d['participant'] !== participant) bad(`belongs to participant ${String(d['participant'])}, not ${participant}`);
  const txs = d['txs'];
  if (typeof txs !== 'object' || txs === null || Array.isArray(txs)) return bad('txs is not an object');
  for (const [id, r] of Object.entries(txs as Record<string, unknown>)) {
    const rec = r as Record<string, unknown> | null;
    if (!isValidTxId(id) || typeof rec !== 'object' || rec === null || rec['txId'] !== id || typeof rec['receivedAt'] !== 'number') bad(`bad record ${id}`);
    const vote = rec?.['vote'] as Record<string, unknown> | undefined;
    if (vote !== undefined && vote['vote'] !== 'yes' && vote['vote'] !== 'no') bad(`bad vote in ${id}`);
    const applied = rec?.['applied'] as Record<string, unknown> | undefined;
    if (applied !== undefined && applied['decision'] !== 'commit' && applied['decision'] !== 'abort') bad(`bad decision in ${id}`);
  }
  return data as LogData;
}

/**
 * Every mutation resolves only after it is durable. Records are replaced,
 * never mutated, so a record handed out stays a true picture of the moment.
 * Invariants (a failure is a programmer error and throws AssertionError):
 * a vote, once logged, never changes; a decision, once applied, never
 * changes; a commit is applied only over a logged "yes".
 *
 * Fail-stop: after a failed write, memory may be ahead of the disk, and a
 * retry could find a vote "already logged" that never reached it. So one
 * failed write fails the log for good (`log_failed`); the process must
 * restart and recover from what is on disk (the same stance PostgreSQL took
 * on fsync errors).
 */
export class ParticipantLog {
  private constructor(
    private readonly db: Low<LogData>,
    readonly path: string,
    readonly participant: string,
    private readonly maxRecords: number,
  ) {}

  private failure: unknown;

  static async open(opts: ParticipantLogOptions): Promise<ParticipantLog> {
    const fs = opts.fs ?? nodeLogFs;
    await fs.mkdir(dirname(opts.path), { recursive: true });
    // Explicit `new Low(adapter, defaults)`, never JSONFilePreset: see the header.
    const db = new Low<LogData>(new DurableJsonFile<LogData>(opts.path, fs), { version: 1, participant: opts.participant, txs: {} });
    await db.read();
    db.data = validateData(db.data, opts.path, opts.participant);
    return new ParticipantLog(db, opts.path, opts.participant, opts.maxRecords ?? 100_000);
  }

  get(txId: string): LogRecord | undefined {
    this.checkHealthy();
    const txs = this.db.data.txs;
    return hasOwn(txs, txId) ? txs[txId] : undefined;
  }

  /** Every record, oldest first. */
  list(): LogRecord[] {
    this.checkHealthy();
    return Object.values(this.db.data.txs).sort((a, b) => a.receivedAt - b.receivedAt || (a.txId < b.txId ? -1 : 1));
  }

  /** Records not yet acknowledged in the store: what recovery must look at. */
  unfinished(): LogRecord[] {
    return this.list().filter((r) => r.ackedAt === undefined);
  }

  get size(): number {
    return Object.keys(this.db.data.txs).length;
  }

  /** Idempotent for the same work; refused once a vote exists or for different work. */
  async recordWork(txId: string, work: JsonValue, nowMs: number): Promise<LogRecord> {
    const old = this.get(txId);
    if (old !== undefined) {
      if (old.vote !== undefined || old.applied !== undefined) throw new ParticipantLogError('tx_not_active', 409, `transaction ${txId} is already prepared or decided`);
      if (JSON.stringify(old.work) !== JSON.stringify(work)) throw new ParticipantLogError('work_conflict', 409, `transaction ${txId} already has different work`);
      return old;
    }
    return this.save(this.fresh(txId, work, nowMs));
  }

  /** Logs the vote before it is sent. Creates the record if there was no work (a "no" for an unknown transaction). */
  async recordVote(txId: string, vote: VoteValue, reason: string | undefined, nowMs: number): Promise<LogRecord> {
    const old = this.get(txId) ?? this.fresh(txId, null, nowMs);
    if (old.vote !== undefined) {
      assert(old.vote.vote === vote, `tx ${txId}: logged vote ${old.vote.vote} cannot become ${vote}`);
      return old;
    }
    assert(vote === 'no' || old.work !== null, `tx ${txId}: a yes vote needs work`);
    const logged: LoggedVote = reason === undefined ? { vote, at: nowMs } : { vote, reason, at: nowMs };
    return this.save({ ...old, vote: logged });
  }

  async recordApplied(txId: string, decision: Decision, nowMs: number): Promise<LogRecord> {
    const old = this.get(txId) ?? this.fresh(txId, null, nowMs);
    if (old.applied !== undefined) {
      assert(old.applied.decision === decision, `tx ${txId}: applied ${old.applied.decision} cannot become ${decision}`);
      return old;
    }
    assert(decision === 'abort' || old.vote?.vote === 'yes', `tx ${txId}: commit applied without a logged yes`);
    return this.save({ ...old, applied: { decision, at: nowMs } });
  }

  async recordAcked(txId: string, nowMs: number): Promise<LogRecord> {
    const old = this.get(txId);
    assert(old?.applied !== undefined, `tx ${txId}: ack recorded before the decision was applied`);
    if (old.ackedAt !== undefined) return old;
    return this.save({ ...old, ackedAt: nowMs });
  }

  /** Drops acknowledged records acked at or before `nowMs - retentionMs`; returns how many. */
  async compact(nowMs: number, retentionMs: number): Promise<number> {
    this.checkHealthy();
    const txs = this.db.data.txs;
    const drop = Object.values(txs).filter((r) => r.ackedAt !== undefined && r.ackedAt <= nowMs - retentionMs);
    if (drop.length === 0) return 0;
    for (const r of drop) delete txs[r.txId];
    await this.write();
    return drop.length;
  }

  private fresh(txId: string, work: JsonValue | null, nowMs: number): LogRecord {
    if (!isValidTxId(txId)) throw new ParticipantLogError('invalid_tx_id', 400, `invalid transaction id ${JSON.stringify(txId).slice(0, 200)}`);
    if (this.size >= this.maxRecords) throw new ParticipantLogError('log_full', 503, `the participant log holds ${this.maxRecords} records`, { maxRecords: this.maxRecords });
    return { txId, work, receivedAt: nowMs };
  }

  private async save(record: LogRecord): Promise<LogRecord> {
    this.db.data.txs[record.txId] = record;
    await this.write();
    return record;
  }

  private async write(): Promise<void> {
    this.checkHealthy();
    try {
      await this.db.write();
    } catch (e) {
      this.failure ??= e;
      throw new ParticipantLogError('log_failed', 503, `writing ${this.path} failed; restart to recover from disk: ${String(e)}`, { path: this.path });
    }
  }

  private checkHealthy(): void {
    if (this.failure !== undefined) {
      throw new ParticipantLogError('log_failed', 503, `an earlier write of ${this.path} failed; restart to recover from disk`, { path: this.path });
    }
  }
}
