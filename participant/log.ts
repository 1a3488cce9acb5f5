/**
 * The participant's local durable log: for each transaction, the work it
 * received, its vote (written here BEFORE the vote goes to the store), the
 * decision it applied, and when its ack reached the store. Recovery at start
 * reads it together with the store (see participant/machine.ts).
 *
 * On disk it is an append-only file of checksummed JSON lines (log-file.ts):
 * each change appends the transaction's new record, and a write resolves
 * only after the file is fdatasynced; concurrent changes share one write and
 * one sync (group commit). The newest line of a transaction wins on reading.
 * The file is rewritten whole (temp file, fsync, rename, fsync of the
 * directory) only to drop what is no longer needed: acknowledged records
 * past the retention time (`compact`), and superseded lines once the file
 * is more than twice the live records.
 *
 * Why not the lowdb document this log used to be: every change rewrote the
 * whole file (temp file, two fsyncs, rename), and serialized it, so a
 * change cost time in proportion to everything retained. Measured
 * (docs/BENCHMARKS.md, bench:2pc): about 270 transactions per second with an
 * empty log and 60 with 5,000 retained records, at which point the log
 * alone capped a participant. A log of the old format is migrated when
 * opened. lowdb stays for small documents (`DurableJsonFile`).
 *
 * Bounds: at most `maxRecords` records. When full, the oldest acknowledged
 * records whose transactions the store has collected (as the last
 * compaction saw it) are dropped first, as they are kept only for the
 * operator's view; with none of those left the log refuses new work
 * (`log_full`).
 * Acknowledged records also have a budget in bytes (`maxRetainedBytes`):
 * compaction drops the oldest of them past it, as it drops those past the
 * retention time, so memory and the cost of a rewrite do not grow with the
 * transaction rate.
 */
import { assert } from '../lib/assert.js';
import { isValidTxId, type Decision, type JsonValue, type VoteValue } from '../coordinator/protocol/index.js';
import { DEFAULT_PARTICIPANT_CONFIG } from './config.js';
import { nodeLogFs, ParticipantLogError, type LogFs } from './durable-json-file.js';
import { LogFile } from './log-file.js';

export { DurableJsonFile, isNotFound, nodeLogFs, ParticipantLogError, type LogFileHandle, type LogFs } from './durable-json-file.js';

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

/** The first line of the file. */
export interface LogHeader {
  readonly version: 2;
  readonly participant: string;
}

export interface ParticipantLogOptions {
  readonly path: string;
  readonly participant: string;
  /** Most records kept; past it the oldest acknowledged ones the store has collected go, and new work is refused if there are none. Default: the participant config's `logMaxRecords`. */
  readonly maxRecords?: number;
  /**
   * The file is rewritten without superseded lines once it is larger than
   * twice the live records plus this many bytes (default: the participant
   * config's `logRewriteFloorBytes`, 1 MiB), so a small log is not
   * rewritten over and over.
   */
  readonly rewriteFloorBytes?: number;
  /** Most bytes of acknowledged records' lines kept for the operator's view; compaction drops the oldest past it. Default: the config's `logMaxRetainedBytes`. */
  readonly maxRetainedBytes?: number;
  /** Every file operation of the log. Default `nodeLogFs`. */
  readonly fs?: LogFs;
}

/** Rewrite once the file holds this many times the live records' bytes, plus the floor. */
const REWRITE_GROWTH_FACTOR = 2;
/** Share of `maxRecords` dropped at once when the log is full, so a full log does not scan on every new record. */
const EVICT_SHARE = 0.01;
/** A log this full is compacted even within its retention and budget, so that a full log has records it may evict. */
const NEARLY_FULL_SHARE = 0.9;

function corrupt(path: string, why: string): never {
  throw new ParticipantLogError('log_corrupt', 500, `${path}: ${why}`, { path });
}

function validateRecord(value: unknown, path: string): LogRecord {
  const rec = value as Record<string, unknown> | null;
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return corrupt(path, 'a record is not an object');
  const id = rec['txId'];
  if (typeof id !== 'string' || !isValidTxId(id) || typeof rec['receivedAt'] !== 'number') return corrupt(path, `bad record ${String(id)}`);
  const vote = rec['vote'] as Record<string, unknown> | undefined;
  if (vote !== undefined && vote['vote'] !== 'yes' && vote['vote'] !== 'no') corrupt(path, `bad vote in ${id}`);
  const applied = rec['applied'] as Record<string, unknown> | undefined;
  if (applied !== undefined && applied['decision'] !== 'commit' && applied['decision'] !== 'abort') corrupt(path, `bad decision in ${id}`);
  return rec as unknown as LogRecord;
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return corrupt(path, 'not valid JSON');
  }
}

/** Records of a version 1 log (one JSON document, written by lowdb), to migrate. */
function recordsOfV1(text: string, path: string, participant: string): LogRecord[] {
  const d = parseJson(text, path) as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null) return corrupt(path, 'not an object');
  if (d['version'] !== 1) corrupt(path, `unknown version ${String(d['version'])}`);
  if (d['participant'] !== participant) corrupt(path, `belongs to participant ${String(d['participant'])}, not ${participant}`);
  const txs = d['txs'];
  if (typeof txs !== 'object' || txs === null || Array.isArray(txs)) return corrupt(path, 'txs is not an object');
  return Object.entries(txs as Record<string, unknown>).map(([id, r]) => {
    const rec = validateRecord(r, path);
    if (rec.txId !== id) corrupt(path, `bad record ${id}`);
    return rec;
  });
}

interface Entry {
  readonly record: LogRecord;
  /** The record's JSON as last appended: a rewrite reuses it instead of serializing again. */
  readonly payload: string;
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
  /** Insertion order is first-logged order, which `list` and eviction rely on. */
  private readonly entries = new Map<string, Entry>();
  /** Bytes of the live records' lines, to decide when superseded lines are worth a rewrite. */
  private liveBytes = 0;
  /** The part of `liveBytes` that acknowledged records hold (kept only for the operator's view). */
  private ackedBytes = 0;
  /** Acknowledged records that the last compaction's `canDrop` let go but kept (retention, budget): what a full log may evict. */
  private readonly collectable = new Set<string>();
  private rewriting = false;
  /** The first failed write, as the `log_failed` error every later call gets. */
  private failure: ParticipantLogError | undefined;
  private readonly failureListeners: ((e: ParticipantLogError) => void)[] = [];

  private constructor(
    private readonly file: LogFile,
    readonly path: string,
    readonly participant: string,
    private readonly maxRecords: number,
    private readonly rewriteFloorBytes: number,
    private readonly maxRetainedBytes: number,
  ) {}

  static async open(opts: ParticipantLogOptions): Promise<ParticipantLog> {
    const fs = opts.fs ?? nodeLogFs;
    const loaded = await LogFile.load(opts.path, fs);
    let records: LogRecord[] = [];
    // Rewritten at once: a new log (created durably, header first), an old format, a torn tail.
    let rewrite = true;
    if (loaded.foreign !== undefined) {
      records = recordsOfV1(loaded.foreign, opts.path, opts.participant);
    } else if (loaded.payloads.length > 0) {
      rewrite = loaded.tornTail;
      const [headerText, ...lines] = loaded.payloads;
      const header = parseJson(headerText as string, opts.path) as Partial<LogHeader> | null;
      if (header?.version !== 2) corrupt(opts.path, `unknown version ${String(header?.version)}`);
      if (header.participant !== opts.participant) corrupt(opts.path, `belongs to participant ${String(header.participant)}, not ${opts.participant}`);
      records = lines.map((l) => validateRecord(parseJson(l, opts.path), opts.path));
    }
    const entries = new Map<string, Entry>();
    for (const record of records) {
      // The newest line of a transaction wins; its first position keeps the order.
      entries.set(record.txId, { record, payload: JSON.stringify(record) });
    }
    const payloads = rewrite ? [JSON.stringify({ version: 2, participant: opts.participant } satisfies LogHeader), ...[...entries.values()].map((e) => e.payload)] : undefined;
    const file = await LogFile.open(opts.path, fs, loaded.bytes, payloads);
    const d = DEFAULT_PARTICIPANT_CONFIG;
    const log = new ParticipantLog(file, opts.path, opts.participant, opts.maxRecords ?? d.logMaxRecords, opts.rewriteFloorBytes ?? d.logRewriteFloorBytes, opts.maxRetainedBytes ?? d.logMaxRetainedBytes);
    for (const [id, e] of entries) log.setEntry(id, e);
    return log;
  }

  get(txId: string): LogRecord | undefined {
    this.checkHealthy();
    return this.entries.get(txId)?.record;
  }

  /** Every record, oldest first. */
  list(): LogRecord[] {
    this.checkHealthy();
    return [...this.entries.values()].map((e) => e.record).sort((a, b) => a.receivedAt - b.receivedAt || (a.txId < b.txId ? -1 : 1));
  }

  /** Records not yet acknowledged in the store: what recovery must look at. */
  unfinished(): LogRecord[] {
    return this.list().filter((r) => r.ackedAt === undefined);
  }

  /** Bytes of the log file (live and superseded lines; a rewrite keeps it within twice the live ones plus the floor). */
  get fileBytes(): number {
    return this.file.bytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes of the records' lines held in memory (every live record), and the acknowledged ones' share. */
  get memoryBytes(): { readonly live: number; readonly acknowledged: number } {
    return { live: this.liveBytes, acknowledged: this.ackedBytes };
  }

  /**
   * Whether `compact` has work: acknowledged records past the retention, or
   * past the byte budget; or a log nearly full with acknowledged records no
   * pass has yet seen collected (only those may be evicted when it is full).
   */
  compactionDue(nowMs: number, retentionMs: number): boolean {
    if (this.ackedBytes > this.maxRetainedBytes) return true;
    const nearlyFull = this.entries.size >= this.maxRecords * NEARLY_FULL_SHARE;
    for (const [id, e] of this.entries) {
      if (e.record.ackedAt === undefined) continue;
      if (e.record.ackedAt <= nowMs - retentionMs || (nearlyFull && !this.collectable.has(id))) return true;
    }
    return false;
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

  /**
   * Drops acknowledged records that `canDrop` lets go: those acked at or
   * before `nowMs - retentionMs`, then the oldest until the acknowledged ones
   * fit `maxRetainedBytes`; rewrites the file without them; returns how many.
   * The acknowledged records `canDrop` lets go but that stay become what a
   * full log may evict.
   */
  async compact(nowMs: number, retentionMs: number, canDrop: (txId: string) => boolean = () => true): Promise<number> {
    this.checkHealthy();
    let dropped = 0;
    for (const [id, e] of this.entries) {
      if (e.record.ackedAt === undefined || !canDrop(id)) continue;
      const expired = e.record.ackedAt <= nowMs - retentionMs;
      if (expired || this.ackedBytes > this.maxRetainedBytes) {
        this.deleteEntry(id, e);
        dropped++;
      } else this.collectable.add(id);
    }
    if (dropped > 0) await this.rewrite();
    return dropped;
  }

  /**
   * Calls `listener` once with the first failed write (at once if one
   * already failed), including a background rewrite nobody awaits: the owner
   * must stop at once, not at its next write.
   */
  onFailure(listener: (e: ParticipantLogError) => void): void {
    if (this.failure !== undefined) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /** Closes the file; later writes fail. Call after every write in flight settled. */
  async close(): Promise<void> {
    await this.file.close();
  }

  private fresh(txId: string, work: JsonValue | null, nowMs: number): LogRecord {
    if (!isValidTxId(txId)) throw new ParticipantLogError('invalid_tx_id', 400, `invalid transaction id ${JSON.stringify(txId).slice(0, 200)}`);
    if (this.size >= this.maxRecords) this.evictAcknowledged();
    if (this.size >= this.maxRecords) throw new ParticipantLogError('log_full', 503, `the participant log holds ${this.maxRecords} records and none is both acknowledged and collected from the store`, { maxRecords: this.maxRecords });
    return { txId, work, receivedAt: nowMs };
  }

  /**
   * Full: drop the oldest acknowledged records that the last compaction
   * found collected in the store (kept only for the operator's view; nothing
   * recovers from them). Not the others: while `tx/{id}` lives, a watch
   * resync may show the transaction again, and without its record it would
   * look like a new prepare (compaction.ts). Memory only: the dropped lines
   * leave the file at the next rewrite, and reappearing after a restart they
   * are still acknowledged, so recovery ignores them.
   */
  private evictAcknowledged(): void {
    let want = Math.max(1, Math.floor(this.maxRecords * EVICT_SHARE));
    for (const id of this.collectable) {
      if (want === 0) break;
      const e = this.entries.get(id);
      if (e !== undefined) this.deleteEntry(id, e);
      want--;
    }
  }

  private async save(record: LogRecord): Promise<LogRecord> {
    this.checkHealthy();
    const payload = JSON.stringify(record);
    const old = this.entries.get(record.txId);
    if (old !== undefined) this.deleteEntry(record.txId, old, true);
    this.setEntry(record.txId, { record, payload });
    await this.durably(this.file.append(payload));
    if (!this.rewriting && this.file.bytes > REWRITE_GROWTH_FACTOR * this.liveBytes + this.rewriteFloorBytes) void this.rewrite().catch(() => undefined); // a failure already failed the log
    return record;
  }

  private async rewrite(): Promise<void> {
    this.rewriting = true;
    try {
      await this.durably(this.file.rewrite(() => [JSON.stringify({ version: 2, participant: this.participant } satisfies LogHeader), ...[...this.entries.values()].map((e) => e.payload)]));
    } finally {
      this.rewriting = false;
    }
  }

  private setEntry(id: string, e: Entry): void {
    this.entries.set(id, e);
    this.liveBytes += e.payload.length + 10;
    if (e.record.ackedAt !== undefined) this.ackedBytes += e.payload.length + 10;
  }

  /** `keepPosition`: the record is being replaced, so its place in the order stays. */
  private deleteEntry(id: string, e: Entry, keepPosition = false): void {
    if (!keepPosition) {
      this.entries.delete(id);
      this.collectable.delete(id);
    }
    this.liveBytes -= e.payload.length + 10;
    if (e.record.ackedAt !== undefined) this.ackedBytes -= e.payload.length + 10;
  }

  private async durably(write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (e) {
      const error = new ParticipantLogError('log_failed', 503, `writing ${this.path} failed; restart to recover from disk: ${String(e)}`, { path: this.path }, { cause: e });
      if (this.failure === undefined) {
        this.failure = error;
        for (const listener of this.failureListeners.splice(0)) listener(error);
      }
      throw error;
    }
  }

  private checkHealthy(): void {
    if (this.failure !== undefined) {
      throw new ParticipantLogError('log_failed', 503, `an earlier write of ${this.path} failed; restart to recover from disk`, { path: this.path }, { cause: this.failure });
    }
  }
}
