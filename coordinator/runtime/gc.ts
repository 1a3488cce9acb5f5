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

export class RetentionLeases {
  private current: { id: TxLeaseId; grantedAtMs: number } | undefined;
  private pending: Promise<TxLeaseId> | undefined;
  readonly windowMs: number;

  constructor(
    private readonly store: TxStore,
    private readonly retentionMs: number,
    private readonly clock: Clock,
  ) {
    this.windowMs = Math.max(MIN_LEASE_WINDOW_MS, Math.floor(retentionMs / LEASE_WINDOWS_PER_RETENTION));
  }

  async lease(): Promise<TxLeaseId> {
    const c = this.current;
    if (c !== undefined && this.clock.monotonicMs() - c.grantedAtMs < this.windowMs) return c.id;
    this.pending ??= this.grant().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** The lease vanished early (store restored from an old snapshot, revoked by hand): take a new one. */
  forget(id: TxLeaseId): void {
    if (this.current?.id === id) this.current = undefined;
  }

  private async grant(): Promise<TxLeaseId> {
    const { id } = await this.store.grantLease(this.retentionMs + this.windowMs);
    this.current = { id, grantedAtMs: this.clock.monotonicMs() };
    return id;
  }
}

export interface CollectorOptions {
  readonly store: TxStore;
  readonly retentionMs: number;
  /** The collection time in compacted records, lease rotation, and the waits between retries. */
  readonly timers: Timers;
  readonly random: Random;
  readonly retry: BackoffPolicy;
}

export class Collector {
  private readonly leases: RetentionLeases | undefined;
  collected = 0;

  constructor(private readonly opts: CollectorOptions) {
    this.leases = opts.retentionMs > 0 ? new RetentionLeases(opts.store, opts.retentionMs, opts.timers) : undefined;
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
      if (lease !== undefined) writes.push({ type: 'put', key: doneKey(id), value: encodeDoneRecord(record), lease });
      try {
        const r = await withStoreRetries(() => this.opts.store.txn(guards, writes), this.opts.retry, this.opts.random, this.opts.timers);
        if (!r.succeeded) return { collected: false, reason: 'raced' };
        this.collected++;
        return { collected: true, record };
      } catch (e) {
        if (!(e instanceof TxStoreError && e.code === 'lease_not_found' && lease !== undefined)) throw e;
        this.leases?.forget(lease);
      }
    }
    throw new TxStoreError('lease_not_found', 503, 'no retention lease could be attached');
  }
}
