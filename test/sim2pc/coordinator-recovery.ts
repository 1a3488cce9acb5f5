/**
 * A coordinator's recovery loop, coordinator/runtime/recovery.ts in callback form:
 * at jittered intervals (50%..150% of the mean, so coordinators do not scan
 * in lockstep) scan `tx/` and finish what nobody is finishing:
 *
 * - past the deadline, decided or not: adopt it (the machine freezes,
 *   fills missing votes with "no", records the decision, tells participants);
 * - decided and acknowledged by every participant: collect it;
 * - keys without a `tx/{id}` record seen so in two passes in a row: delete
 *   them, guarded by the record's absence.
 */
import type { Random } from '../../lib/random.js';
import { doneRecordOf } from '../../coordinator/protocol/compacted.js';
import { decide, ProtocolError, snapshotFromKvs, txKey, type TxSnapshot } from '../../coordinator/protocol/kernel.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import type { KeyValue } from '../../store/kv/index.js';
import type { SimStore } from './store-client.js';
import { collect, scanTransactions } from './txstore-ops.js';
import type { Proc } from './world.js';

/** Orphan ids remembered between passes. */
const maxOrphansRemembered = 10_000;

export class RecoveryLoop {
  private readonly orphans = new Set<string>();

  constructor(
    private readonly proc: Proc,
    private readonly store: SimStore,
    private readonly random: Random,
    private readonly timing: { readonly recoveryIntervalMs: number; readonly storeRetry: BackoffPolicy },
    private readonly isLive: (id: string) => boolean,
    private readonly adopt: (id: string) => void,
  ) {}

  start(): void {
    this.proc.after(this.timing.recoveryIntervalMs * (0.5 + this.random.float()), () => this.pass(() => this.start()));
  }

  private pass(done: () => void): void {
    this.proc.count('recovery passes');
    scanTransactions(this.store, (o) => {
      if (!o.ok) return done();
      const nowMs = this.proc.nowMs;
      const toCollect: TxSnapshot[] = [];
      const orphans: [string, readonly KeyValue[]][] = [];
      for (const [id, kvs] of o.value.groups) {
        if (this.isLive(id)) continue;
        let snap: TxSnapshot;
        try {
          snap = snapshotFromKvs(id, kvs, o.value.revision);
        } catch (e) {
          if (e instanceof ProtocolError) continue; // corrupt: left alone, loudly, by the real loop
          throw e;
        }
        const tx = snap.tx;
        if (tx === null) {
          orphans.push([id, kvs]);
          continue;
        }
        if (doneRecordOf(snap, nowMs) !== null) {
          toCollect.push(snap);
          continue;
        }
        if (nowMs < tx.record.deadline) continue;
        const frozen = tx.record.state === 'preparing' ? tx.record.participants.map((p) => p.name) : null;
        const verdict = snap.decision ?? (frozen === null ? 'pending' : decide(frozen, snap.votes));
        if (verdict === 'pending') this.proc.count('recovery found in doubt');
        this.adopt(id);
      }
      this.collectAll(toCollect, 0, () => this.cleanOrphans(orphans, 0, done));
    });
  }

  private collectAll(snaps: readonly TxSnapshot[], i: number, done: () => void): void {
    const snap = snaps[i];
    if (snap === undefined) return done();
    collect(this.proc, this.store, this.random, this.timing.storeRetry, snap, this.proc.nowMs, (r) => {
      if (r.ok && r.value === 'collected') this.proc.count('transactions collected by recovery');
      this.collectAll(snaps, i + 1, done);
    });
  }

  private cleanOrphans(found: readonly [string, readonly KeyValue[]][], i: number, done: () => void): void {
    const item = found[i];
    if (item === undefined) return done();
    const [id, kvs] = item;
    if (!this.orphans.has(id)) {
      if (this.orphans.size >= maxOrphansRemembered) this.orphans.clear();
      this.orphans.add(id);
      return this.cleanOrphans(found, i + 1, done);
    }
    this.orphans.delete(id);
    this.store.txn([{ key: txKey(id), value: null }], kvs.map((kv) => ({ type: 'delete' as const, key: kv.key })), (r) => {
      if (r.ok && r.value.succeeded) this.proc.count('orphan keys deleted', kvs.length);
      this.cleanOrphans(found, i + 1, done);
    });
  }
}
