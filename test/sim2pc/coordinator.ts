/**
 * A simulated coordinator process: coordinator/runtime/runtime.ts (with its
 * effects.ts, watch-feed.ts and live-tx.ts) in callback form, driving the
 * SAME pure CoordinatorMachine, one per live transaction. It
 * keeps nothing that is not in the store, so a crash loses only work in
 * flight, and any coordinator (or the recovery loop, coordinator-recovery.ts)
 * loads a transaction back from a snapshot.
 *
 * As in the runtime: begin is a txn guarded by the absence of the record and
 * of its compacted record; store writes are CAS, retried a bounded number of
 * times, after which the transaction is dropped until recovery; one shared
 * watch on `tx/` feeds every machine (buffered while a snapshot is read);
 * hints (coordinator-hints.ts); a deadline timer per transaction; finished
 * transactions are collected. Crash points are the runtime's failpoints.
 *
 * The mutation `decision-without-cas` (a planted bug, in this driver only)
 * writes the decision key with a blind put instead of a CAS create.
 */
import { decodeDoneRecord, doneKey } from '../../coordinator/protocol/compacted.js';
import { CoordinatorMachine, type CoordinatorEffect, type CoordinatorEvent, type CoordinatorReply } from '../../coordinator/core/machine.js';
import { decodeTxRecord, parseKey, ProtocolError, txKey, type TxRecord, type TxSnapshot } from '../../coordinator/protocol/kernel.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import type { TxWatchEvent } from '../../coordinator/txstore/txstore.js';
import { RecoveryLoop } from './coordinator-recovery.js';
import { describeEvent, LiveTx, replyFromDone, snapshotEvents, watchedEvent, type Loaded, type WatchFilters, type Written } from './coordinator-tx.js';
import { Hints } from './coordinator-hints.js';
import type { CoordinatorAnswer, CoordinatorCall } from './messages.js';
import { RpcClient, type Net, type Packet } from './net.js';
import { SimStore, withRetries, type Outcome, type StoreClientOptions } from './store-client.js';
import { collect, createTx, readTxSnapshot } from './txstore-ops.js';
import { SimWatcher } from './watcher.js';
import { Proc, type World } from './world.js';

export interface CoordinatorTiming {
  readonly storeRetry: BackoffPolicy;
  readonly hintTimeoutMs: number;
  readonly prepareHintAttempts: number;
  readonly decisionHintDelayMs: number;
  readonly requestTimeoutMs: number;
  readonly commitGraceMs: number;
  readonly recoveryIntervalMs: number;
  readonly ackWaitMs: number;
  readonly pollMs: number;
  readonly store: StoreClientOptions;
}

export interface CoordinatorOptions {
  readonly timing: CoordinatorTiming;
  readonly decisionWithoutCas: boolean;
  /**
   * Feed watched events to the machine exactly as runtime.ts does (known bugs stale-tx-event,
   * orphan-event). When false the simulation drops `tx/{id}` events older than the record the
   * machine already adopted, and keys written after the record was deleted: both otherwise trip
   * the machine's assertions and crash the coordinator (docs/SIM2PC.md, "Found").
   */
  readonly feedStaleTxEvents: boolean;
  readonly feedOrphanEvents: boolean;
  /**
   * Write "no" fills and the decision only while `tx/{id}` exists (one txn). runtime.ts writes
   * plain CAS create-if-absent (known bug write-after-gc): after GC deleted the keys, a machine
   * that has not seen the GC creates them again, with "no" votes and an abort decision.
   */
  readonly guardWrites: boolean;
  /** Every outcome this coordinator tells a client, for the checker. */
  readonly onOutcome: (coordinator: string, txId: string, reply: CoordinatorReply) => void;
}

/** Watched events buffered for a transaction whose snapshot is being read; past it, resync. */
const maxBufferedEvents = 10_000;

export class SimCoordinator extends Proc {
  private live = new Map<string, LiveTx>();
  private rpc!: RpcClient;
  private store!: SimStore;
  private started = false;
  private nextRequest = 0;
  private readonly filters: WatchFilters;
  private readonly hints: Hints;

  constructor(
    name: string,
    world: World,
    private readonly net: Net,
    private readonly opts: CoordinatorOptions,
  ) {
    super(name, world);
    net.register(name, (p) => this.receive(p));
    this.hints = new Hints(this, () => this.rpc, world.random, opts.timing);
    this.filters = { feedStale: opts.feedStaleTxEvents, feedOrphans: opts.feedOrphanEvents, count: (n) => this.count(n) };
  }

  isLive(id: string): boolean {
    return this.live.has(id);
  }

  protected onStart(): void {
    this.live = new Map();
    this.started = false;
    this.rpc = new RpcClient(this, this.net);
    this.store = new SimStore(this, this.rpc, this.world.random, this.opts.timing.store);
    const watcher = new SimWatcher(this, this.store, this.world.random, {
      prefix: 'tx/',
      pollMs: this.opts.timing.pollMs,
      pageEvents: 100,
      onEvent: (e) => this.dispatch(e),
      onResync: () => this.resyncAll(),
    });
    const recovery = new RecoveryLoop(this, this.store, this.world.random, this.opts.timing, (id) => this.isLive(id), (id) => this.adopt(id));
    watcher.start(() => {
      this.started = true;
      recovery.start();
    });
  }

  protected onKill(): void {
    this.started = false;
  }

  private receive(p: Packet): void {
    if (!this.alive) return;
    if (p.payload.kind === 'resp') this.rpc.onReply(p.payload.rid, p.payload.body);
    else if (p.payload.kind === 'req') this.serve(p.from, p.payload.rid, p.payload.body as CoordinatorCall);
  }

  private answer(to: string, rid: string, a: CoordinatorAnswer): void {
    this.net.send(this.name, to, { kind: 'resp', rid, body: a });
  }

  // ---------------------------------------------------------------------------
  // Requests

  private serve(from: string, rid: string, call: CoordinatorCall): void {
    if (!this.started) return this.answer(from, rid, { ok: false, code: 'not_ready' });
    if (call.op === 'begin') {
      const record: TxRecord = { participants: call.participants, state: 'active', deadline: this.nowMs + call.timeoutMs, createdAt: this.nowMs };
      let tx = this.live.get(call.txId);
      if (tx === undefined) {
        tx = new LiveTx(call.txId);
        // A new id has no history to miss; an existing one is resynchronized when the create fails.
        tx.machine = CoordinatorMachine.fresh(call.txId, { coordinatorId: this.name });
        tx.buffered = undefined;
        this.live.set(call.txId, tx);
        return this.submit(tx, from, rid, (requestId) => ({ type: 'begin', requestId, record }), 'begin');
      }
      return this.waitLoaded(tx, (t, code) => (t === undefined ? this.answer(from, rid, { ok: false, code: code ?? 'store_unavailable' }) : this.submit(t, from, rid, (requestId) => ({ type: 'begin', requestId, record }), 'begin')));
    }
    this.load(call.txId, false, (tx, code) => {
      if (tx === undefined) return this.answer(from, rid, { ok: false, code: code ?? 'store_unavailable' });
      switch (call.op) {
        case 'enlist':
          return this.submit(tx, from, rid, (requestId) => ({ type: 'enlist', requestId, participant: call.participant }), 'enlist');
        case 'commit':
          this.submit(tx, from, rid, (requestId) => ({ type: 'commitRequested', requestId, nowMs: this.nowMs }), 'commit');
          return this.hints.prepareEarly(tx);
        case 'abort':
          return this.submit(tx, from, rid, (requestId) => (call.reason === undefined ? { type: 'abortRequested', requestId } : { type: 'abortRequested', requestId, reason: call.reason }), 'abort');
      }
    });
  }

  /** Recovery: take over a transaction found in the store. */
  adopt(id: string): void {
    if (this.live.has(id)) return;
    this.count('coordinator adoptions');
    this.load(id, true, () => undefined);
  }

  private submit(tx: LiveTx, from: string, rid: string, makeEvent: (requestId: string) => CoordinatorEvent, op: CoordinatorCall['op']): void {
    const requestId = `r${this.nextRequest++}`;
    const deadline = tx.machine?.view().record?.deadline;
    const t = this.opts.timing;
    const timeoutMs = op === 'commit' && deadline !== undefined ? Math.max(0, deadline - this.nowMs) + t.commitGraceMs : t.requestTimeoutMs;
    const timer = this.after(timeoutMs, () => {
      tx.waiters.delete(requestId);
      this.answer(from, rid, { ok: false, code: 'timeout' });
      this.maybeUnload(tx);
    });
    tx.waiters.set(requestId, { from, rid, op, timer });
    this.step(tx, makeEvent(requestId));
  }

  // ---------------------------------------------------------------------------
  // Loading and unloading

  private waitLoaded(tx: LiveTx, cb: Loaded): void {
    if (tx.loadWaiters !== undefined) tx.loadWaiters.push(cb);
    else if (tx.gone || tx.machine === undefined) cb(undefined, 'store_unavailable');
    else cb(tx);
  }

  /** The live transaction, loaded from a snapshot if needed; `recover` steps `recover` (recovery loop). */
  private load(id: string, recover: boolean, cb: Loaded): void {
    const existing = this.live.get(id);
    if (existing !== undefined) return this.waitLoaded(existing, cb);
    const tx = new LiveTx(id);
    tx.loadWaiters = [cb];
    this.live.set(id, tx); // registered before the read: watched events from now on are buffered
    readTxSnapshot(this.store, id, (o) => {
      const waiters = tx.loadWaiters ?? [];
      tx.loadWaiters = undefined;
      if (!o.ok) {
        this.unload(tx, 'store_unavailable');
        for (const w of waiters) w(undefined, 'store_unavailable');
        return;
      }
      if (!tx.gone) this.build(tx, o.value, recover);
      for (const w of waiters) this.waitLoaded(tx, w);
    });
  }

  private build(tx: LiveTx, snapshot: TxSnapshot, recover: boolean): void {
    tx.machine = new CoordinatorMachine(snapshot, { coordinatorId: this.name });
    tx.txRevision = snapshot.revision;
    const buffered = tx.buffered ?? [];
    tx.buffered = undefined;
    for (const e of buffered) if (e.revision > snapshot.revision) this.feedWatched(tx, e);
    if (tx.overflowed) this.resync(tx);
    const deadline = snapshot.tx?.record.deadline;
    // A transaction loaded past its deadline learns it now, not when its timer fires.
    if (recover || (deadline !== undefined && this.nowMs >= deadline)) this.step(tx, { type: 'recover', nowMs: this.nowMs });
  }

  private unload(tx: LiveTx, code = 'store_unavailable'): void {
    if (tx.gone) return;
    tx.gone = true;
    if (this.live.get(tx.id) === tx) this.live.delete(tx.id);
    for (const t of [tx.deadlineTimer, tx.ackTimer]) if (t !== undefined) t.cancelled = true;
    for (const w of tx.waiters.values()) {
      w.timer.cancelled = true;
      this.answer(w.from, w.rid, { ok: false, code });
    }
    tx.waiters.clear();
  }

  /** Drops a transaction that needs nothing more from this process. */
  private maybeUnload(tx: LiveTx): void {
    const m = tx.machine;
    if (tx.gone || m === undefined || tx.inflight > 0 || tx.waiters.size > 0) return;
    const view = m.view();
    if (view.record === null) return this.unload(tx);
    if (view.decision !== undefined && tx.ackTimer === undefined) {
      // Decided and recorded: wait a while for the acks, then leave the rest to the recovery loop.
      tx.ackTimer = this.after(this.opts.timing.ackWaitMs, () => {
        if (tx.inflight === 0 && tx.waiters.size === 0) this.unload(tx);
      });
    }
  }

  // ---------------------------------------------------------------------------
  // Stepping the machine

  private step(tx: LiveTx, event: CoordinatorEvent): void {
    if (tx.gone || tx.machine === undefined || !this.alive) return;
    let effects: CoordinatorEffect[];
    if (this.world.tracing) this.world.trace(`${this.name} ${tx.id} <- ${describeEvent(event)}`);
    try {
      effects = tx.machine.step(event);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e; // an AssertionError is a bug: the run stops on it
      this.unload(tx, 'corrupt_value');
      return;
    }
    if (this.world.tracing) this.world.trace(`${this.name} ${tx.id} -> ${effects.map((e) => e.type).join(',') || '-'}`);
    if (effects.some((e) => e.type === 'writeDecision')) this.failpoint('coordinator.afterVotes');
    for (const e of effects) this.perform(tx, e);
    this.maybeUnload(tx);
  }

  private perform(tx: LiveTx, e: CoordinatorEffect): void {
    switch (e.type) {
      case 'writeTx':
        return this.write(
          tx,
          (c) => (e.expected === null ? createTx(this.store, tx.id, e.value, c) : this.casTx(e.key, e.expected, e.value, e.withVote, c)),
          (r) => {
            // store.ts casValueWithVote: the vote's result first, as effects.ts feeds it.
            if (e.withVote !== undefined) this.step(tx, { type: 'voteWritten', participant: e.withVote.participant, succeeded: r.voteCreated === true, previous: null });
            tx.txRevision = Math.max(tx.txRevision, r.revision);
            if (r.succeeded && e.expected === null) this.failpoint('coordinator.afterBegin');
            else if (r.succeeded && decodeTxRecord(e.value).state === 'preparing') this.failpoint('coordinator.afterFreeze');
            this.step(tx, { type: 'txWritten', value: e.value, succeeded: r.succeeded, previous: r.previous });
            // A begin that found the record already there missed its history: read it all.
            if (e.expected === null && !r.succeeded) this.resync(tx);
          },
        );
      case 'writeVote':
        return this.write(tx, (c) => this.createGuarded(tx, e.key, e.value, e.guard, c), (r) => {
          if (r.guardMissing === true) return this.collectedMeanwhile(tx, r.revision);
          this.step(tx, { type: 'voteWritten', participant: e.participant, succeeded: r.succeeded, previous: r.previous });
        });
      case 'writeDecision':
        return this.write(tx, (c) => this.writeDecision(tx, e.key, e.value, e.guard, c), (r) => {
          if (r.guardMissing === true) return this.collectedMeanwhile(tx, r.revision);
          if (r.succeeded) {
            this.count(`decisions written: ${e.decision}`);
            this.failpoint('coordinator.afterDecision');
          }
          this.step(tx, { type: 'decisionWritten', succeeded: r.succeeded, previous: r.previous });
        });
      case 'sendPrepare':
        return this.hints.prepare(tx, e.participant, e.deadline);
      case 'sendDecision':
        return this.hints.decision(tx, e.participant, e.decision);
      case 'setTimer':
        return this.armDeadline(tx, e.atMs);
      case 'reply':
        return this.reply(tx, e.requestId, e.reply);
      case 'finished':
        return this.collectTx(tx);
    }
  }

  /** store.ts `casValueWithVote`: an explicit abort's freeze creates the first "no" in the same txn. */
  private casTx(key: string, expected: string, value: string, vote: { readonly key: string; readonly value: string } | undefined, c: (o: Outcome<Written>) => void): void {
    if (vote === undefined) return this.store.casValue(key, expected, value, c);
    const guards = [
      { key, value: expected },
      { key: vote.key, value: null },
    ];
    const writes = [
      { type: 'put', key, value },
      { type: 'put', key: vote.key, value: vote.value },
    ] as const;
    this.store.txn(guards, writes, (o) => {
      if (!o.ok) return c(o);
      if (o.value.succeeded) return c({ ok: true, value: { type: 'cas', succeeded: true, previous: expected, revision: o.value.revision, voteCreated: true } });
      this.store.casValue(key, expected, value, c);
    });
  }

  /** CAS create-if-absent; or, with the planted bug, a blind put reported as a won CAS. */
  private writeDecision(tx: LiveTx, key: string, value: string, guard: string, c: (o: Outcome<Written>) => void): void {
    if (!this.opts.decisionWithoutCas) return this.createGuarded(tx, key, value, guard, c);
    this.count('mutation: blind decision puts');
    this.store.put(key, value, (o) => c(o.ok ? { ok: true, value: { type: 'cas', succeeded: true, previous: o.value.previous, revision: o.value.revision } } : o));
  }

  private createGuarded(tx: LiveTx, key: string, value: string, guard: string, c: (o: Outcome<Written>) => void): void {
    if (this.opts.guardWrites) this.store.guardedCreate(key, value, txKey(tx.id), guard, c);
    else this.store.casCreate(key, value, c);
  }

  /** A guarded write found the record gone: the transaction was collected; the machine learns it. */
  private collectedMeanwhile(tx: LiveTx, revision: number): void {
    this.count('writes refused: transaction collected');
    tx.deletedRevision ??= revision;
    this.step(tx, { type: 'txObserved', raw: null });
  }

  private write(tx: LiveTx, f: (cb: (o: Outcome<Written>) => void) => void, then: (r: Written) => void): void {
    tx.inflight++;
    withRetries(this, this.world.random, this.opts.timing.storeRetry, f, (o) => {
      tx.inflight--;
      // The machine still has this write in flight when it fails: drop it; a reload starts from the store.
      if (!o.ok) return this.unload(tx, o.code === 'tx_collected' ? 'tx_collected' : 'store_unavailable');
      then(o.value);
      this.maybeUnload(tx);
    }, () => this.count('coordinator store retries'));
  }

  private armDeadline(tx: LiveTx, atMs: number): void {
    if (tx.deadlineTimer !== undefined) tx.deadlineTimer.cancelled = true;
    tx.deadlineTimer = this.after(atMs - this.nowMs, () => {
      tx.deadlineTimer = undefined;
      this.step(tx, { type: 'deadlineReached', nowMs: this.nowMs });
    });
  }

  private reply(tx: LiveTx, requestId: string, reply: CoordinatorReply): void {
    const w = tx.waiters.get(requestId);
    if (w === undefined) return; // timed out already
    tx.waiters.delete(requestId);
    w.timer.cancelled = true;
    if (reply.kind === 'error' && reply.code === 'tx_not_found' && w.op !== 'begin') return this.answerFromDone(tx.id, w, reply);
    this.tell(tx.id, w, reply);
  }

  private tell(id: string, w: { readonly from: string; readonly rid: string }, reply: CoordinatorReply): void {
    this.opts.onOutcome(this.name, id, reply);
    this.answer(w.from, w.rid, { ok: true, reply });
  }

  /** service.ts: a transaction the store no longer holds answers from its compacted record. */
  private answerFromDone(id: string, w: { readonly from: string; readonly rid: string; readonly op: CoordinatorCall['op'] }, notFound: CoordinatorReply): void {
    this.store.get(doneKey(id), (o) => {
      if (!o.ok) return this.answer(w.from, w.rid, { ok: false, code: 'store_unavailable' });
      if (o.value.kv === null) return this.tell(id, w, notFound);
      this.tell(id, w, replyFromDone(id, w.op, decodeDoneRecord(o.value.kv.value)));
    });
  }

  private collectTx(tx: LiveTx): void {
    tx.inflight++;
    readTxSnapshot(this.store, tx.id, (o) => {
      const done = (): void => {
        tx.inflight--;
        this.unload(tx);
      };
      if (!o.ok) return done();
      collect(this, this.store, this.world.random, this.opts.timing.storeRetry, o.value, this.nowMs, (r) => {
        if (r.ok && r.value === 'collected') this.count('transactions collected');
        done();
      });
    });
  }

  // ---------------------------------------------------------------------------
  // The watch

  private dispatch(e: TxWatchEvent): void {
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    const tx = this.live.get(parsed.id);
    if (tx === undefined || tx.gone) return;
    if (tx.machine === undefined) {
      if (tx.buffered === undefined || tx.buffered.length >= maxBufferedEvents) tx.overflowed = true;
      else tx.buffered.push(e);
      return;
    }
    this.feedWatched(tx, e);
  }

  private feedWatched(tx: LiveTx, e: TxWatchEvent): void {
    const event = watchedEvent(tx, e, this.filters);
    if (event === undefined) return;
    this.step(tx, event);
    if (event.type === 'voteObserved' && tx.machine?.view().verdict === 'pending') this.failpoint('coordinator.afterSomeVotes');
  }

  private resyncAll(): void {
    for (const tx of this.live.values()) {
      if (tx.machine === undefined) tx.overflowed = true;
      else this.resync(tx);
    }
  }

  /** Re-reads a transaction and feeds what the store holds (re-observations are no-ops). */
  private resync(tx: LiveTx): void {
    tx.overflowed = false;
    readTxSnapshot(this.store, tx.id, (o) => {
      if (!o.ok) {
        if (tx.waiters.size === 0) this.unload(tx);
        return;
      }
      this.trace(() => `${tx.id} resync at r${o.value.revision}: tx ${o.value.tx === null ? 'deleted' : 'present'}, ${o.value.votes.size} votes`);
      for (const event of snapshotEvents(tx, o.value, this.filters)) this.step(tx, event);
    });
  }
}
