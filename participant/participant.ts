/**
 * The participant library: a service embeds a `ParticipantNode`, supplies
 * its `prepare` (validate and lock), `commit` and `abort` callbacks, mounts
 * the routes (routes.ts), and the library runs the protocol with one pure
 * ParticipantTxMachine per open transaction (machine.ts states the order that
 * makes it safe), a durable local log (log.ts) and the store:
 *
 * - work arrives (`receiveWork`, or `POST /2pc/work`) and is logged durably
 *   before it is accepted;
 * - prepare arrives as a hint (`POST /2pc/prepare`) or from the store watch
 *   (a `tx/{id}` record frozen with this participant in it); the vote is
 *   logged durably, THEN written to the store by CAS create-if-absent, and
 *   the answer is the vote the store holds;
 * - the decision arrives from the watch (`tx/{id}/decision`) or as a hint
 *   (`POST /2pc/decision`, checked against the store before it is believed);
 *   it is applied once, logged, then acknowledged by CAS on the ack key;
 * - a "yes" voter still undecided at the deadline helps decide: it runs the
 *   coordinator's machine from the store (coordinator/finish.ts), which fills
 *   missing votes with "no" by CAS and records the decision by CAS;
 * - at start, every unacknowledged log record is recovered (recovery.ts)
 *   before the node reports ready.
 *
 * The service's callbacks must be idempotent (a crash between applying and
 * logging replays them) and `commit`/`abort` must eventually succeed: the
 * library retries them with backoff, because a decided transaction cannot
 * be refused.
 */
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { systemRandom, type Random } from '../lib/random.js';
import { Failpoints } from '../coordinator/failpoints.js';
import { finishTransaction } from '../coordinator/finish.js';
import { stderrLogger, type Logger } from '../coordinator/logger.js';
import { MetricsRegistry, type Counter } from '../coordinator/metrics.js';
import { decisionKey, decodeDecision, decodeTxRecord, decodeVote, isValidTxId, parseKey, ProtocolError, TX_PREFIX, type Decision, type JsonValue, type VoteValue } from '../coordinator/protocol.js';
import { backoffDelayMs, sleep, withRetries, type BackoffPolicy } from '../coordinator/retry.js';
import type { CasResult, TxStore, TxWatchEvent } from '../coordinator/store.js';
import { PrefixWatcher } from '../coordinator/watcher.js';
import { ParticipantLog, ParticipantLogError, type LogRecord } from './log.js';
import { recoverAll } from './recovery.js';
import { isInDoubt, ParticipantTxMachine, phaseOf, type ParticipantEffect, type ParticipantEvent, type ParticipantPhase, type ParticipantReply } from './machine.js';

export interface PrepareAnswer {
  readonly vote: VoteValue;
  readonly reason?: string;
}

/** What the embedding service supplies. */
export interface ParticipantService {
  /** Validate the work and take its locks; "no" (or a throw) refuses. Called at most once per transaction and process. */
  prepare(txId: string, work: JsonValue): Promise<PrepareAnswer> | PrepareAnswer;
  /** Apply the prepared work and release its locks. Idempotent. */
  commit(txId: string): Promise<void> | void;
  /** Release whatever `prepare` took (nothing, if it never ran). Idempotent. */
  abort(txId: string): Promise<void> | void;
  /**
   * After a restart, take back the locks of a transaction that voted "yes"
   * and is not decided yet, before anything else is served. Default: call
   * `prepare` again and ignore its answer.
   */
  restore?(txId: string, work: JsonValue): Promise<void> | void;
}

export interface ParticipantNodeOptions {
  /** This participant's name, as enlisted with the coordinator: its vote and ack keys. */
  readonly name: string;
  readonly store: TxStore;
  readonly logPath: string;
  readonly service: ParticipantService;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  readonly failpoints?: Failpoints;
  /** Open (unacknowledged) transactions at once; new work past it is refused with 503. */
  readonly maxOpenTxs?: number;
  /** Serialized size of one transaction's work, in UTF-16 code units. */
  readonly maxWorkChars?: number;
  /** How long a prepare call waits for the vote to be in the store. */
  readonly requestTimeoutMs?: number;
  /** Backoff of store writes and service callbacks; each round has `maxAttempts`, and rounds repeat until done. */
  readonly retry?: BackoffPolicy;
  /** Acknowledged log records are kept this long (for the operator view), then compacted. */
  readonly retentionMs?: number;
  readonly compactIntervalMs?: number;
  /**
   * How long after the deadline an undecided "yes" starts helping decide
   * (jittered up to +50%): the coordinator acts at the deadline itself, so
   * waiting a little saves duplicate writes when it is alive.
   */
  readonly helpGraceMs?: number;
  /** A failed log write: the log is unusable until restart. Default: log and exit(1). */
  readonly onFatal?: (e: unknown) => void;
}

interface Waiter {
  readonly resolve: (r: ParticipantReply) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

class OpenTx {
  readonly waiters = new Map<string, Waiter>();
  timer: NodeJS.Timeout | undefined;
  /** Resolves once the service has taken back this transaction's locks (recovery). */
  restoring: Promise<void> = Promise.resolve();
  gone = false;
  constructor(
    readonly id: string,
    readonly machine: ParticipantTxMachine,
  ) {}
}

export interface ParticipantTxView {
  readonly txId: string;
  readonly phase: ParticipantPhase;
  readonly inDoubt: boolean;
  readonly work: JsonValue | null;
  readonly vote: VoteValue | null;
  readonly decision: Decision | null;
  readonly receivedAt: number;
  readonly appliedAt: number | null;
  readonly ackedAt: number | null;
}

export class ParticipantNode {
  readonly name: string;
  readonly registry = new MetricsRegistry();
  private readonly store: TxStore;
  private readonly service: ParticipantService;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly failpoints: Failpoints;
  private readonly maxOpenTxs: number;
  private readonly maxWorkChars: number;
  private readonly requestTimeoutMs: number;
  private readonly retry: BackoffPolicy;
  private readonly retentionMs: number;
  private readonly compactIntervalMs: number;
  private readonly helpGraceMs: number;
  private readonly onFatal: (e: unknown) => void;
  private readonly open = new Map<string, OpenTx>();
  private readonly watcher: PrefixWatcher;
  private readonly stopAc = new AbortController();
  private compactTimer: NodeJS.Timeout | undefined;
  /** Log writes, store writes and callbacks in flight: stop() lets them settle. */
  private readonly inflight = new Set<Promise<unknown>>();
  private nextRequest = 0;
  private readyFlag = false;
  private readonly counters: { prepared: Counter; refused: Counter; committed: Counter; aborted: Counter; helped: Counter };

  private constructor(
    readonly log: ParticipantLog,
    opts: ParticipantNodeOptions,
  ) {
    this.name = opts.name;
    this.store = opts.store;
    this.service = opts.service;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? systemRandom;
    this.logger = opts.log ?? stderrLogger(`participant ${opts.name}`);
    this.failpoints = opts.failpoints ?? new Failpoints();
    this.maxOpenTxs = opts.maxOpenTxs ?? 10_000;
    this.maxWorkChars = opts.maxWorkChars ?? 64 * 1024;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 20_000;
    this.retry = opts.retry ?? { maxAttempts: 6, baseMs: 25, maxMs: 1_000 };
    this.retentionMs = opts.retentionMs ?? 600_000;
    this.compactIntervalMs = opts.compactIntervalMs ?? 60_000;
    this.helpGraceMs = opts.helpGraceMs ?? 1_000;
    this.onFatal =
      opts.onFatal ??
      ((e) => {
        this.logger('error', 'participant log failed; exiting so a restart recovers from disk', { error: e });
        process.exit(1);
      });
    this.watcher = new PrefixWatcher({ store: this.store, prefix: TX_PREFIX, onEvent: (e) => this.onWatch(e), onResync: () => void this.resyncAll(), random: this.random, log: this.logger });
    const r = this.registry;
    this.counters = {
      prepared: r.counter('twopc_participant_votes_yes_total', 'Yes votes written by this participant.'),
      refused: r.counter('twopc_participant_votes_no_total', 'No votes written by this participant.'),
      committed: r.counter('twopc_participant_commits_total', 'Commits applied.'),
      aborted: r.counter('twopc_participant_aborts_total', 'Aborts applied.'),
      helped: r.counter('twopc_participant_help_decide_total', 'Times this participant helped decide past a deadline.'),
    };
    r.gauge('twopc_participant_in_doubt', 'Transactions voted yes and not decided yet.', () => [...this.open.values()].filter((t) => isInDoubt(t.machine.logRecord)).length);
    r.gauge('twopc_participant_open_transactions', 'Transactions not acknowledged yet.', () => this.open.size);
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
   * nothing before that).
   */
  async start(): Promise<void> {
    await this.watcher.start(); // first: no decision written during recovery can be missed
    await recoverAll(this);
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
    // Whatever is in flight finishes (a log write cannot be taken back); its results are ignored.
    await Promise.allSettled([...this.inflight]);
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
    const kv = await this.store.get(decisionKey(txId));
    if (kv === null) {
      const phase = phaseOf(this.log.get(txId));
      // Collected after everyone acked (then we applied it), or not recorded yet (the watch will bring it).
      if (phase === 'committed' || phase === 'aborted') return { txId, decision: phase === 'committed' ? 'commit' : 'abort', phase };
      throw new AppError('decision_not_recorded', 409, `the store holds no decision for ${txId}`);
    }
    const stored = decodeDecision(kv.value);
    if (stored !== decision) throw new AppError('decision_conflict', 409, `the store's decision for ${txId} is ${stored}, not ${decision}`);
    this.observeDecision(txId, stored);
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
    const excluded = frozenWithoutUs || (stored.decision === 'commit' && record.vote?.vote !== 'yes');
    // Excluded first, so the recovery does not cast a vote for a transaction that is not ours.
    if (excluded) this.step(tx, { type: 'excluded' });
    this.step(tx, { type: 'recover', nowMs: this.clock.nowMs(), stored: excluded ? { ...stored, decision: stored.decision === 'abort' ? 'abort' : null } : stored });
    await tx.restoring;
  }

  get storeForRecovery(): TxStore {
    return this.store;
  }

  // -------------------------------------------------------------------------
  // Machines

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
    for (const e of effects) this.perform(tx, e);
    const record = tx.machine.logRecord;
    // Acknowledged: nothing more to do here; the record stays in the log for the retention time.
    if (record?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
  }

  private perform(tx: OpenTx, e: ParticipantEffect): void {
    switch (e.type) {
      case 'logWork':
        this.logged(tx, () => this.log.recordWork(tx.id, e.work, this.clock.nowMs()), () => this.failpoints.hit('participant.afterWork'));
        return;
      case 'validate':
        void this.track(this.validate(tx, e.work));
        return;
      case 'logVote':
        this.logged(tx, () => this.log.recordVote(tx.id, e.vote, e.reason, this.clock.nowMs()));
        return;
      case 'writeVote':
        this.failpoints.hit('participant.afterPrepareDurable');
        void this.track(this.storeWrite(tx, e.key, e.value)).then((r) => {
          if (r === undefined) return;
          if (r.succeeded) (decodeVote(e.value).vote === 'yes' ? this.counters.prepared : this.counters.refused).inc();
          this.failpoints.hit('participant.afterVote');
          this.step(tx, { type: 'voteWritten', succeeded: r.succeeded, previous: r.previous });
        });
        return;
      case 'apply':
        void this.track(this.apply(tx, e.decision));
        return;
      case 'logApplied':
        this.logged(tx, () => this.log.recordApplied(tx.id, e.decision, this.clock.nowMs()));
        return;
      case 'writeAck':
        this.failpoints.hit('participant.afterApply');
        void this.track(this.storeWrite(tx, e.key, e.value)).then((r) => {
          if (r !== undefined) this.step(tx, { type: 'ackWritten' });
        });
        return;
      case 'logAcked':
        this.logged(tx, () => this.log.recordAcked(tx.id, this.clock.nowMs()));
        return;
      case 'restoreLocks': {
        const restore = this.service.restore?.bind(this.service) ?? (async (id: string, work: JsonValue) => void (await this.service.prepare(id, work)));
        tx.restoring = Promise.resolve()
          .then(() => restore(tx.id, e.work))
          .catch((err: unknown) => this.logger('error', 'restoring locks failed', { txId: tx.id, error: err }));
        return;
      }
      case 'setTimer':
        // The machine's only timer is the deadline, after which it helps decide: give the coordinator a head start.
        this.armTimer(tx, e.atMs + this.helpGraceMs + this.random.int(Math.floor(this.helpGraceMs / 2) + 1));
        return;
      case 'helpDecide':
        void this.track(this.helpDecide(tx));
        return;
      case 'reply': {
        const w = tx.waiters.get(e.requestId);
        if (w === undefined) return;
        tx.waiters.delete(e.requestId);
        clearTimeout(w.timer);
        w.resolve(e.reply);
        return;
      }
    }
  }

  /** A log write, then its `logged` event. A failed write is fatal: the log is unusable until restart. */
  private logged(tx: OpenTx, write: () => Promise<LogRecord>, after?: () => void): void {
    if (this.stopped) return;
    this.track(write()).then(
      (record) => {
        after?.();
        this.step(tx, { type: 'logged', record });
      },
      (e: unknown) => {
        if (e instanceof ParticipantLogError && (e.code === 'log_full' || e.code === 'invalid_tx_id')) {
          this.unload(tx, e); // refused new work; nothing was logged
          return;
        }
        this.fatal(e);
      },
    );
  }

  private fatal(e: unknown): void {
    if (!this.stopped) this.onFatal(e);
  }

  private async validate(tx: OpenTx, work: JsonValue): Promise<void> {
    let answer: PrepareAnswer;
    try {
      answer = await this.service.prepare(tx.id, work);
      if (answer.vote !== 'yes' && answer.vote !== 'no') answer = { vote: 'no', reason: 'prepare returned no vote' };
    } catch (e) {
      answer = { vote: 'no', reason: `prepare failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    this.step(tx, answer.reason === undefined ? { type: 'validated', vote: answer.vote } : { type: 'validated', vote: answer.vote, reason: answer.reason });
  }

  private async apply(tx: OpenTx, decision: Decision): Promise<void> {
    this.failpoints.hit('participant.beforeApply');
    await tx.restoring;
    for (let round = 0; !this.stopAc.signal.aborted; round++) {
      try {
        await (decision === 'commit' ? this.service.commit(tx.id) : this.service.abort(tx.id));
        (decision === 'commit' ? this.counters.committed : this.counters.aborted).inc();
        this.step(tx, { type: 'applied', decision });
        return;
      } catch (e) {
        // A decided transaction cannot be refused: keep trying, and say so loudly.
        this.logger('error', `service ${decision} failed; retrying`, { txId: tx.id, error: e });
        await sleep(backoffDelayMs(round, this.retry, this.random), this.stopAc.signal);
      }
    }
  }

  /** A CAS create-if-absent, retried in rounds until it answers (or the node stops: undefined). */
  private async storeWrite(tx: OpenTx, key: string, value: string): Promise<CasResult | undefined> {
    for (let round = 0; !this.stopAc.signal.aborted && !tx.gone; round++) {
      try {
        return await withRetries(() => this.store.casCreate(key, value), this.retry, this.random, { signal: this.stopAc.signal });
      } catch (e) {
        this.logger('warn', 'store write failed; retrying', { key, error: e });
        await sleep(this.retry.maxMs, this.stopAc.signal);
      }
    }
    return undefined;
  }

  private armTimer(tx: OpenTx, atMs: number): void {
    if (tx.timer !== undefined) clearTimeout(tx.timer);
    tx.timer = setTimeout(() => {
      tx.timer = undefined;
      const nowMs = this.clock.nowMs();
      if (nowMs < atMs) this.armTimer(tx, atMs);
      else this.step(tx, { type: 'deadlineReached', nowMs });
    }, Math.min(Math.max(0, atMs - this.clock.nowMs()), 2 ** 31 - 1));
    tx.timer.unref();
  }

  private async helpDecide(tx: OpenTx): Promise<void> {
    this.counters.helped.inc();
    let decision: Decision | undefined;
    try {
      decision = await finishTransaction(this.store, tx.id, { helperId: `participant:${this.name}`, nowMs: this.clock.nowMs(), retry: this.retry, random: this.random });
    } catch (e) {
      this.logger('warn', 'helping decide failed; will try again', { txId: tx.id, error: e });
    }
    if (decision !== undefined) {
      this.step(tx, { type: 'decisionObserved', decision });
      return;
    }
    // Not decidable yet (or the store did not answer): ask again a little later.
    if (!tx.gone) this.armTimer(tx, this.clock.nowMs() + 500 + this.random.int(1_000));
  }

  // -------------------------------------------------------------------------
  // The watch

  private onWatch(e: TxWatchEvent): void {
    if (e.value === null) return;
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    try {
      if (parsed.kind === 'tx') {
        const record = decodeTxRecord(e.value);
        if (record.state !== 'preparing') return;
        if (!record.participants.some((p) => p.name === this.name)) {
          // Frozen without us: work we hold for it can never count.
          const mine = this.open.get(parsed.id);
          if (mine !== undefined) this.step(mine, { type: 'excluded' });
          return;
        }
        // A frozen record naming us: prepare, even if the coordinator's hint never comes.
        const tx = this.open.get(parsed.id) ?? (this.isFinished(parsed.id) ? undefined : this.tryOpen(parsed.id));
        if (tx !== undefined) this.step(tx, { type: 'prepareRequested', deadline: record.deadline });
      } else if (parsed.kind === 'decision') {
        this.observeDecision(parsed.id, decodeDecision(e.value));
      }
    } catch (err) {
      this.logger('error', 'corrupt value in the store', { key: e.key, error: err });
    }
  }

  private observeDecision(txId: string, decision: Decision): void {
    let tx = this.open.get(txId);
    const record = this.log.get(txId);
    if (tx === undefined) {
      if (record === undefined || record.ackedAt !== undefined) return; // not ours, or done
      tx = this.tryOpen(txId);
    }
    if (tx === undefined) return;
    // A commit needs our durable "yes" if we were frozen in: without one, it committed without us.
    if (decision === 'commit' && record?.vote?.vote !== 'yes') this.step(tx, { type: 'excluded' });
    else this.step(tx, { type: 'decisionObserved', decision });
  }

  private isFinished(txId: string): boolean {
    return this.log.get(txId)?.ackedAt !== undefined;
  }

  private tryOpen(txId: string): OpenTx | undefined {
    try {
      return this.openTx(txId, true);
    } catch {
      return undefined; // full: the deadline fills our vote with "no"
    }
  }

  /** The watch lost history: re-read the decision of every open transaction. */
  private async resyncAll(): Promise<void> {
    for (const tx of [...this.open.values()]) {
      try {
        const kv = await this.store.get(decisionKey(tx.id));
        if (kv !== null) this.step(tx, { type: 'decisionObserved', decision: decodeDecision(kv.value) });
      } catch (e) {
        this.logger('warn', 'resync read failed', { txId: tx.id, error: e });
      }
    }
  }
}
