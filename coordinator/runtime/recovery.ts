/**
 * The recovery loop: every coordinator scans `tx/` at jittered intervals
 * (so several coordinators do not scan in lockstep) and finishes what
 * nobody is finishing:
 *
 * - past its deadline and undecided ("in doubt"): adopt it; the machine
 *   freezes an active record, fills missing votes with "no" and records the
 *   decision, all by CAS;
 * - decided but not acknowledged by everyone, past its deadline: adopt it;
 *   the machine tells the participants again and waits for their acks;
 * - decided and acknowledged by everyone: collect it (gc.ts);
 * - keys without a `tx/{id}` record (a late ack or vote written after GC),
 *   seen so in two passes in a row: delete them, guarded by the record's
 *   absence.
 *
 * Racing the owner or another coordinator is safe because every decisive
 * write is a CAS. A pass reads at most `recoveryScanMaxKeys` keys and the
 * next pass continues after the last transaction it saw, wrapping around.
 */
import type { Random } from '../../lib/random.js';
import type { Cancel, Timers } from '../../lib/timers.js';
import type { CoordinatorConfig } from './config.js';
import { doneRecordOf } from '../protocol/index.js';
import type { Collector } from './gc.js';
import type { Logger } from '../../lib/logger.js';
import type { Counter } from '../../lib/metrics.js';
import { snapshotFromKvs, txKey, verdictOf, type TxSnapshot } from '../protocol/index.js';
import type { CoordinatorRuntime } from './runtime.js';
import { scanTransactions } from './query.js';
import type { TxKeyValue, TxStore } from '../txstore/index.js';

export interface RecoveryDeps {
  readonly store: TxStore;
  readonly runtime: CoordinatorRuntime;
  readonly collector: Collector;
  readonly config: CoordinatorConfig;
  readonly timers: Timers;
  readonly random: Random;
  readonly log: Logger;
  readonly metrics: { readonly inDoubtFound: Counter; readonly adopted: Counter; readonly passes: Counter };
}

export interface PassResult {
  readonly scanned: number;
  readonly inDoubt: number;
  readonly adopted: number;
  readonly collected: number;
  readonly orphansDeleted: number;
}

/** Adoptions started at once in one pass. */
const ADOPT_CONCURRENCY = 16;
/** Orphan ids remembered between passes. */
const MAX_ORPHANS_REMEMBERED = 10_000;
/** The shortest interval between passes as a share of the mean (the longest is this plus 1). */
const MIN_INTERVAL_SHARE = 0.5;

export class RecoveryLoop {
  private cancelTimer: Cancel | undefined;
  private running: Promise<PassResult> | undefined;
  /** The key the next pass starts after; undefined: from the start. */
  private cursor: string | undefined;
  /** Ids seen without a record once; deleted when seen so again. */
  private readonly orphans = new Set<string>();
  private stopped = true;
  /** Undecided transactions past their deadline seen by the last full cycle over `tx/` (a gauge). */
  lastInDoubt = 0;
  private cycleInDoubt = 0;

  constructor(private readonly deps: RecoveryDeps) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    const mean = this.deps.config.recoveryIntervalMs;
    // Uniform in [50%, 150%) of the mean, so coordinators drift apart.
    const delay = Math.round(mean * (MIN_INTERVAL_SHARE + this.deps.random.float()));
    this.cancelTimer = this.deps.timers.after(delay, () => {
      this.cancelTimer = undefined;
      void this.runOnce()
        .catch((e: unknown) => this.deps.log('warn', 'recovery pass failed', { error: e }))
        .finally(() => this.schedule());
    });
  }

  /** One pass; concurrent callers share it. */
  runOnce(): Promise<PassResult> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<PassResult> {
    this.deps.metrics.passes.inc();
    const scan = await scanTransactions(this.deps.store, this.cursor, this.deps.config.recoveryScanMaxKeys);
    this.cursor = scan.exhausted ? undefined : scan.lastKey;
    const nowMs = this.deps.timers.nowMs();
    const toAdopt: string[] = [];
    const toCollect: TxSnapshot[] = [];
    const orphans: [string, readonly TxKeyValue[]][] = [];
    let inDoubt = 0;
    for (const [id, kvs] of scan.groups) {
      if (this.deps.runtime.isLive(id)) continue;
      let snap: TxSnapshot;
      try {
        snap = snapshotFromKvs(id, kvs, scan.revision);
      } catch (e) {
        this.deps.log('error', 'corrupt transaction in the store; leaving it alone', { txId: id, error: e });
        continue;
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
      if (verdictOf(tx.record, snap.votes, snap.decision) === 'pending') {
        inDoubt++;
        this.deps.metrics.inDoubtFound.inc();
      }
      toAdopt.push(id);
    }
    this.cycleInDoubt += inDoubt;
    if (this.cursor === undefined) {
      // A whole cycle over `tx/` is done: publish its count.
      this.lastInDoubt = this.cycleInDoubt;
      this.cycleInDoubt = 0;
    }

    let adopted = 0;
    for (let i = 0; i < toAdopt.length; i += ADOPT_CONCURRENCY) {
      const batch = toAdopt.slice(i, i + ADOPT_CONCURRENCY);
      const results = await Promise.all(batch.map((id) => this.deps.runtime.adopt(id)));
      adopted += results.filter(Boolean).length;
    }
    this.deps.metrics.adopted.inc(adopted);

    let collected = 0;
    for (const snap of toCollect) {
      try {
        if ((await this.deps.collector.collectSnapshot(snap)).collected) collected++;
      } catch (e) {
        this.deps.log('warn', 'garbage collection failed', { txId: snap.id, error: e });
      }
    }
    const orphansDeleted = await this.cleanOrphans(orphans);
    if (toAdopt.length > 0 || collected > 0 || orphansDeleted > 0) {
      this.deps.log('info', 'recovery pass', { scanned: scan.groups.size, inDoubt, adopted, collected, orphansDeleted });
    }
    return { scanned: scan.groups.size, inDoubt, adopted, collected, orphansDeleted };
  }

  private async cleanOrphans(found: readonly [string, readonly TxKeyValue[]][]): Promise<number> {
    let deleted = 0;
    for (const [id, kvs] of found) {
      if (!this.orphans.has(id)) {
        if (this.orphans.size >= MAX_ORPHANS_REMEMBERED) this.orphans.clear();
        this.orphans.add(id);
        continue;
      }
      this.orphans.delete(id);
      try {
        const r = await this.deps.store.txn(
          [{ key: txKey(id), value: null }],
          kvs.map((kv) => ({ type: 'delete' as const, key: kv.key })),
        );
        if (r.succeeded) deleted += kvs.length;
      } catch (e) {
        this.deps.log('warn', 'orphan cleanup failed', { txId: id, error: e });
      }
    }
    return deleted;
  }
}
