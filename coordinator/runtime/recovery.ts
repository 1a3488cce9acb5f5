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
 *
 * With `sweepElection` configured, only the coordinator that the election
 * (sweep-election.ts) made leader sweeps: a pass runs only while it leads,
 * and one under way stops at its next step once that leadership ends.
 * Transactions it already adopted stay live here and are finished, as any
 * transaction loaded for a request is.
 */
import type { Random } from '../../lib/random.js';
import type { Cancel, Timers } from '../../lib/timers.js';
import type { CoordinatorConfig } from './config.js';
import { doneRecordOf } from '../protocol/index.js';
import type { Collector } from './gc.js';
import type { Logger } from '../../lib/logger.js';
import type { Counter, MetricsRegistry } from '../../lib/metrics.js';
import { snapshotFromKvs, txKey, verdictOf, type TxSnapshot } from '../protocol/index.js';
import type { CoordinatorRuntime } from './runtime.js';
import { scanTransactions } from './query.js';
import type { TxKeyValue, TxStore } from '../txstore/index.js';
import { SweepElection, type SweepElectionStatus } from './sweep-election.js';

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
  /** Set when no pass ran (this coordinator does not lead the sweep election), or when one stopped early (it lost the lead). */
  readonly skipped?: 'not_leader' | 'leadership_lost';
}

/** What one pass found to do. */
interface PassPlan {
  readonly scanned: number;
  readonly inDoubt: number;
  readonly toAdopt: readonly string[];
  readonly toCollect: readonly TxSnapshot[];
  readonly orphans: readonly [string, readonly TxKeyValue[]][];
}

const NOT_LEADER: PassResult = Object.freeze({ scanned: 0, inDoubt: 0, adopted: 0, collected: 0, orphansDeleted: 0, skipped: 'not_leader' });

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
  /** Passes this loop ran (a skipped one does not count). */
  passesRun = 0;
  /** Set when `sweepElection` is configured: only its leader sweeps. */
  readonly election: SweepElection | undefined;

  constructor(private readonly deps: RecoveryDeps) {
    const e = deps.config.sweepElection;
    if (e !== null) {
      const onElected = (): void => {
        // A new leader sweeps at once: the one it replaced may have died mid-cycle.
        if (!this.stopped) void this.runOnce().catch((err: unknown) => this.deps.log('warn', 'recovery pass failed', { error: err }));
      };
      this.election = new SweepElection({ store: deps.store, candidateId: deps.config.id, config: e, timers: deps.timers, random: deps.random, log: deps.log, onElected });
    }
  }

  start(): void {
    this.stopped = false;
    this.election?.start();
    this.schedule();
  }

  /** Stops the timer, gives up any sweep leadership (a pass under way then stops at its next step), waits for that pass. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.election?.stop();
    await this.running?.catch(() => undefined);
  }

  /** The sweep election's state; null when the option is off (every coordinator sweeps). */
  sweepStatus(): SweepElectionStatus | null {
    return this.election?.status() ?? null;
  }

  /** The sweep election's metrics, in the service's registry (nothing when the option is off). */
  registerMetrics(r: MetricsRegistry): void {
    const e = this.election;
    if (e === undefined) return;
    r.gauge('twopc_sweep_leader', 'Whether this coordinator leads the recovery sweep election (1) or not (0).', () => (e.leading ? 1 : 0));
    r.gauge('twopc_sweep_leader_token', "The sweep leader's fencing token (its election revision, also its term) as this coordinator sees it; 0 if none.", () => e.status().leader?.token ?? 0);
    r.counterFrom('twopc_sweep_elections_total', 'Times this coordinator was elected to run the recovery sweep.', () => e.elections);
    r.counterFrom('twopc_sweep_leadership_lost_total', 'Times this coordinator lost the sweep leadership other than by stopping (its session lost).', () => e.losses);
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

  /** One pass; concurrent callers share it. Under the sweep election, a coordinator that does not lead runs none. */
  runOnce(): Promise<PassResult> {
    if (this.running !== undefined) return this.running;
    const fence = this.election === undefined ? undefined : this.election.leadershipSignal;
    if (this.election !== undefined && fence === undefined) return Promise.resolve(NOT_LEADER);
    this.running = this.pass(fence).finally(() => (this.running = undefined));
    return this.running;
  }

  /** `fence`: aborted when this coordinator's sweep leadership ends; the pass then stops at its next step. */
  private async pass(fence: AbortSignal | undefined): Promise<PassResult> {
    this.passesRun++;
    this.deps.metrics.passes.inc();
    const plan = await this.plan();
    const lost = (): boolean => fence?.aborted === true;
    let adopted = 0;
    for (let i = 0; i < plan.toAdopt.length && !lost(); i += ADOPT_CONCURRENCY) {
      const batch = plan.toAdopt.slice(i, i + ADOPT_CONCURRENCY);
      const results = await Promise.all(batch.map((id) => this.deps.runtime.adopt(id)));
      adopted += results.filter(Boolean).length;
    }
    this.deps.metrics.adopted.inc(adopted);
    let collected = 0;
    for (const snap of plan.toCollect) {
      if (lost()) break;
      try {
        if ((await this.deps.collector.collectSnapshot(snap)).collected) collected++;
      } catch (e) {
        this.deps.log('warn', 'garbage collection failed', { txId: snap.id, error: e });
      }
    }
    const orphansDeleted = lost() ? 0 : await this.cleanOrphans(plan.orphans);
    const { scanned, inDoubt } = plan;
    if (plan.toAdopt.length > 0 || collected > 0 || orphansDeleted > 0) {
      this.deps.log('info', 'recovery pass', { scanned, inDoubt, adopted, collected, orphansDeleted });
    }
    const result = { scanned, inDoubt, adopted, collected, orphansDeleted };
    if (!lost()) return result;
    this.deps.log('info', 'recovery pass stopped early: the sweep leadership ended', result);
    return { ...result, skipped: 'leadership_lost' };
  }

  /** Reads the next slice of `tx/` and sorts what it finds: adopt, collect, or orphan. */
  private async plan(): Promise<PassPlan> {
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
    return { scanned: scan.groups.size, inDoubt, toAdopt, toCollect, orphans };
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
