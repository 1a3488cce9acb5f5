/**
 * Garbage collection of finished transactions. A transaction is finished
 * when its decision is recorded and every frozen participant has written its
 * ack (it applied the decision durably and will never ask again). Then one
 * store txn, guarded by the exact record text, the decision and the absence
 * of a compacted record, deletes every key of the transaction and writes the
 * compacted `txdone/{id}` record, attached to a lease that expires after the
 * retention time, so GET still answers for that long.
 *
 * Retention leases are shared: one lease per rotation window (retention/8,
 * at least 1 s) with a TTL of retention plus the window, never kept alive. A
 * record therefore lives between `retentionMs` and `retentionMs` + window.
 *
 * Retention is also a budget in bytes (`retentionMaxBytes`): each window
 * counts the UTF-8 bytes (key and value) of the records this coordinator
 * attached to its lease, a window also rotates once it holds an eighth of
 * the budget, and when the windows still alive hold more than the budget,
 * the oldest window's lease is revoked, which deletes its records at once
 * (oldest first; a lease revoke is served even under the store's NOSPACE
 * alarm). The budget is per coordinator process: leases granted by an
 * earlier process of the same coordinator are not counted, and expire
 * within the retention time.
 */
import type { Clock } from '../../lib/clock.js';
import type { Random } from '../../lib/random.js';
import type { Timers } from '../../lib/timers.js';
import { doneKey, doneRecordOf, encodeDoneRecord, type DoneRecord } from '../protocol/index.js';
import { ackKey, decisionKey, encodeDecision, txKey, voteKey, type TxSnapshot } from '../protocol/index.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import { readTxSnapshot, TxStoreError, withStoreRetries, type TxLeaseId, type TxStore, type TxWrite } from '../txstore/index.js';

export type GcResult = { readonly collected: true; readonly record: DoneRecord } | { readonly collected: false; readonly reason: 'not_finished' | 'gone' | 'raced' };

/** A rotation window is this share of the retention time, and at least MIN_LEASE_WINDOW_MS. */
const LEASE_WINDOWS_PER_RETENTION = 8;
const MIN_LEASE_WINDOW_MS = 1_000;
/** Collection txns tried: a second one only after the retention lease vanished under the first. */
const COLLECT_ATTEMPTS = 2;

interface Window {
  readonly id: TxLeaseId;
  readonly grantedAtMs: number;
  bytes: number;
}

export class RetentionLeases {
  /** Windows oldest first; the last one is current while it is young and small enough. */
  private readonly windows: Window[] = [];
  private pending: Promise<TxLeaseId> | undefined;
  readonly windowMs: number;
  /** Bytes after which the current window rotates. */
  private readonly windowBytes: number;

  constructor(
    private readonly store: TxStore,
    private readonly retentionMs: number,
    private readonly clock: Clock,
    private readonly maxBytes: number = Number.MAX_SAFE_INTEGER,
  ) {
    this.windowMs = Math.max(MIN_LEASE_WINDOW_MS, Math.floor(retentionMs / LEASE_WINDOWS_PER_RETENTION));
    this.windowBytes = Math.max(1, Math.floor(maxBytes / LEASE_WINDOWS_PER_RETENTION));
  }

  /** Bytes of compacted records on the leases still alive (this process's). */
  get retainedBytes(): number {
    this.dropExpired();
    return this.windows.reduce((sum, w) => sum + w.bytes, 0);
  }

  async lease(): Promise<TxLeaseId> {
    const c = this.windows[this.windows.length - 1];
    if (c !== undefined && this.clock.monotonicMs() - c.grantedAtMs < this.windowMs && c.bytes < this.windowBytes) return c.id;
    this.pending ??= this.grant().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /**
   * Counts a record written on lease `id`, then revokes the oldest windows
   * while the total is over the budget (never the current one). Returns the
   * leases revoked.
   */
  async charge(id: TxLeaseId, bytes: number): Promise<number> {
    const w = this.windows.find((x) => x.id === id);
    if (w !== undefined) w.bytes += bytes;
    this.dropExpired();
    let revoked = 0;
    while (this.windows.length > 1 && this.retainedBytes > this.maxBytes) {
      const oldest = this.windows.shift() as Window;
      try {
        await this.store.revokeLease(oldest.id);
        revoked++;
      } catch {
        // Gone already, or the store is unreachable: it expires by its TTL anyway.
      }
    }
    return revoked;
  }

  /** The lease vanished early (store restored from an old snapshot, revoked by hand): take a new one. */
  forget(id: TxLeaseId): void {
    const i = this.windows.findIndex((w) => w.id === id);
    if (i >= 0) this.windows.splice(i, 1);
  }

  private dropExpired(): void {
    const now = this.clock.monotonicMs();
    while (this.windows.length > 0 && now - (this.windows[0] as Window).grantedAtMs > this.retentionMs + this.windowMs) this.windows.shift();
  }

  private async grant(): Promise<TxLeaseId> {
    const { id } = await this.store.grantLease(this.retentionMs + this.windowMs);
    this.windows.push({ id, grantedAtMs: this.clock.monotonicMs(), bytes: 0 });
    return id;
  }
}

export interface CollectorOptions {
  readonly store: TxStore;
  readonly retentionMs: number;
  /** Budget of this coordinator's compacted records, UTF-8 bytes of key and value; default: unbounded. */
  readonly retentionMaxBytes?: number;
  /** The collection time in compacted records, lease rotation, and the waits between retries. */
  readonly timers: Timers;
  readonly random: Random;
  readonly retry: BackoffPolicy;
}

export class Collector {
  private readonly leases: RetentionLeases | undefined;
  collected = 0;
  /** Retention leases revoked to keep within the byte budget. */
  budgetRevokes = 0;

  constructor(private readonly opts: CollectorOptions) {
    this.leases = opts.retentionMs > 0 ? new RetentionLeases(opts.store, opts.retentionMs, opts.timers, opts.retentionMaxBytes) : undefined;
  }

  /** Bytes of the compacted records this process keeps now (0 without retention). */
  get retainedBytes(): number {
    return this.leases?.retainedBytes ?? 0;
  }

  /** Reads the transaction afresh and collects it if it is finished. Safe to race: the txn is guarded. */
  async collect(id: string): Promise<GcResult> {
    const snapshot = await readTxSnapshot(this.opts.store, id);
    return this.collectSnapshot(snapshot);
  }

  async collectSnapshot(snapshot: TxSnapshot): Promise<GcResult> {
    if (snapshot.tx === null) return { collected: false, reason: 'gone' };
    const record = doneRecordOf(snapshot, this.opts.timers.nowMs());
    if (record === null || snapshot.decision === undefined) return { collected: false, reason: 'not_finished' };
    const id = snapshot.id;
    const guards = [
      { key: txKey(id), value: snapshot.tx.raw },
      { key: decisionKey(id), value: encodeDecision(snapshot.decision) },
      { key: doneKey(id), value: null },
    ];
    const deletes: TxWrite[] = [{ type: 'delete', key: txKey(id) }, { type: 'delete', key: decisionKey(id) }];
    for (const p of snapshot.votes.keys()) deletes.push({ type: 'delete', key: voteKey(id, p) });
    for (const p of snapshot.acks.keys()) deletes.push({ type: 'delete', key: ackKey(id, p) });
    for (let attempt = 0; attempt < COLLECT_ATTEMPTS; attempt++) {
      const lease = this.leases === undefined ? undefined : await this.leases.lease();
      const writes: TxWrite[] = [...deletes];
      const value = encodeDoneRecord(record);
      if (lease !== undefined) writes.push({ type: 'put', key: doneKey(id), value, lease });
      try {
        const r = await withStoreRetries(() => this.opts.store.txn(guards, writes), this.opts.retry, this.opts.random, this.opts.timers);
        if (!r.succeeded) return { collected: false, reason: 'raced' };
        this.collected++;
        if (lease !== undefined && this.leases !== undefined) this.budgetRevokes += await this.leases.charge(lease, Buffer.byteLength(doneKey(id)) + Buffer.byteLength(value));
        return { collected: true, record };
      } catch (e) {
        if (!(e instanceof TxStoreError && e.code === 'lease_not_found' && lease !== undefined)) throw e;
        this.leases?.forget(lease);
      }
    }
    throw new TxStoreError('lease_not_found', 503, 'no retention lease could be attached');
  }
}
