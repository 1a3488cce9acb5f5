/**
 * Performs the effects a ParticipantTxMachine asks for (machine.ts states
 * the order that makes it safe) and feeds each result back:
 *
 * - log writes: each durable before its `logged` event; a failed one is
 *   fatal (the log is unusable until a restart);
 * - the service's callbacks: prepare (validate and lock), commit and abort
 *   (retried until they succeed: a decided transaction cannot be refused),
 *   restore (locks of an in-doubt transaction after a restart);
 * - store writes: the vote and the ack, CAS create-if-absent, retried in
 *   rounds until they answer;
 * - the deadline timer, and helping decide past it (coordinator/runtime/finish.ts).
 */
import { AppError } from '../lib/errors.js';
import type { Timers } from '../lib/timers.js';
import type { Random } from '../lib/random.js';
import type { FailpointHook } from '../lib/failpoints.js';
import { finishTransaction } from '../coordinator/runtime/index.js';
import type { Logger } from '../lib/logger.js';
import type { Counter } from '../lib/metrics.js';
import { decodeVote, type Decision, type JsonValue } from '../coordinator/protocol/index.js';
import { backoffDelayMs, type BackoffPolicy } from '../lib/retry.js';
import { withStoreRetries, type TxCasResult, type TxStore } from '../coordinator/txstore/index.js';
import { ParticipantLogError, type LogRecord, type ParticipantLog } from './log.js';
import type { ParticipantEffect } from './machine.js';
import type { OpenTx, OpenTxTable } from './open-tx.js';
import type { ParticipantService, PrepareAnswer } from './options.js';

export interface ParticipantCounters {
  readonly prepared: Counter;
  readonly refused: Counter;
  readonly committed: Counter;
  readonly aborted: Counter;
  readonly helped: Counter;
}

export interface ParticipantEffectDeps {
  readonly name: string;
  readonly store: TxStore;
  readonly log: ParticipantLog;
  readonly service: ParticipantService;
  readonly timers: Timers;
  readonly random: Random;
  readonly logger: Logger;
  readonly failpoints: FailpointHook;
  /** Store writes and service callbacks; each round has `maxAttempts`, and rounds repeat until done. */
  readonly retry: BackoffPolicy;
  readonly helpGraceMs: number;
  readonly helpRetryIntervalMs: number;
  readonly counters: ParticipantCounters;
}

/** The longest delay a timer takes (Node's limit; a longer one would fire at once). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export class ParticipantEffects {
  constructor(
    private readonly deps: ParticipantEffectDeps,
    private readonly txs: OpenTxTable,
  ) {}

  private get stopped(): boolean {
    return this.txs.stopSignal.aborted;
  }

  perform(tx: OpenTx, e: ParticipantEffect): void {
    const d = this.deps;
    switch (e.type) {
      case 'logWork':
        this.logged(tx, () => d.log.recordWork(tx.id, e.work, d.timers.nowMs()), () => d.failpoints.hit('participant.afterWork'));
        return;
      case 'validate':
        void this.txs.track(this.validate(tx, e.work));
        return;
      case 'logVote':
        this.logged(tx, () => d.log.recordVote(tx.id, e.vote, e.reason, d.timers.nowMs()));
        return;
      case 'writeVote':
        d.failpoints.hit('participant.afterPrepareDurable');
        void this.txs.track(this.storeWrite(tx, e.key, e.value)).then((r) => {
          if (r === undefined) return;
          if (r.succeeded) (decodeVote(e.value).vote === 'yes' ? d.counters.prepared : d.counters.refused).inc();
          d.failpoints.hit('participant.afterVote');
          this.txs.step(tx, { type: 'voteWritten', succeeded: r.succeeded, previous: r.previous });
        });
        return;
      case 'apply':
        void this.txs.track(this.apply(tx, e.decision));
        return;
      case 'logApplied':
        this.logged(tx, () => d.log.recordApplied(tx.id, e.decision, d.timers.nowMs()));
        return;
      case 'writeAck':
        d.failpoints.hit('participant.afterApply');
        void this.txs.track(this.storeWrite(tx, e.key, e.value)).then((r) => {
          if (r !== undefined) this.txs.step(tx, { type: 'ackWritten' });
        });
        return;
      case 'logAcked':
        this.logged(tx, () => d.log.recordAcked(tx.id, d.timers.nowMs()));
        return;
      case 'restoreLocks': {
        const restore = d.service.restore?.bind(d.service) ?? (async (id: string, work: JsonValue) => void (await d.service.prepare(id, work)));
        tx.restoring = Promise.resolve()
          .then(() => restore(tx.id, e.work))
          .catch((err: unknown) => d.logger('error', 'restoring locks failed', { txId: tx.id, error: err }));
        return;
      }
      case 'setTimer':
        // The machine's only timer is the deadline, after which it helps decide: give the coordinator a head start.
        this.armTimer(tx, e.atMs + d.helpGraceMs + d.random.int(Math.floor(d.helpGraceMs / 2) + 1));
        return;
      case 'helpDecide':
        void this.txs.track(this.helpDecide(tx));
        return;
      case 'reply': {
        const w = tx.waiters.get(e.requestId);
        if (w === undefined) return;
        tx.waiters.delete(e.requestId);
        w.cancelTimeout();
        w.resolve(e.reply);
        return;
      }
    }
  }

  /** A log write, then its `logged` event. A failed write is fatal: the log is unusable until restart. */
  private logged(tx: OpenTx, write: () => Promise<LogRecord>, after?: () => void): void {
    if (this.stopped) return;
    this.txs.track(write()).then(
      (record) => {
        after?.();
        this.txs.step(tx, { type: 'logged', record });
      },
      (e: unknown) => {
        if (e instanceof ParticipantLogError && (e.code === 'log_full' || e.code === 'invalid_tx_id')) {
          this.txs.unload(tx, e); // refused new work; nothing was logged
          return;
        }
        this.txs.fatal(e);
      },
    );
  }

  private async validate(tx: OpenTx, work: JsonValue): Promise<void> {
    let answer: PrepareAnswer;
    try {
      answer = await this.deps.service.prepare(tx.id, work);
      if (answer.vote !== 'yes' && answer.vote !== 'no') answer = { vote: 'no', reason: 'prepare returned no vote' };
    } catch (e) {
      answer = { vote: 'no', reason: `prepare failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    this.txs.step(tx, answer.reason === undefined ? { type: 'validated', vote: answer.vote } : { type: 'validated', vote: answer.vote, reason: answer.reason });
  }

  private async apply(tx: OpenTx, decision: Decision): Promise<void> {
    const d = this.deps;
    d.failpoints.hit('participant.beforeApply');
    await tx.restoring;
    for (let round = 0; !this.stopped; round++) {
      try {
        await (decision === 'commit' ? d.service.commit(tx.id) : d.service.abort(tx.id));
        (decision === 'commit' ? d.counters.committed : d.counters.aborted).inc();
        this.txs.step(tx, { type: 'applied', decision });
        return;
      } catch (e) {
        // A decided transaction cannot be refused: keep trying, and say so loudly.
        d.logger('error', `service ${decision} failed; retrying`, { txId: tx.id, error: e });
        await d.timers.sleep(backoffDelayMs(round, d.retry, d.random), this.txs.stopSignal);
      }
    }
  }

  /**
   * A CAS create-if-absent, retried in rounds until it answers, or until the
   * node stops or the transaction is done here (undefined). Every attempt
   * checks first: a retry that outlived its transaction would recreate a key
   * garbage collection deleted (an orphan "yes" the 2PC simulation caught).
   */
  private async storeWrite(tx: OpenTx, key: string, value: string): Promise<TxCasResult | undefined> {
    const d = this.deps;
    const signal = this.txs.stopSignal;
    const attempt = (): Promise<TxCasResult> => (tx.gone ? Promise.reject(new AppError('tx_unloaded', 409, `${tx.id} is done here`)) : d.store.casCreate(key, value));
    for (let round = 0; !signal.aborted && !tx.gone; round++) {
      try {
        return await withStoreRetries(attempt, d.retry, d.random, d.timers, { signal });
      } catch (e) {
        if (tx.gone) break;
        d.logger('warn', 'store write failed; retrying', { key, error: e });
        await d.timers.sleep(d.retry.maxMs, signal);
      }
    }
    return undefined;
  }

  /** Steps `deadlineReached` once the wall clock reaches `atMs` (re-armed if the timer fired early or was capped). */
  private armTimer(tx: OpenTx, atMs: number): void {
    const t = this.deps.timers;
    tx.cancelTimer?.();
    tx.cancelTimer = t.after(Math.min(Math.max(0, atMs - t.nowMs()), MAX_TIMER_DELAY_MS), () => {
      tx.cancelTimer = undefined;
      const nowMs = t.nowMs();
      if (nowMs < atMs) this.armTimer(tx, atMs);
      else this.txs.step(tx, { type: 'deadlineReached', nowMs });
    });
  }

  private async helpDecide(tx: OpenTx): Promise<void> {
    const d = this.deps;
    d.counters.helped.inc();
    let decision: Decision | undefined;
    try {
      decision = await finishTransaction(d.store, tx.id, { helperId: `participant:${d.name}`, nowMs: d.timers.nowMs(), retry: d.retry, random: d.random, timers: d.timers });
    } catch (e) {
      d.logger('warn', 'helping decide failed; will try again', { txId: tx.id, error: e });
    }
    if (decision !== undefined) {
      this.txs.step(tx, { type: 'decisionObserved', decision });
      return;
    }
    // Not decidable yet (or the store did not answer): ask again a little later, jittered to 50%..150%.
    const waitMs = Math.floor(d.helpRetryIntervalMs / 2) + d.random.int(d.helpRetryIntervalMs + 1);
    if (!tx.gone) this.armTimer(tx, d.timers.nowMs() + waitMs);
  }
}
