/**
 * The participant library: a service embeds a `ParticipantNode`, supplies
 * its `prepare` (validate and lock), `commit` and `abort` callbacks
 * (options.ts), mounts the routes (routes.ts), and the library runs the
 * protocol with one pure ParticipantTxMachine per open transaction
 * (machine.ts states the order that makes it safe), a durable local log
 * (log.ts) and the store:
 *
 * - work arrives (`receiveWork`, or `POST /2pc/work`) and is logged durably
 *   before it is accepted;
 * - prepare arrives as a hint (`POST /2pc/prepare`) or from the store watch
 *   (watch.ts: a `tx/{id}` record frozen with this participant in it, after
 *   a short delay); the vote is logged durably, THEN written to the store by
 *   CAS create-if-absent, and the answer is the vote the store holds;
 * - the decision arrives from the watch (`tx/{id}/decision`) or as a hint
 *   (`POST /2pc/decision`, checked against the store before it is believed);
 *   it is applied once, logged, then acknowledged by CAS on the ack key
 *   (effects.ts performs all of this);
 * - a "yes" voter still undecided at the deadline helps decide: it runs the
 *   coordinator's machine from the store (coordinator/runtime/finish.ts), which fills
 *   missing votes with "no" by CAS and records the decision by CAS;
 * - at start, every unacknowledged log record is recovered (recovery.ts)
 *   before the node reports ready.
 *
 * This file holds the node's lifecycle, its API, and the table of open
 * transactions. The service's callbacks must be idempotent (a crash between
 * applying and logging replays them) and `commit`/`abort` must eventually
 * succeed: the library retries them with backoff, because a decided
 * transaction cannot be refused.
 */
import { systemClock, type Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { systemRandom } from '../lib/random.js';
import { Failpoints } from '../lib/failpoints.js';
import { stderrLogger, type Logger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { decisionKey, decodeDecision, isValidTxId, ProtocolError, TX_PREFIX, type Decision, type JsonValue, type VoteValue } from '../coordinator/protocol/index.js';
import type { TxStore } from '../coordinator/txstore/index.js';
import { PrefixWatcher } from '../coordinator/txstore/index.js';
import { ParticipantEffects, type ParticipantCounters } from './effects.js';
import { ParticipantLog, type LogRecord } from './log.js';
import { isInDoubt, ParticipantTxMachine, phaseOf, type ParticipantEvent, type ParticipantPhase, type ParticipantReply } from './machine.js';
import { OpenTx, type OpenTxTable } from './open-tx.js';
import type { ParticipantNodeOptions, ParticipantTxView } from './options.js';
import { recoverAll } from './recovery.js';
import { ParticipantWatch } from './watch.js';

export type { ParticipantNodeOptions, ParticipantService, ParticipantTxView, PrepareAnswer } from './options.js';

export class ParticipantNode {
  readonly name: string;
  readonly registry = new MetricsRegistry();
  private readonly store: TxStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly maxOpenTxs: number;
  private readonly maxWorkChars: number;
  private readonly requestTimeoutMs: number;
  private readonly retentionMs: number;
  private readonly compactIntervalMs: number;
  private readonly onFatal: (e: unknown) => void;
  private readonly open = new Map<string, OpenTx>();
  private readonly effects: ParticipantEffects;
  private readonly watch: ParticipantWatch;
  private readonly watcher: PrefixWatcher;
  private readonly stopAc = new AbortController();
  private compactTimer: NodeJS.Timeout | undefined;
  /** Log writes, store writes and callbacks in flight: stop() lets them settle. */
  private readonly inflight = new Set<Promise<unknown>>();
  private nextRequest = 0;
  private readyFlag = false;

  private constructor(
    readonly log: ParticipantLog,
    opts: ParticipantNodeOptions,
  ) {
    this.name = opts.name;
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    const random = opts.random ?? systemRandom;
    this.logger = opts.log ?? stderrLogger(`participant ${opts.name}`);
    this.maxOpenTxs = opts.maxOpenTxs ?? 10_000;
    this.maxWorkChars = opts.maxWorkChars ?? 64 * 1024;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 20_000;
    this.retentionMs = opts.retentionMs ?? 600_000;
    this.compactIntervalMs = opts.compactIntervalMs ?? 60_000;
    this.onFatal =
      opts.onFatal ??
      ((e) => {
        this.logger('error', 'participant log failed; exiting so a restart recovers from disk', { error: e });
        process.exit(1);
      });
    const r = this.registry;
    const counters: ParticipantCounters = {
      prepared: r.counter('twopc_participant_votes_yes_total', 'Yes votes written by this participant.'),
      refused: r.counter('twopc_participant_votes_no_total', 'No votes written by this participant.'),
      committed: r.counter('twopc_participant_commits_total', 'Commits applied.'),
      aborted: r.counter('twopc_participant_aborts_total', 'Aborts applied.'),
      helped: r.counter('twopc_participant_help_decide_total', 'Times this participant helped decide past a deadline.'),
    };
    r.gauge('twopc_participant_in_doubt', 'Transactions voted yes and not decided yet.', () => [...this.open.values()].filter((t) => isInDoubt(t.machine.logRecord)).length);
    r.gauge('twopc_participant_open_transactions', 'Transactions not acknowledged yet.', () => this.open.size);
    // The helpers reach the table through closures, so its methods stay private to the node.
    const table: OpenTxTable = {
      get: (txId) => this.open.get(txId),
      tryOpen: (txId) => this.tryOpen(txId),
      values: () => this.open.values(),
      step: (tx, event) => this.step(tx, event),
      unload: (tx, error) => this.unload(tx, error),
      track: (p) => this.track(p),
      fatal: (e) => this.fatal(e),
      stopSignal: this.stopAc.signal,
    };
    this.effects = new ParticipantEffects(
      {
        name: this.name,
        store: this.store,
        log,
        service: opts.service,
        clock: this.clock,
        random,
        logger: this.logger,
        failpoints: opts.failpoints ?? new Failpoints(),
        retry: opts.retry ?? { maxAttempts: 6, baseMs: 25, maxMs: 1_000 },
        helpGraceMs: opts.helpGraceMs ?? 1_000,
        counters,
      },
      table,
    );
    this.watch = new ParticipantWatch(this.name, log, this.store, this.logger, table, opts.watchPrepareDelayMs ?? 250);
    this.watcher = new PrefixWatcher({ store: this.store, prefix: TX_PREFIX, onEvent: (e) => this.watch.onEvent(e), onResync: () => void this.watch.resyncAll(), random, log: this.logger });
  }

  static async open(opts: ParticipantNodeOptions): Promise<ParticipantNode> {
    const log = await ParticipantLog.open({ path: opts.logPath, participant: opts.name });
    return new ParticipantNode(log, opts);
  }

  get ready(): boolean {
    return this.readyFlag;
  }

  /**
   * Starts the watch, then recovers every unacknowledged transaction of the
   * log; resolves once the locks of in-doubt transactions are back (serve
   * nothing, and prepare nothing the watch asks for, before that).
   */
  async start(): Promise<void> {
    await this.watcher.start(); // first: no decision written during recovery can be missed
    await recoverAll(this);
    this.watch.release();
    this.compactTimer = setInterval(() => {
      void this.track(this.log.compact(this.clock.nowMs(), this.retentionMs)).catch((e: unknown) => this.fatal(e));
    }, this.compactIntervalMs);
    this.compactTimer.unref();
    this.readyFlag = true;
  }

  async stop(): Promise<void> {
    this.readyFlag = false;
    this.stopAc.abort();
    if (this.compactTimer !== undefined) clearInterval(this.compactTimer);
    for (const tx of [...this.open.values()]) this.unload(tx, new AppError('shutting_down', 503, 'the participant is shutting down'));
    await this.watcher.stop();
    this.watch.stop();
    // Whatever is in flight finishes (a log write cannot be taken back); its results are ignored.
    await Promise.allSettled([...this.inflight]);
    await this.log.close();
  }

  private get stopped(): boolean {
    return this.stopAc.signal.aborted;
  }

  /** Tracks a promise until it settles. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  // -------------------------------------------------------------------------
  // The API the routes (and an embedding service) call

  /** Hands this participant its work for a transaction; resolves once it is durable. */
  async receiveWork(txId: string, work: JsonValue): Promise<void> {
    this.checkTxId(txId);
    if (JSON.stringify(work).length > this.maxWorkChars) throw new AppError('work_too_large', 413, `work is over ${this.maxWorkChars} characters`);
    const tx = this.openTx(txId, true);
    const reply = await this.request(tx, (requestId) => ({ type: 'workReceived', requestId, work }));
    if (reply.kind === 'error') throw new AppError(reply.code, 409, reply.message);
  }

  /** The prepare hint: votes (if not done yet) and answers with the vote the store holds. */
  async prepare(txId: string, deadline?: number): Promise<VoteValue> {
    this.checkTxId(txId);
    const done = this.log.get(txId);
    if (done?.applied !== undefined && !this.open.has(txId)) {
      // A late or repeated hint for a transaction decided here long ago: answer from the log.
      return done.vote?.vote ?? (done.applied.decision === 'commit' ? 'yes' : 'no');
    }
    const tx = this.openTx(txId, true);
    const reply = await this.request(tx, (requestId) => (deadline === undefined ? { type: 'prepareRequested', requestId } : { type: 'prepareRequested', requestId, deadline }));
    if (reply.kind === 'vote') return reply.vote;
    if (reply.kind === 'error') throw new AppError(reply.code, 409, reply.message);
    throw new Error(`unexpected reply ${reply.kind} to prepare`);
  }

  /**
   * The decision hint. Believed only once the store confirms it (a hint may
   * be late, duplicated, reordered, or wrong); answers what this participant
   * knows now. Applying continues in the background.
   */
  async decisionHint(txId: string, decision: Decision): Promise<{ txId: string; decision: Decision; phase: ParticipantPhase }> {
    this.checkTxId(txId);
    // Already learned from the store (the watch usually wins the race with the hint): no read needed.
    const known = this.open.get(txId)?.machine.known.decision;
    if (known !== undefined) {
      if (known !== decision) throw new AppError('decision_conflict', 409, `the store's decision for ${txId} is ${known}, not ${decision}`);
      return { txId, decision, phase: phaseOf(this.log.get(txId)) };
    }
    const kv = await this.store.get(decisionKey(txId));
    if (kv === null) {
      const phase = phaseOf(this.log.get(txId));
      // Collected after everyone acked (then we applied it), or not recorded yet (the watch will bring it).
      if (phase === 'committed' || phase === 'aborted') return { txId, decision: phase === 'committed' ? 'commit' : 'abort', phase };
      throw new AppError('decision_not_recorded', 409, `the store holds no decision for ${txId}`);
    }
    const stored = decodeDecision(kv.value);
    if (stored !== decision) throw new AppError('decision_conflict', 409, `the store's decision for ${txId} is ${stored}, not ${decision}`);
    await this.watch.observeHintedDecision(txId, stored);
    return { txId, decision: stored, phase: phaseOf(this.log.get(txId)) };
  }

  /** The operator's view of the local log, newest first. */
  transactions(opts: { phase?: ParticipantPhase; limit: number }): ParticipantTxView[] {
    const out: ParticipantTxView[] = [];
    const records = this.log.list();
    for (let i = records.length - 1; i >= 0 && out.length < opts.limit; i--) {
      const r = records[i] as LogRecord;
      const phase = phaseOf(r);
      if (opts.phase !== undefined && phase !== opts.phase) continue;
      out.push({
        txId: r.txId,
        phase,
        inDoubt: isInDoubt(r),
        work: r.work,
        vote: r.vote?.vote ?? null,
        decision: r.applied?.decision ?? null,
        receivedAt: r.receivedAt,
        appliedAt: r.applied?.at ?? null,
        ackedAt: r.ackedAt ?? null,
      });
    }
    return out;
  }

  // -------------------------------------------------------------------------
  // Used by recovery.ts

  /** Opens a logged transaction and steps `recover` with what the store holds; resolves once its locks are back. */
  async recoverTx(record: LogRecord, stored: Extract<ParticipantEvent, { type: 'recover' }>['stored'], frozenWithoutUs: boolean): Promise<void> {
    const tx = this.openTx(record.txId, false);
    // Judge by the log as it is now, not as recovery read it at start: the
    // watch may have voted "yes" since, and a commit would then look like one
    // made without us (found by the 2PC simulation, `stale-recovery-record`).
    const current = this.log.get(record.txId) ?? record;
    const excluded = frozenWithoutUs || (stored.decision === 'commit' && current.vote?.vote !== 'yes');
    // Excluded first, so the recovery does not cast a vote for a transaction that is not ours.
    if (excluded) this.step(tx, { type: 'excluded' });
    this.step(tx, { type: 'recover', nowMs: this.clock.nowMs(), stored: excluded ? { ...stored, decision: stored.decision === 'abort' ? 'abort' : null } : stored });
    await tx.restoring;
  }

  get storeForRecovery(): TxStore {
    return this.store;
  }

  // -------------------------------------------------------------------------
  // Open transactions

  private checkTxId(txId: string): void {
    if (!isValidTxId(txId)) throw new ProtocolError('invalid_tx_id', 'transaction id must match [A-Za-z0-9][A-Za-z0-9._-]* and be at most 128 characters');
  }

  private openTx(txId: string, bounded: boolean): OpenTx {
    const existing = this.open.get(txId);
    if (existing !== undefined) return existing;
    if (bounded && this.open.size >= this.maxOpenTxs) {
      throw new AppError('too_many_transactions', 503, `${this.maxOpenTxs} transactions are open here; retry later`, { retryAfterSeconds: 1 });
    }
    const tx = new OpenTx(txId, new ParticipantTxMachine(txId, this.log.get(txId), { name: this.name }));
    this.open.set(txId, tx);
    return tx;
  }

  private tryOpen(txId: string): OpenTx | undefined {
    try {
      return this.openTx(txId, true);
    } catch {
      return undefined; // full: the deadline fills our vote with "no"
    }
  }

  private unload(tx: OpenTx, error?: unknown): void {
    if (tx.gone) return;
    tx.gone = true;
    if (this.open.get(tx.id) === tx) this.open.delete(tx.id);
    if (tx.timer !== undefined) clearTimeout(tx.timer);
    for (const w of tx.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(error ?? new AppError('unavailable', 503, `transaction ${tx.id} was closed before it answered`));
    }
    tx.waiters.clear();
  }

  private request(tx: OpenTx, makeEvent: (requestId: string) => ParticipantEvent): Promise<ParticipantReply> {
    const requestId = `q${this.nextRequest++}`;
    return new Promise<ParticipantReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        tx.waiters.delete(requestId);
        reject(new AppError('timeout', 504, `no answer within ${this.requestTimeoutMs} ms; retry`));
        if (tx.machine.logRecord?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
      }, this.requestTimeoutMs);
      timer.unref();
      tx.waiters.set(requestId, { resolve, reject, timer });
      this.step(tx, makeEvent(requestId));
    });
  }

  private step(tx: OpenTx, event: ParticipantEvent): void {
    if (tx.gone || this.stopped) return;
    const effects = tx.machine.step(event); // an AssertionError here is a bug: let it crash
    for (const e of effects) this.effects.perform(tx, e);
    const record = tx.machine.logRecord;
    // Acknowledged: nothing more to do here; the record stays in the log for the retention time.
    if (record?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
  }

  private fatal(e: unknown): void {
    if (!this.stopped) this.onFatal(e);
  }
}
