/**
 * The coordinator's runtime: it drives one pure CoordinatorMachine per live
 * transaction (machine.ts states the contract). It keeps nothing that is not
 * also in the store, so it can drop a transaction at any time (idle, out of
 * room, store trouble) and load it back from a snapshot later, here or in
 * another coordinator.
 *
 * This file holds the requests (begin, enlist, commit, abort, adopt), the
 * table of live transactions (loading, room, dropping) and the stepping of
 * machines. The effects a machine asks for are performed by effects.ts;
 * store changes reach the machines through watch-feed.ts.
 */
import { AppError } from '../../lib/errors.js';
import { EffectRunner, type EffectHost } from './effects.js';
import { LiveTx } from './live-tx.js';
import { CoordinatorMachine, type CoordinatorEffect, type CoordinatorEvent, type CoordinatorReply, type RequestId } from '../core/index.js';
import { ProtocolError, TX_PREFIX, type Participant, type TxRecord, type TxSnapshot } from '../protocol/index.js';
import { toServiceError, type RuntimeDeps } from './runtime-deps.js';
import { readTxSnapshot } from '../txstore/index.js';
import { WatchFeed, type WatchFeedHost } from './watch-feed.js';
import { PrefixWatcher } from '../txstore/index.js';

export { toServiceError, TxCollectedError, type RuntimeDeps, type RuntimeMetrics } from './runtime-deps.js';

export class CoordinatorRuntime {
  private readonly live = new Map<string, LiveTx>();
  private readonly watcher: PrefixWatcher;
  private readonly effects: EffectRunner;
  private readonly feed: WatchFeed;
  private nextRequest = 0;
  private stopped = false;
  /** Store writes and collections in flight: stop() lets them settle. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly deps: RuntimeDeps) {
    // The helpers reach back through closures, so these stay private to the runtime.
    const host: EffectHost & WatchFeedHost = {
      live: this.live,
      step: (tx, event) => this.step(tx, event),
      unload: (tx, error) => this.unload(tx, error),
      maybeUnload: (tx) => this.maybeUnload(tx),
      resync: (tx) => this.feed.resync(tx),
      track: (p) => this.track(p),
    };
    this.effects = new EffectRunner(deps, host);
    this.feed = new WatchFeed(host, deps.store, deps.failpoints, deps.log);
    this.watcher = new PrefixWatcher({
      store: deps.store,
      prefix: TX_PREFIX,
      onEvent: (e) => this.feed.dispatch(e),
      onResync: () => this.feed.resyncAll(),
      random: deps.random,
      timers: deps.timers,
      log: deps.log,
    });
  }

  async start(): Promise<void> {
    await this.watcher.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const tx of [...this.live.values()]) this.unload(tx, new AppError('shutting_down', 503, 'the coordinator is shutting down'));
    await this.watcher.stop();
    await Promise.allSettled([...this.pending]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => undefined);
    return p;
  }

  get liveCount(): number {
    return this.live.size;
  }

  isLive(id: string): boolean {
    return this.live.has(id);
  }

  // -------------------------------------------------------------------------
  // Requests

  /** Begin: CAS create of `tx/{id}`; a repeated begin (same id) answers with the stored record. */
  async begin(id: string, record: TxRecord): Promise<CoordinatorReply> {
    let tx = this.live.get(id);
    if (tx === undefined) {
      this.ensureRoom();
      tx = new LiveTx(id);
      // A new id has no history to miss; an existing one is resynchronized when the create fails.
      tx.machine = CoordinatorMachine.fresh(id, this.machineOptions());
      tx.buffered = undefined;
      this.live.set(id, tx);
    } else {
      await this.waitLoaded(tx);
    }
    return this.submit(tx, (requestId) => ({ type: 'begin', requestId, record }));
  }

  async enlist(id: string, participant: Participant): Promise<CoordinatorReply> {
    const tx = await this.load(id, false);
    return this.submit(tx, (requestId) => ({ type: 'enlist', requestId, participant }));
  }

  async commit(id: string): Promise<CoordinatorReply> {
    const tx = await this.load(id, false);
    const answer = this.submit(tx, (requestId) => ({ type: 'commitRequested', requestId, nowMs: this.deps.timers.nowMs() }), true);
    this.prepareEarly(tx);
    return answer;
  }

  /**
   * The early prepare: when commit freezes an active record, the prepare
   * hints go out at the same time as the freeze CAS instead of after it, so
   * the participants' durable prepare and vote overlap the freeze (one store
   * round less before the outcome). Safe because a vote is only ever counted
   * for the frozen list: a "yes" that lands before the freeze is still a
   * prepared participant's "yes", and a participant enlisted meanwhile is
   * prepared by the machine after the freeze, as usual.
   */
  private prepareEarly(tx: LiveTx): void {
    const record = tx.machine?.view().record;
    if (tx.gone || record === undefined || record === null || record.state !== 'active' || this.deps.timers.nowMs() >= record.deadline) return;
    for (const p of record.participants) {
      if (tx.hinted.has(p.name)) continue;
      tx.hinted.add(p.name);
      void this.effects.sendPrepare(tx, p, record.deadline);
    }
  }

  async abort(id: string, reason?: string): Promise<CoordinatorReply> {
    const tx = await this.load(id, false);
    return this.submit(tx, (requestId) => (reason === undefined ? { type: 'abortRequested', requestId } : { type: 'abortRequested', requestId, reason }));
  }

  /** Recovery: take over a transaction found in the store; returns false when there is no room. */
  async adopt(id: string): Promise<boolean> {
    if (this.live.has(id)) return true;
    try {
      const tx = await this.load(id, true);
      this.maybeUnload(tx); // no request follows to step it: drop it here if it needs nothing
      return true;
    } catch (e) {
      // No room, or the store did not answer, or it finished meanwhile: the next pass looks again.
      this.deps.log('debug', 'recovery could not adopt a transaction', { txId: id, error: e });
      return false;
    }
  }

  private submit(tx: LiveTx, makeEvent: (requestId: RequestId) => CoordinatorEvent, isCommit = false): Promise<CoordinatorReply> {
    const requestId = `r${this.nextRequest++}`;
    const deadline = tx.machine?.view().record?.deadline;
    const timeoutMs =
      isCommit && deadline !== undefined ? Math.max(0, deadline - this.deps.timers.nowMs()) + this.deps.config.commitGraceMs : this.deps.config.requestTimeoutMs;
    return new Promise<CoordinatorReply>((resolve, reject) => {
      const cancelTimeout = this.deps.timers.after(timeoutMs, () => {
        tx.waiters.delete(requestId);
        reject(new AppError('timeout', 504, `no answer within ${timeoutMs} ms; the request is idempotent, retry it or GET the transaction`));
        this.maybeUnload(tx);
      });
      tx.waiters.set(requestId, { resolve, reject, cancelTimeout, commitStartMs: isCommit ? this.deps.timers.monotonicMs() : undefined });
      this.step(tx, makeEvent(requestId));
    });
  }

  // -------------------------------------------------------------------------
  // Loading and unloading

  private machineOptions(): { coordinatorId: string; maxParticipants: number } {
    return { coordinatorId: this.deps.config.id, maxParticipants: this.deps.config.maxParticipants };
  }

  private async waitLoaded(tx: LiveTx): Promise<void> {
    if (tx.loading !== undefined) await tx.loading;
    if (tx.gone || tx.machine === undefined) throw new AppError('store_unavailable', 503, `transaction ${tx.id} could not be loaded; retry`);
  }

  /** The live transaction, loaded from a snapshot if needed. `recover`: step `recover` (recovery loop). */
  private async load(id: string, recover: boolean): Promise<LiveTx> {
    if (this.stopped) throw new AppError('shutting_down', 503, 'the coordinator is shutting down');
    const existing = this.live.get(id);
    if (existing !== undefined) {
      await this.waitLoaded(existing);
      return existing;
    }
    this.ensureRoom();
    const tx = new LiveTx(id);
    this.live.set(id, tx); // registered before the read: watched events from now on are buffered
    tx.loading = (async () => {
      let snapshot: TxSnapshot;
      try {
        snapshot = await readTxSnapshot(this.deps.store, id);
      } catch (e) {
        this.unload(tx, e);
        throw toServiceError(e);
      }
      if (tx.gone) return;
      tx.machine = new CoordinatorMachine(snapshot, this.machineOptions());
      for (const [participant, at] of snapshot.acks) tx.ackTimes.set(participant, at);
      tx.knownRevision = snapshot.revision;
      tx.txRevision = snapshot.revision;
      const buffered = tx.buffered ?? [];
      tx.buffered = undefined;
      for (const e of buffered) if (e.revision > snapshot.revision) this.feed.feed(tx, e);
      if (tx.overflowed) void this.feed.resync(tx);
      const deadline = snapshot.tx?.record.deadline;
      const nowMs = this.deps.timers.nowMs();
      // A transaction loaded past its deadline learns it now, not when its timer fires.
      if (recover || (deadline !== undefined && nowMs >= deadline)) this.step(tx, { type: 'recover', nowMs });
    })();
    try {
      await tx.loading;
    } finally {
      tx.loading = undefined;
    }
    if (tx.gone || tx.machine === undefined) throw new AppError('store_unavailable', 503, `transaction ${id} could not be loaded; retry`);
    return tx;
  }

  /** Makes room for one more live transaction by dropping the oldest idle one, or refuses. */
  private ensureRoom(): void {
    if (this.live.size < this.deps.config.maxLiveTxs) return;
    for (const tx of this.live.values()) {
      if (tx.idle && tx.machine !== undefined) {
        // Safe: everything it knows is in the store; the recovery loop or the next request loads it back.
        this.deps.metrics.evicted.inc();
        this.unload(tx);
        return;
      }
    }
    throw new AppError('too_many_transactions', 503, `this coordinator drives ${this.deps.config.maxLiveTxs} transactions already; retry later`, { retryAfterSeconds: 1 });
  }

  private unload(tx: LiveTx, error?: unknown): void {
    if (tx.gone) return;
    tx.gone = true;
    if (this.live.get(tx.id) === tx) this.live.delete(tx.id);
    tx.clearTimers();
    const err = toServiceError(error ?? new AppError('store_unavailable', 503, `transaction ${tx.id} was dropped before it answered; retry`));
    for (const w of tx.waiters.values()) {
      w.cancelTimeout();
      w.reject(err);
    }
    tx.waiters.clear();
  }

  /** Drops a transaction that needs nothing more from this process. */
  private maybeUnload(tx: LiveTx): void {
    const m = tx.machine;
    if (tx.gone || m === undefined || !tx.idle) return;
    const view = m.view();
    if (view.record === null) {
      this.unload(tx); // no such transaction (or collected by someone else)
      return;
    }
    if (view.decision !== undefined && tx.cancelAckWait === undefined) {
      // Decided and recorded: wait a while for the acks, then leave the rest to the recovery loop.
      tx.cancelAckWait = this.deps.timers.after(this.deps.config.ackWaitMs, () => {
        if (tx.idle) this.unload(tx);
      });
    }
  }

  // -------------------------------------------------------------------------
  // Stepping the machine

  private step(tx: LiveTx, event: CoordinatorEvent): void {
    if (tx.gone || tx.machine === undefined) return;
    let effects: CoordinatorEffect[];
    try {
      effects = tx.machine.step(event);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e; // an AssertionError is a bug: crash
      // A value in the store this protocol never writes: leave the transaction alone, loudly.
      this.deps.log('error', 'corrupt transaction in the store', { txId: tx.id, error: e });
      this.unload(tx, e);
      return;
    }
    if (effects.some((e) => e.type === 'writeDecision')) this.deps.failpoints.hit('coordinator.afterVotes');
    for (const e of effects) this.effects.perform(tx, e);
    this.maybeUnload(tx);
  }
}
