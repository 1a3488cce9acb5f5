/**
 * A simulated participant process: participant/participant.ts (with its
 * effects.ts, watch.ts and recovery.ts) in callback form, driving the SAME pure
 * ParticipantTxMachine, one per open transaction, over a durable log that
 * loses unsynced writes in a crash (plog.ts) and a bank service (bank.ts).
 *
 * What it mirrors, effect by effect: work and votes are logged durably
 * before they are answered or written; the vote is a CAS create-if-absent;
 * decisions come from the watch, or from a hint believed only after a read
 * of the decision key; each is applied once, logged, then acked by CAS; an
 * undecided "yes" helps decide past its deadline (plus a grace). At start:
 * the watch first, then every unacknowledged record is recovered with what
 * the store holds, and only then are calls served (503 not_ready before).
 *
 * Crash points are the runtime's failpoints. The mutation
 * `vote-before-durable` (a planted bug, in this driver only) writes a "yes"
 * to the store as soon as the vote is handed to the log, before its fsync.
 */
import type { Random } from '../../lib/random.js';
import { decisionKey, decodeDecision, decodeTxRecord, encodeVote, makeVote, parseKey, txKey, voteKey, type Decision } from '../../coordinator/protocol/kernel.js';
import { backoffDelayMs, type BackoffPolicy } from '../../lib/retry.js';
import type { TxWatchEvent } from '../../coordinator/txstore/txstore.js';
import type { CasResult } from '../../store/kv/index.js';
import { ParticipantTxMachine, phaseOf, type ParticipantEffect, type ParticipantEvent, type ParticipantReply } from '../../participant/machine.js';
import { SafetyViolation } from '../sim/invariants.js';
import type { Bank } from './bank.js';
import type { ParticipantAnswer, ParticipantCall } from './messages.js';
import { RpcClient, type Net, type Packet } from './net.js';
import type { LogWrite, SimLog } from './plog.js';
import { SimStore, withRetries, type StoreClientOptions } from './store-client.js';
import { recoverAll } from './participant-recovery.js';
import { finishTransaction } from './txstore-ops.js';
import { SimWatcher } from './watcher.js';
import { Proc, type Timer, type World } from './world.js';

export interface ParticipantTiming {
  readonly fsyncMs: () => number;
  readonly serviceMs: () => number;
  readonly requestTimeoutMs: number;
  readonly helpGraceMs: number;
  readonly helpRetryMs: number;
  /** watch.ts `prepareDelayMs`: a frozen record seen through the watch prepares only after this. */
  readonly watchPrepareDelayMs: number;
  readonly pollMs: number;
  readonly retry: BackoffPolicy;
  readonly store: StoreClientOptions;
}

export interface ParticipantOptions {
  readonly timing: ParticipantTiming;
  readonly voteBeforeDurable: boolean;
  /**
   * Watch-triggered prepares that come due before start-up recovery finished wait for it (watch.ts
   * `release`). Without (known bug prepare-before-restore) the watch can prepare a new transaction
   * against money an in-doubt one still holds, before recovery restores it.
   */
  readonly holdPreparesUntilReady: boolean;
  /**
   * A confirmed abort hint for a transaction with no log record, whose frozen list names us, is
   * applied (nothing to undo) and acked (watch.ts `observeHintedDecision`). Without (known bug
   * unacked-abort) such a transaction is never collected.
   */
  readonly ackUnknownAborts: boolean;
  /**
   * Recovery judges "excluded" by the record in the log now. recovery.ts uses the list it read at
   * start (known bug stale-recovery-record): the watch may have voted "yes" meanwhile, and a commit
   * then looks like a commit without us: the participant aborts locally and never acks.
   */
  readonly currentRecordInRecovery: boolean;
  /** Helping decide writes votes and the decision only while the record exists (see coordinator.ts). */
  readonly guardWrites: boolean;
  /** The bank applied a decision (durably): for the checker. */
  readonly onApplied: (participant: string, txId: string, decision: Decision) => void;
}

export class OpenTx {
  readonly waiters = new Map<string, { readonly from: string; readonly rid: string; readonly timer: Timer }>();
  timer: Timer | undefined;
  gone = false;
  constructor(
    readonly id: string,
    readonly machine: ParticipantTxMachine,
  ) {}
}

export class SimParticipant extends Proc {
  private open = new Map<string, OpenTx>();
  /** Watch-triggered prepares waiting out `watchPrepareDelayMs`. */
  private delayed = new Set<string>();
  /** Prepares that came due before recovery finished (txId -> deadline). */
  private held = new Map<string, number>();
  private rpc!: RpcClient;
  private store!: SimStore;
  private ready = false;
  private nextRequest = 0;

  constructor(
    name: string,
    world: World,
    private readonly net: Net,
    readonly log: SimLog,
    readonly bank: Bank,
    private readonly opts: ParticipantOptions,
  ) {
    super(name, world);
    net.register(name, (p) => this.receive(p));
  }

  private get random(): Random {
    return this.world.random;
  }

  protected onStart(): void {
    this.log.reopen();
    this.open = new Map();
    this.delayed = new Set();
    this.held = new Map();
    this.ready = false;
    this.rpc = new RpcClient(this, this.net);
    this.store = new SimStore(this, this.rpc, this.random, this.opts.timing.store);
    const watcher = new SimWatcher(this, this.store, this.random, {
      prefix: 'tx/',
      pollMs: this.opts.timing.pollMs,
      pageEvents: 100,
      onEvent: (e) => this.onWatch(e),
      onResync: () => this.resyncAll(),
    });
    // The watch first: no decision written during recovery can be missed.
    watcher.start(() =>
      recoverAll(this, this.store, this.opts.timing.retry.maxMs, this.opts.currentRecordInRecovery, () => {
        this.ready = true;
        const held = this.held;
        this.held = new Map();
        for (const [txId, deadline] of held) this.prepareNow(txId, deadline);
      }),
    );
  }

  protected onKill(): void {
    this.bank.crashed();
    this.ready = false;
  }

  private receive(p: Packet): void {
    if (!this.alive) return;
    if (p.payload.kind === 'resp') this.rpc.onReply(p.payload.rid, p.payload.body);
    else if (p.payload.kind === 'req') this.serve(p.from, p.payload.rid, p.payload.body as ParticipantCall);
  }

  private answer(from: string, rid: string, a: ParticipantAnswer): void {
    this.net.send(this.name, from, { kind: 'resp', rid, body: a });
  }

  // ---------------------------------------------------------------------------
  // The calls (participant/routes.ts)

  private serve(from: string, rid: string, call: ParticipantCall): void {
    if (!this.ready) return this.answer(from, rid, { ok: false, code: 'not_ready' });
    switch (call.kind) {
      case 'work':
        return this.request(this.openTx(call.txId), from, rid, (requestId) => ({ type: 'workReceived', requestId, work: call.work }));
      case 'prepare': {
        const done = this.log.get(call.txId);
        if (done?.applied !== undefined && !this.open.has(call.txId)) {
          // A late or repeated hint for a transaction decided here long ago: answer from the log.
          return this.answer(from, rid, { ok: true, vote: done.vote?.vote ?? (done.applied.decision === 'commit' ? 'yes' : 'no') });
        }
        return this.request(this.openTx(call.txId), from, rid, (requestId) => ({ type: 'prepareRequested', requestId, deadline: call.deadline }));
      }
      case 'decision':
        return this.decisionHint(from, rid, call.txId, call.decision);
    }
  }

  /** A decision hint is believed only once the store confirms it. */
  private decisionHint(from: string, rid: string, txId: string, decision: Decision): void {
    this.store.get(decisionKey(txId), (o) => {
      if (!o.ok) return this.answer(from, rid, { ok: false, code: 'store_unavailable' });
      if (o.value.kv === null) {
        const phase = phaseOf(this.log.get(txId));
        return this.answer(from, rid, phase === 'committed' || phase === 'aborted' ? { ok: true } : { ok: false, code: 'decision_not_recorded' });
      }
      const stored = decodeDecision(o.value.kv.value);
      if (stored !== decision) return this.answer(from, rid, { ok: false, code: 'decision_conflict' });
      if (this.opts.ackUnknownAborts && stored === 'abort' && this.log.get(txId) === undefined && !this.open.has(txId)) {
        return this.ackUnknownAbort(from, rid, txId);
      }
      this.observeDecision(txId, stored);
      this.answer(from, rid, { ok: true });
    });
  }

  /** watch.ts `observeHintedDecision`: an abort of a transaction we have no record of, if it lists us. */
  private ackUnknownAbort(from: string, rid: string, txId: string): void {
    this.store.get(txKey(txId), (o) => {
      if (!o.ok) return this.answer(from, rid, { ok: false, code: 'store_unavailable' });
      const record = o.value.kv === null ? null : decodeTxRecord(o.value.kv.value);
      if (record?.state === 'preparing' && record.participants.some((p) => p.name === this.name)) {
        this.count('aborts acked without a record');
        this.step(this.openTx(txId), { type: 'decisionObserved', decision: 'abort' });
      }
      this.answer(from, rid, { ok: true });
    });
  }

  // ---------------------------------------------------------------------------
  // Machines

  /** Internal (participant-recovery.ts): the open transaction, created from the log if needed. */
  openTx(txId: string): OpenTx {
    const existing = this.open.get(txId);
    if (existing !== undefined) return existing;
    const tx = new OpenTx(txId, new ParticipantTxMachine(txId, this.log.get(txId), { name: this.name }));
    this.open.set(txId, tx);
    return tx;
  }

  private unload(tx: OpenTx): void {
    if (tx.gone) return;
    tx.gone = true;
    if (this.open.get(tx.id) === tx) this.open.delete(tx.id);
    if (tx.timer !== undefined) tx.timer.cancelled = true;
    for (const w of tx.waiters.values()) {
      w.timer.cancelled = true;
      this.answer(w.from, w.rid, { ok: false, code: 'unavailable' });
    }
    tx.waiters.clear();
  }

  private request(tx: OpenTx, from: string, rid: string, makeEvent: (requestId: string) => ParticipantEvent): void {
    const requestId = `q${this.nextRequest++}`;
    const timer = this.after(this.opts.timing.requestTimeoutMs, () => {
      tx.waiters.delete(requestId);
      this.answer(from, rid, { ok: false, code: 'timeout' });
      if (tx.machine.logRecord?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
    });
    tx.waiters.set(requestId, { from, rid, timer });
    this.step(tx, makeEvent(requestId));
  }

  /** Internal (participant-recovery.ts): one machine step and its effects. */
  step(tx: OpenTx, event: ParticipantEvent): void {
    if (tx.gone || !this.alive) return;
    const effects = tx.machine.step(event); // an AssertionError here is a bug: the run stops on it
    if (this.world.tracing) this.world.trace(`${this.name} ${tx.id} ${event.type}${'decision' in event ? ` ${event.decision}` : ''} -> ${effects.map((e) => e.type).join(',') || '-'}`);
    for (const e of effects) this.perform(tx, e);
    if (tx.machine.logRecord?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
  }

  private perform(tx: OpenTx, e: ParticipantEffect): void {
    const t = this.opts.timing;
    switch (e.type) {
      case 'logWork':
        return this.logged(tx, { type: 'work', work: e.work }, () => this.failpoint('participant.afterWork'));
      case 'validate': {
        const answer = this.bank.prepare(tx.id, e.work);
        this.after(t.serviceMs(), () => this.step(tx, answer.reason === undefined ? { type: 'validated', vote: answer.vote } : { type: 'validated', vote: answer.vote, reason: answer.reason }));
        return;
      }
      case 'logVote':
        if (this.opts.voteBeforeDurable && e.vote === 'yes') this.voteEarly(tx);
        return this.logged(tx, e.reason === undefined ? { type: 'vote', vote: e.vote } : { type: 'vote', vote: e.vote, reason: e.reason });
      case 'writeVote':
        this.failpoint('participant.afterPrepareDurable');
        return this.storeWrite(tx, e.key, e.value, (r) => {
          this.count(r.succeeded ? 'votes written by participants' : 'vote CAS found a vote');
          this.failpoint('participant.afterVote');
          this.step(tx, { type: 'voteWritten', succeeded: r.succeeded, previous: r.previous });
        });
      case 'apply':
        this.failpoint('participant.beforeApply');
        return this.apply(tx, e.decision, 0);
      case 'logApplied':
        return this.logged(tx, { type: 'applied', decision: e.decision });
      case 'writeAck':
        this.failpoint('participant.afterApply');
        return this.storeWrite(tx, e.key, e.value, () => this.step(tx, { type: 'ackWritten' }));
      case 'logAcked':
        return this.logged(tx, { type: 'acked' });
      case 'restoreLocks':
        this.bank.restore(tx.id, e.work);
        return;
      case 'setTimer':
        // The deadline, after which it helps decide: the coordinator gets a head start.
        return this.armTimer(tx, e.atMs + t.helpGraceMs + this.random.int(Math.floor(t.helpGraceMs / 2) + 1));
      case 'helpDecide':
        return this.helpDecide(tx);
      case 'reply': {
        const w = tx.waiters.get(e.requestId);
        if (w === undefined) return;
        tx.waiters.delete(e.requestId);
        w.timer.cancelled = true;
        return this.answer(w.from, w.rid, toAnswer(e.reply));
      }
    }
  }

  /** The service's commit or abort, retried with backoff until it succeeds (a decided transaction cannot be refused). */
  private apply(tx: OpenTx, decision: Decision, round: number): void {
    this.after(this.opts.timing.serviceMs(), () => {
      if (decision === 'commit' ? !this.bank.commit(tx.id) : (this.bank.abort(tx.id), false)) {
        this.count('service commit retried (no reservation yet)');
        this.after(backoffDelayMs(round, this.opts.timing.retry, this.random), () => this.apply(tx, decision, round + 1));
        return;
      }
      this.opts.onApplied(this.name, tx.id, decision);
      this.step(tx, { type: 'applied', decision });
    });
  }

  /** THE PLANTED BUG (mutation vote-before-durable): the "yes" goes to the store before its fsync. */
  private voteEarly(tx: OpenTx): void {
    this.count('mutation: early yes votes');
    this.store.casCreate(voteKey(tx.id, this.name), encodeVote(makeVote('yes', this.name)), () => undefined);
  }

  /** A log write, then its `logged` event once durable. */
  private logged(tx: OpenTx, w: LogWrite, after?: () => void): void {
    this.log.write(this, tx.id, w, this.nowMs, this.opts.timing.fsyncMs(), (r) => {
      // The machine never asks for a write the log refuses (one log write in flight per transaction).
      if ('refused' in r) throw new SafetyViolation('participant-log', `${this.name}: log refused ${w.type} of ${tx.id}: ${r.refused}`);
      after?.();
      this.step(tx, { type: 'logged', record: r });
    });
  }

  /** A CAS create-if-absent, retried in rounds until it answers (or the transaction is closed). */
  private storeWrite(tx: OpenTx, key: string, value: string, then: (r: { succeeded: boolean; previous: string | null }) => void): void {
    const round = (): void => {
      if (tx.gone) return;
      withRetries<CasResult>(this, this.random, this.opts.timing.retry, (c) => this.store.casCreate(key, value, c), (o) => {
        if (o.ok) return then(o.value);
        this.after(this.opts.timing.retry.maxMs, round);
      });
    };
    round();
  }

  private armTimer(tx: OpenTx, atMs: number): void {
    if (tx.timer !== undefined) tx.timer.cancelled = true;
    tx.timer = this.after(atMs - this.nowMs, () => {
      tx.timer = undefined;
      this.step(tx, { type: 'deadlineReached', nowMs: this.nowMs });
    });
  }

  private helpDecide(tx: OpenTx): void {
    this.count('participant help-decide');
    const helper = { id: `participant:${this.name}`, guardWrites: this.opts.guardWrites };
    finishTransaction(this, this.store, this.random, this.opts.timing.retry, tx.id, helper, this.nowMs, (o) => {
      if (o.ok && o.value !== undefined) return this.step(tx, { type: 'decisionObserved', decision: o.value });
      // Not decidable yet, or the store did not answer: ask again a little later.
      if (!tx.gone) this.armTimer(tx, this.nowMs + this.opts.timing.helpRetryMs + this.random.int(this.opts.timing.helpRetryMs * 2));
    });
  }

  // ---------------------------------------------------------------------------
  // The watch

  private onWatch(e: TxWatchEvent): void {
    if (e.value === null) return;
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    if (parsed.kind === 'tx') {
      const record = decodeTxRecord(e.value);
      if (record.state !== 'preparing') return;
      if (!record.participants.some((p) => p.name === this.name)) {
        // Frozen without us: work we hold for it can never count.
        const mine = this.open.get(parsed.id);
        if (mine !== undefined) this.step(mine, { type: 'excluded' });
        return;
      }
      // A frozen record naming us: prepare, even if the coordinator's hint never comes (after the delay).
      this.prepareLater(parsed.id, record.deadline);
    } else if (parsed.kind === 'decision') {
      this.observeDecision(parsed.id, decodeDecision(e.value));
    }
  }

  /** watch.ts `prepareLater`: the delay lets abort fills land first (a prepare that could only lose). */
  private prepareLater(txId: string, deadline: number): void {
    if (this.delayed.has(txId)) return;
    this.delayed.add(txId);
    this.after(this.opts.timing.watchPrepareDelayMs, () => {
      this.delayed.delete(txId);
      if (this.ready || !this.opts.holdPreparesUntilReady) this.prepareNow(txId, deadline);
      else this.held.set(txId, deadline);
    });
  }

  private prepareNow(txId: string, deadline: number): void {
    // By now the transaction may be decided (then the machine casts no vote) or finished here.
    const tx = this.open.get(txId) ?? (this.log.get(txId)?.ackedAt !== undefined ? undefined : this.openTx(txId));
    if (tx !== undefined) this.step(tx, { type: 'prepareRequested', deadline });
  }

  private observeDecision(txId: string, decision: Decision): void {
    let tx = this.open.get(txId);
    const record = this.log.get(txId);
    if (tx === undefined) {
      if (record === undefined || record.ackedAt !== undefined) return; // not ours, or done
      tx = this.openTx(txId);
    }
    // A commit needs our durable "yes" if we were frozen in: without one, it committed without us.
    if (decision === 'commit' && record?.vote?.vote !== 'yes') this.step(tx, { type: 'excluded' });
    else this.step(tx, { type: 'decisionObserved', decision });
  }

  private resyncAll(): void {
    for (const tx of [...this.open.values()]) {
      this.store.get(decisionKey(tx.id), (o) => {
        if (o.ok && o.value.kv !== null) this.step(tx, { type: 'decisionObserved', decision: decodeDecision(o.value.kv.value) });
      });
    }
  }
}

function toAnswer(reply: ParticipantReply): ParticipantAnswer {
  if (reply.kind === 'workAccepted') return { ok: true };
  if (reply.kind === 'vote') return { ok: true, vote: reply.vote };
  return { ok: false, code: reply.code };
}
