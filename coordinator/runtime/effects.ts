/**
 * Performs the effects a CoordinatorMachine asks for (machine.ts states the
 * contract) and feeds each result back to the machine:
 *
 * - store writes are CAS (for begin, a txn that also checks that no
 *   compacted record of the id exists; for vote fills and the decision, a
 *   txn that also checks that the frozen record is still there), retried
 *   with exponential backoff and jitter a bounded number of times; the
 *   machine adopts what the store holds whichever CAS won. When the attempts run out the transaction is dropped
 *   and the recovery loop or the next request loads it again;
 * - prepare and decision calls to participants are hints (hints.ts);
 * - the deadline timer, the answers to waiting requests, and garbage
 *   collection of a finished transaction (gc.ts).
 */
import type { CoordinatorEffect, CoordinatorEvent, CoordinatorReply, RequestId } from '../core/index.js';
import { doneKey } from '../protocol/index.js';
import type { LiveTx } from './live-tx.js';
import { decodeTxRecord, txKey, type Decision, type Participant } from '../protocol/index.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import { TxCollectedError, type RuntimeDeps } from './runtime-deps.js';
import { casValueWithVote, guardedCreate, TxStoreError, withStoreRetries, type TxCasResult } from '../txstore/index.js';

/** The pause before a prepare hint is repeated: this many store backoff bases, jittered up to twice. */
const PREPARE_RETRY_BACKOFF_BASES = 4;
/** Attempts of the begin txn while the record and its compacted record both vanish between reads. */
const CREATE_TX_ATTEMPTS = 3;
/** Longest single timer (a larger setTimeout delay fires at once); a later deadline re-arms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;
const MS_PER_SECOND = 1_000;

/** What the effect runner needs from the runtime that owns the transactions. */
export interface EffectHost {
  step(tx: LiveTx, event: CoordinatorEvent): void;
  /** Drops the transaction; its waiters get `error` (or a 503). */
  unload(tx: LiveTx, error?: unknown): void;
  /** Drops the transaction if nothing more is needed from this process. */
  maybeUnload(tx: LiveTx): void;
  /** Re-reads the transaction from the store and feeds what it holds. */
  resync(tx: LiveTx): Promise<void>;
  /** Keeps `p` until it settles, so stop() can wait for it. */
  track<T>(p: Promise<T>): Promise<T>;
}

export class EffectRunner {
  private readonly retry: BackoffPolicy;
  /** Prepare hints in flight, by participant URL. */
  private readonly preparesInFlight = new Map<string, number>();

  constructor(
    private readonly deps: RuntimeDeps,
    private readonly host: EffectHost,
  ) {
    const c = deps.config;
    this.retry = { maxAttempts: c.storeWriteMaxAttempts, baseMs: c.storeBackoffBaseMs, maxMs: c.storeBackoffMaxMs };
  }

  perform(tx: LiveTx, e: CoordinatorEffect): void {
    switch (e.type) {
      case 'writeTx':
        this.write(
          tx,
          () => this.writeTx(tx.id, e),
          (r) => {
            // The vote first: the machine must not fill it again once it sees the record frozen.
            if (e.withVote !== undefined) this.host.step(tx, { type: 'voteWritten', participant: e.withVote.participant, succeeded: r.voteCreated, previous: null });
            // Succeeded or not, the record the machine adopts next (ours, or `previous`) is the store's
            // as of r.revision: a watched record event at or below it is older (the 2PC simulation caught
            // a failed freeze CAS adopting a frozen `previous`, then a lagging watch's active record).
            tx.txRevision = Math.max(tx.txRevision, r.revision);
            if (r.succeeded) {
              tx.knownRevision = Math.max(tx.knownRevision, r.revision);
              this.afterTxWrite(e.expected === null, e.value);
            }
            this.host.step(tx, { type: 'txWritten', value: e.value, succeeded: r.succeeded, previous: r.previous });
            // A begin that found the record already there missed its history: read it all.
            if (e.expected === null && !r.succeeded) void this.host.resync(tx);
          },
        );
        return;
      case 'writeVote':
        this.write(tx, () => guardedCreate(this.deps.store, e.key, e.value, { key: txKey(tx.id), value: e.guard }), (r) => {
          if (r.guardFailed) this.collectedMeanwhile(tx, r.revision);
          else this.host.step(tx, { type: 'voteWritten', participant: e.participant, succeeded: r.succeeded, previous: r.previous });
        });
        return;
      case 'writeDecision':
        this.write(tx, () => guardedCreate(this.deps.store, e.key, e.value, { key: txKey(tx.id), value: e.guard }), (r) => {
          if (r.guardFailed) return this.collectedMeanwhile(tx, r.revision);
          if (r.succeeded) {
            (e.decision === 'commit' ? this.deps.metrics.committed : this.deps.metrics.aborted).inc();
            this.deps.failpoints.hit('coordinator.afterDecision');
          }
          this.host.step(tx, { type: 'decisionWritten', succeeded: r.succeeded, previous: r.previous });
        });
        return;
      case 'sendPrepare':
        if (tx.hinted.has(e.participant.name)) return; // sent early, with the freeze
        tx.hinted.add(e.participant.name);
        void this.sendPrepare(tx, e.participant, e.deadline);
        return;
      case 'sendDecision':
        this.hintDecisionLater(tx, e.participant, e.decision);
        return;
      case 'setTimer':
        this.armDeadline(tx, e.atMs);
        return;
      case 'reply':
        this.reply(tx, e.requestId, e.reply);
        return;
      case 'finished':
        void this.host.track(this.collect(tx));
        return;
    }
  }

  /**
   * The prepare hint, retried once on a failure that says nothing reached
   * the participant; not sent while `maxPrepareHintsPerParticipant` are in
   * flight to it (config.ts says why).
   */
  async sendPrepare(tx: LiveTx, participant: Participant, deadline: number): Promise<void> {
    const c = this.deps.config;
    const inflight = this.preparesInFlight.get(participant.url) ?? 0;
    if (inflight >= c.maxPrepareHintsPerParticipant) return void this.deps.metrics.preparesSkipped.inc();
    this.preparesInFlight.set(participant.url, inflight + 1);
    try {
      for (let attempt = 0; attempt < c.prepareHintAttempts; attempt++) {
        if (tx.gone || this.deps.timers.nowMs() >= deadline) return;
        const r = await this.deps.hints.prepare(participant.url, tx.id, deadline);
        if (tx.preparesAnswered++ === 0) this.deps.failpoints.hit('coordinator.afterSomePrepares');
        // A participant that answered (even "no", or 4xx) has seen the request: do not repeat it.
        if (r.ok || r.skipped === true || (r.status !== undefined && r.status < 500)) return;
        this.deps.metrics.hintFailures.inc();
        await this.deps.timers.sleep(c.storeBackoffBaseMs * PREPARE_RETRY_BACKOFF_BASES * (1 + this.deps.random.float()));
      }
    } finally {
      const left = (this.preparesInFlight.get(participant.url) ?? 1) - 1;
      if (left === 0) this.preparesInFlight.delete(participant.url);
      else this.preparesInFlight.set(participant.url, left);
    }
  }

  /** The decision hint, only for a participant that has not acked by then (config `decisionHintDelayMs`). */
  private hintDecisionLater(tx: LiveTx, participant: Participant, decision: Decision): void {
    const cancel = this.deps.timers.after(this.deps.config.decisionHintDelayMs, () => {
      tx.decisionHintTimers.delete(cancel);
      // Gone: collected (everyone acked) or dropped (the recovery loop tells the participants again).
      if (tx.gone || tx.machine?.view().acks.has(participant.name) === true) return;
      void this.deps.hints.decision(participant.url, tx.id, decision).then((r) => {
        if (!r.ok) this.deps.metrics.hintFailures.inc();
      });
    });
    tx.decisionHintTimers.add(cancel);
  }

  /**
   * A guarded write found the frozen record gone: another coordinator
   * collected the transaction. The machine learns it (its waiters then read
   * the compacted record), and later keys of it are orphans (watch-feed.ts).
   */
  private collectedMeanwhile(tx: LiveTx, revision: number): void {
    this.deps.metrics.collectedMeanwhile.inc();
    tx.deletedRevision ??= revision;
    tx.txRevision = Math.max(tx.txRevision, revision);
    this.host.step(tx, { type: 'txObserved', raw: null });
  }

  private afterTxWrite(created: boolean, value: string): void {
    if (created) {
      this.deps.metrics.begun.inc();
      this.deps.failpoints.hit('coordinator.afterBegin');
    } else if (decodeTxRecord(value).state === 'preparing') {
      this.deps.failpoints.hit('coordinator.afterFreeze');
    }
  }

  private async writeTx(id: string, e: Extract<CoordinatorEffect, { type: 'writeTx' }>): Promise<TxCasResult & { voteCreated: boolean }> {
    if (e.expected === null) return { ...(await this.createTx(id, e.key, e.value)), voteCreated: false };
    return casValueWithVote(this.deps.store, e.key, e.expected, e.value, e.withVote);
  }

  /**
   * Creates `tx/{id}` only if neither it nor a compacted record of the same
   * id exists (an Idempotency-Key replayed after collection must not begin
   * the transaction again). Answers like a CAS create-if-absent.
   */
  private async createTx(id: string, key: string, value: string): Promise<TxCasResult> {
    for (let attempt = 0; attempt < CREATE_TX_ATTEMPTS; attempt++) {
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

  private write<R>(tx: LiveTx, f: () => Promise<R>, then: (r: R) => void): void {
    tx.inflight++;
    this.host.track(withStoreRetries(f, this.retry, this.deps.random, this.deps.timers, { onRetry: () => this.deps.metrics.storeRetries.inc() })).then(
      (r) => {
        tx.inflight--;
        then(r);
        this.host.maybeUnload(tx);
      },
      (e: unknown) => {
        tx.inflight--;
        if (!(e instanceof TxCollectedError)) this.deps.log('warn', 'store write failed; dropping the transaction until recovery', { txId: tx.id, error: e });
        // The machine still has this write in flight: drop it; a reload starts from the store.
        this.host.unload(tx, e);
      },
    );
  }

  private armDeadline(tx: LiveTx, atMs: number): void {
    tx.cancelDeadline?.();
    const delay = Math.max(0, atMs - this.deps.timers.nowMs());
    tx.cancelDeadline = this.deps.timers.after(Math.min(delay, MAX_TIMER_DELAY_MS), () => {
      tx.cancelDeadline = undefined;
      const nowMs = this.deps.timers.nowMs();
      if (nowMs < atMs) this.armDeadline(tx, atMs);
      else this.host.step(tx, { type: 'deadlineReached', nowMs });
    });
  }

  private reply(tx: LiveTx, requestId: RequestId, reply: CoordinatorReply): void {
    const w = tx.waiters.get(requestId);
    if (w === undefined) return; // timed out already
    tx.waiters.delete(requestId);
    w.cancelTimeout();
    if (w.commitStartMs !== undefined && reply.kind === 'outcome') this.deps.metrics.commitLatency.observe((this.deps.timers.monotonicMs() - w.commitStartMs) / MS_PER_SECOND);
    w.resolve(reply);
  }

  /** Collects from what this process saw when it saw it all (no read); otherwise, or when that races, from a fresh read. */
  private async collect(tx: LiveTx): Promise<void> {
    tx.inflight++;
    try {
      const seen = tx.seenSnapshot();
      const first = seen === undefined ? undefined : await this.deps.collector.collectSnapshot(seen);
      const r = first?.collected === true ? first : await this.deps.collector.collect(tx.id);
      if (r.collected) this.deps.metrics.collected.inc();
    } catch (e) {
      this.deps.log('warn', 'garbage collection failed; the recovery loop will retry', { txId: tx.id, error: e });
    } finally {
      tx.inflight--;
      this.host.unload(tx);
    }
  }
}
