/**
 * The coordinator's runtime: it drives one pure CoordinatorMachine per live
 * transaction and performs the machine's effects (machine.ts states the
 * contract). It keeps nothing that is not also in the store, so it can drop
 * a transaction at any time (idle, out of room, store trouble) and load it
 * back from a snapshot later, here or in another coordinator.
 *
 * - Store writes are CAS (or, for begin, a txn that also checks no compacted
 *   record of the id exists), retried with exponential backoff and jitter a
 *   bounded number of times; each result goes back to the machine, which
 *   adopts what the store holds whichever CAS won.
 * - Changes reach the machines from ONE shared watch on `tx/`
 *   (watcher.ts). A transaction is registered before its snapshot is read,
 *   and watched events newer than the snapshot are replayed onto it, so no
 *   change falls between the read and the watch.
 * - Prepare and decision calls to participants are hints (hints.ts).
 * - A deadline timer per transaction; finished transactions are collected
 *   (gc.ts) and dropped.
 */
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import type { Random } from '../lib/random.js';
import { doneKey } from './compacted.js';
import type { CoordinatorConfig } from './config.js';
import type { Failpoints } from './failpoints.js';
import type { Collector } from './gc.js';
import type { HintClient } from './hints.js';
import type { Logger } from './logger.js';
import { CoordinatorMachine, type CoordinatorEffect, type CoordinatorEvent, type CoordinatorReply, type RequestId } from './machine.js';
import type { Counter, Histogram } from './metrics.js';
import { decodeDecision, decodeTxRecord, decodeVote, parseKey, ProtocolError, TX_PREFIX, type Participant, type TxRecord, type TxSnapshot } from './protocol.js';
import { withRetries, type BackoffPolicy } from './retry.js';
import { readTxSnapshot, TxStoreError, type CasResult, type TxStore, type TxWatchEvent } from './store.js';
import { PrefixWatcher } from './watcher.js';

export interface RuntimeMetrics {
  readonly begun: Counter;
  readonly committed: Counter;
  readonly aborted: Counter;
  readonly storeRetries: Counter;
  readonly hintFailures: Counter;
  readonly collected: Counter;
  readonly evicted: Counter;
  readonly commitLatency: Histogram;
}

export interface RuntimeDeps {
  readonly store: TxStore;
  readonly config: CoordinatorConfig;
  readonly clock: Clock;
  readonly random: Random;
  readonly hints: HintClient;
  readonly collector: Collector;
  readonly failpoints: Failpoints;
  readonly log: Logger;
  readonly metrics: RuntimeMetrics;
}

/** A begin found only the compacted record of this id: the transaction ran and was collected. */
export class TxCollectedError extends AppError {
  constructor(id: string) {
    super('tx_collected', 409, `transaction ${id} is finished and collected`);
  }
}

interface Waiter {
  readonly resolve: (r: CoordinatorReply) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: NodeJS.Timeout;
  /** Monotonic start, for commit latency. */
  readonly commitStartMs: number | undefined;
}

/** Most watched events buffered for a transaction whose snapshot is being read; past it, resync. */
const MAX_BUFFERED_EVENTS = 10_000;

class LiveTx {
  machine: CoordinatorMachine | undefined;
  /** Watched events that arrived while the snapshot was read; undefined once the machine exists. */
  buffered: TxWatchEvent[] | undefined = [];
  overflowed = false;
  loading: Promise<void> | undefined;
  readonly waiters = new Map<RequestId, Waiter>();
  deadlineTimer: NodeJS.Timeout | undefined;
  ackTimer: NodeJS.Timeout | undefined;
  /** Store writes in flight. */
  inflight = 0;
  gone = false;
  preparesAnswered = 0;
  /** Participants already sent a prepare hint (early, or on the machine's effect): one each. */
  readonly hinted = new Set<string>();

  constructor(readonly id: string) {}
}

export class CoordinatorRuntime {
  private readonly live = new Map<string, LiveTx>();
  private readonly watcher: PrefixWatcher;
  private readonly retry: BackoffPolicy;
  private nextRequest = 0;
  private stopped = false;
  /** Store writes and collections in flight: stop() lets them settle. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly deps: RuntimeDeps) {
    const c = deps.config;
    this.retry = { maxAttempts: c.storeWriteMaxAttempts, baseMs: c.storeBackoffBaseMs, maxMs: c.storeBackoffMaxMs };
    this.watcher = new PrefixWatcher({
      store: deps.store,
      prefix: TX_PREFIX,
      onEvent: (e) => this.dispatch(e),
      onResync: () => this.resyncAll(),
      random: deps.random,
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
    const answer = this.submit(tx, (requestId) => ({ type: 'commitRequested', requestId, nowMs: this.deps.clock.nowMs() }), true);
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
    if (tx.gone || record === undefined || record === null || record.state !== 'active' || this.deps.clock.nowMs() >= record.deadline) return;
    for (const p of record.participants) {
      if (tx.hinted.has(p.name)) continue;
      tx.hinted.add(p.name);
      void this.sendPrepare(tx, p, record.deadline);
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
      await this.load(id, true);
      return true;
    } catch (e) {
      // No room, or the store did not answer, or it finished meanwhile: the next pass looks again.
      this.deps.log('debug', 'recovery could not adopt a transaction', { id, error: e });
      return false;
    }
  }

  private submit(tx: LiveTx, makeEvent: (requestId: RequestId) => CoordinatorEvent, isCommit = false): Promise<CoordinatorReply> {
    const requestId = `r${this.nextRequest++}`;
    const deadline = tx.machine?.view().record?.deadline;
    const timeoutMs =
      isCommit && deadline !== undefined ? Math.max(0, deadline - this.deps.clock.nowMs()) + this.deps.config.commitGraceMs : this.deps.config.requestTimeoutMs;
    return new Promise<CoordinatorReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        tx.waiters.delete(requestId);
        reject(new AppError('timeout', 504, `no answer within ${timeoutMs} ms; the request is idempotent, retry it or GET the transaction`));
        this.maybeUnload(tx);
      }, timeoutMs);
      timer.unref();
      tx.waiters.set(requestId, { resolve, reject, timer, commitStartMs: isCommit ? this.deps.clock.monotonicMs() : undefined });
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
      const buffered = tx.buffered ?? [];
      tx.buffered = undefined;
      for (const e of buffered) if (e.revision > snapshot.revision) this.feedWatched(tx, e);
      if (tx.overflowed) void this.resync(tx);
      const deadline = snapshot.tx?.record.deadline;
      const nowMs = this.deps.clock.nowMs();
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
      if (tx.waiters.size === 0 && tx.inflight === 0 && tx.machine !== undefined) {
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
    if (tx.deadlineTimer !== undefined) clearTimeout(tx.deadlineTimer);
    if (tx.ackTimer !== undefined) clearTimeout(tx.ackTimer);
    const err = toServiceError(error ?? new AppError('store_unavailable', 503, `transaction ${tx.id} was dropped before it answered; retry`));
    for (const w of tx.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    tx.waiters.clear();
  }

  /** Drops a transaction that needs nothing more from this process. */
  private maybeUnload(tx: LiveTx): void {
    const m = tx.machine;
    if (tx.gone || m === undefined || tx.inflight > 0 || tx.waiters.size > 0) return;
    const view = m.view();
    if (view.record === null) {
      this.unload(tx); // no such transaction (or collected by someone else)
      return;
    }
    if (view.decision !== undefined && tx.ackTimer === undefined) {
      // Decided and recorded: wait a while for the acks, then leave the rest to the recovery loop.
      tx.ackTimer = setTimeout(() => {
        if (tx.inflight === 0 && tx.waiters.size === 0) this.unload(tx);
      }, this.deps.config.ackWaitMs);
      tx.ackTimer.unref();
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
      this.deps.log('error', 'corrupt transaction in the store', { id: tx.id, error: e });
      this.unload(tx, e);
      return;
    }
    if (effects.some((e) => e.type === 'writeDecision')) this.deps.failpoints.hit('coordinator.afterVotes');
    for (const e of effects) this.perform(tx, e);
    this.maybeUnload(tx);
  }

  private perform(tx: LiveTx, e: CoordinatorEffect): void {
    switch (e.type) {
      case 'writeTx':
        this.write(
          tx,
          () => (e.expected === null ? this.createTx(tx.id, e.key, e.value) : this.deps.store.casValue(e.key, e.expected, e.value)),
          (r) => {
            if (r.succeeded) this.afterTxWrite(e.expected === null, e.value);
            this.step(tx, { type: 'txWritten', value: e.value, succeeded: r.succeeded, previous: r.previous });
            // A begin that found the record already there missed its history: read it all.
            if (e.expected === null && !r.succeeded) void this.resync(tx);
          },
        );
        return;
      case 'writeVote':
        this.write(tx, () => this.deps.store.casCreate(e.key, e.value), (r) => this.step(tx, { type: 'voteWritten', participant: e.participant, succeeded: r.succeeded, previous: r.previous }));
        return;
      case 'writeDecision':
        this.write(tx, () => this.deps.store.casCreate(e.key, e.value), (r) => {
          if (r.succeeded) {
            (e.decision === 'commit' ? this.deps.metrics.committed : this.deps.metrics.aborted).inc();
            this.deps.failpoints.hit('coordinator.afterDecision');
          }
          this.step(tx, { type: 'decisionWritten', succeeded: r.succeeded, previous: r.previous });
        });
        return;
      case 'sendPrepare':
        if (tx.hinted.has(e.participant.name)) return; // sent early, with the freeze
        tx.hinted.add(e.participant.name);
        void this.sendPrepare(tx, e.participant, e.deadline);
        return;
      case 'sendDecision':
        void this.deps.hints.decision(e.participant.url, tx.id, e.decision).then((r) => {
          if (!r.ok) this.deps.metrics.hintFailures.inc();
        });
        return;
      case 'setTimer':
        this.armDeadline(tx, e.atMs);
        return;
      case 'reply':
        this.reply(tx, e.requestId, e.reply);
        return;
      case 'finished':
        void this.track(this.collect(tx));
        return;
    }
  }

  private afterTxWrite(created: boolean, value: string): void {
    if (created) {
      this.deps.metrics.begun.inc();
      this.deps.failpoints.hit('coordinator.afterBegin');
    } else if (decodeTxRecord(value).state === 'preparing') {
      this.deps.failpoints.hit('coordinator.afterFreeze');
    }
  }

  /**
   * Creates `tx/{id}` only if neither it nor a compacted record of the same
   * id exists (an Idempotency-Key replayed after collection must not begin
   * the transaction again). Answers like a CAS create-if-absent.
   */
  private async createTx(id: string, key: string, value: string): Promise<CasResult> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await this.deps.store.txn(
        [
          { key, value: null },
          { key: doneKey(id), value: null },
        ],
        [{ type: 'put', key, value }],
      );
      if (r.succeeded) return { succeeded: true, previous: null, revision: r.revision };
      const kv = await this.deps.store.get(key);
      if (kv !== null) return { succeeded: false, previous: kv.value, revision: r.revision };
      if ((await this.deps.store.get(doneKey(id))) !== null) throw new TxCollectedError(id);
      // Both gone between the txn and the reads (collected and expired): try again.
    }
    throw new TxStoreError('unavailable', 503, `could not create transaction ${id}: it keeps changing`);
  }

  private write(tx: LiveTx, f: () => Promise<CasResult>, then: (r: CasResult) => void): void {
    tx.inflight++;
    this.track(withRetries(f, this.retry, this.deps.random, { onRetry: () => this.deps.metrics.storeRetries.inc() })).then(
      (r) => {
        tx.inflight--;
        then(r);
        this.maybeUnload(tx);
      },
      (e: unknown) => {
        tx.inflight--;
        if (!(e instanceof TxCollectedError)) this.deps.log('warn', 'store write failed; dropping the transaction until recovery', { id: tx.id, error: e });
        // The machine still has this write in flight: drop it; a reload starts from the store.
        this.unload(tx, e);
      },
    );
  }

  private async sendPrepare(tx: LiveTx, participant: Participant, deadline: number): Promise<void> {
    const c = this.deps.config;
    for (let attempt = 0; attempt < c.prepareHintAttempts; attempt++) {
      if (tx.gone || this.deps.clock.nowMs() >= deadline) return;
      const r = await this.deps.hints.prepare(participant.url, tx.id, deadline);
      if (tx.preparesAnswered++ === 0) this.deps.failpoints.hit('coordinator.afterSomePrepares');
      // A participant that answered (even "no", or 4xx) has seen the request: do not repeat it.
      if (r.ok || (r.status !== undefined && r.status < 500)) return;
      this.deps.metrics.hintFailures.inc();
      await new Promise((res) => setTimeout(res, c.storeBackoffBaseMs * 4 * (1 + this.deps.random.float())));
    }
  }

  private armDeadline(tx: LiveTx, atMs: number): void {
    if (tx.deadlineTimer !== undefined) clearTimeout(tx.deadlineTimer);
    const delay = Math.max(0, atMs - this.deps.clock.nowMs());
    tx.deadlineTimer = setTimeout(() => {
      tx.deadlineTimer = undefined;
      const nowMs = this.deps.clock.nowMs();
      if (nowMs < atMs) this.armDeadline(tx, atMs);
      else this.step(tx, { type: 'deadlineReached', nowMs });
    }, Math.min(delay, 2 ** 31 - 1));
    tx.deadlineTimer.unref();
  }

  private reply(tx: LiveTx, requestId: RequestId, reply: CoordinatorReply): void {
    const w = tx.waiters.get(requestId);
    if (w === undefined) return; // timed out already
    tx.waiters.delete(requestId);
    clearTimeout(w.timer);
    if (w.commitStartMs !== undefined && reply.kind === 'outcome') this.deps.metrics.commitLatency.observe((this.deps.clock.monotonicMs() - w.commitStartMs) / 1_000);
    w.resolve(reply);
  }

  private async collect(tx: LiveTx): Promise<void> {
    tx.inflight++;
    try {
      const r = await this.deps.collector.collect(tx.id);
      if (r.collected) this.deps.metrics.collected.inc();
    } catch (e) {
      this.deps.log('warn', 'garbage collection failed; the recovery loop will retry', { id: tx.id, error: e });
    } finally {
      tx.inflight--;
      this.unload(tx);
    }
  }

  // -------------------------------------------------------------------------
  // The watch

  private dispatch(e: TxWatchEvent): void {
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    const tx = this.live.get(parsed.id);
    if (tx === undefined || tx.gone) return;
    if (tx.machine === undefined) {
      if (tx.buffered === undefined || tx.buffered.length >= MAX_BUFFERED_EVENTS) tx.overflowed = true;
      else tx.buffered.push(e);
      return;
    }
    this.feedWatched(tx, e);
  }

  private feedWatched(tx: LiveTx, e: TxWatchEvent): void {
    const parsed = parseKey(e.key);
    if (parsed === null || parsed.id !== tx.id) return;
    let event: CoordinatorEvent;
    try {
      if (parsed.kind === 'tx') event = { type: 'txObserved', raw: e.value };
      else if (e.value === null) return; // a vote, decision or ack deleted: only GC does that
      else if (parsed.kind === 'vote') event = { type: 'voteObserved', participant: parsed.participant, vote: decodeVote(e.value) };
      else if (parsed.kind === 'decision') event = { type: 'decisionObserved', decision: decodeDecision(e.value) };
      else event = { type: 'ackObserved', participant: parsed.participant };
    } catch (err) {
      this.deps.log('error', 'corrupt value in the store', { key: e.key, error: err });
      return;
    }
    this.step(tx, event);
    if (parsed.kind === 'vote' && tx.machine?.view().verdict === 'pending') this.deps.failpoints.hit('coordinator.afterSomeVotes');
  }

  private resyncAll(): void {
    for (const tx of this.live.values()) {
      if (tx.machine === undefined) tx.overflowed = true;
      else void this.resync(tx);
    }
  }

  /** Re-reads a transaction and feeds what the store holds (re-observations are no-ops). */
  private async resync(tx: LiveTx): Promise<void> {
    tx.overflowed = false;
    let snap: TxSnapshot;
    try {
      snap = await readTxSnapshot(this.deps.store, tx.id);
    } catch (e) {
      this.deps.log('warn', 'resync read failed; dropping the transaction until recovery', { id: tx.id, error: e });
      if (tx.waiters.size === 0) this.unload(tx);
      return;
    }
    this.step(tx, { type: 'txObserved', raw: snap.tx?.raw ?? null });
    for (const [participant, vote] of snap.votes) this.step(tx, { type: 'voteObserved', participant, vote });
    if (snap.decision !== undefined) this.step(tx, { type: 'decisionObserved', decision: snap.decision });
    for (const participant of snap.acks.keys()) this.step(tx, { type: 'ackObserved', participant });
  }
}

/** Store failures become 503s for clients; other AppErrors pass as they are. */
export function toServiceError(e: unknown): unknown {
  if (e instanceof TxStoreError && (e.status >= 500 || e.status === 429)) return new AppError('store_unavailable', 503, `the store did not answer: ${e.message}`, { retryAfterSeconds: 1 }, { cause: e });
  return e;
}
