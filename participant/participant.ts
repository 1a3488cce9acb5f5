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
 *
 * Everything the node does to the outside world goes through what it is
 * opened with (options.ts says what each is for): the TxStore, Timers (no
 * setTimeout here), Random, the log's LogFs, a FailpointHook, a Logger and
 * `onFatal`; the routes are a thin layer over its public methods. So the
 * deterministic simulation (test/sim2pc) runs this very code on simulated
 * time, network and disk, calling those methods directly.
 *
 * One live instance per name: `open` claims the name in the store before
 * it touches the log, and `stop` gives it back (claim.ts).
 *
 * Fail-stop: a failed log write, a broken invariant or a lost name claim
 * stops the node at once (every call answers 503 `participant_failed`) and
 * is reported to `onFatal`; the library never exits the process: the
 * process entry decides (demo/bank/main.ts exits, so a supervisor restarts
 * it).
 */
import { setMaxListeners } from 'node:events';
import { AppError } from '../lib/errors.js';
import { NO_FAILPOINTS } from '../lib/failpoints.js';
import type { Random } from '../lib/random.js';
import type { BackoffPolicy } from '../lib/retry.js';
import type { Logger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import type { Cancel, Timers } from '../lib/timers.js';
import { decisionKey, decodeDecision, isValidParticipantName, isValidTxId, PARTICIPANT_WATCH_MATCH, ProtocolError, TX_PREFIX, txKey, type Decision, type JsonValue } from '../coordinator/protocol/index.js';
import { PrefixWatcher, readTxSnapshot, registerBatchMetrics, type TxStore } from '../coordinator/txstore/index.js';
import { NameClaim } from './claim.js';
import { compactLog } from './compaction.js';
import type { ParticipantConfig } from './config.js';
import { nodeLogFs } from './durable-json-file.js';
import { ParticipantEffects, type ParticipantCounters } from './effects.js';
import { ParticipantLog, type LogRecord } from './log.js';
import { isInDoubt, ParticipantTxMachine, phaseOf, type ParticipantEffect, type ParticipantEvent, type ParticipantReply, type RecoverEvent } from './machine.js';
import { OpenTx, type OpenTxTable } from './open-tx.js';
import { nodeDefaults, type DecisionResult, type FatalHandler, type NodeDefaults, type ParticipantNodeOptions, type ParticipantTxView, type PrepareResult, type WorkResult } from './options.js';
import { recoverAll, type RecoveryHost } from './recovery.js';
import { untilAnswered } from './store-calls.js';
import { listTransactions, type TxListQuery } from './view.js';
import { ParticipantWatch } from './watch.js';

export type { DecisionResult, FatalHandler, ParticipantNodeOptions, ParticipantService, ParticipantTxView, PrepareAnswer, PrepareResult, WorkResult } from './options.js';

function unlimitedController(): AbortController {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  return ac;
}

/** What every call gets once the node failed: only a restart, recovering from disk, brings it back. */
function failedError(): AppError {
  return new AppError('participant_failed', 503, 'the participant failed; it must restart to recover from disk', { retryAfterSeconds: 1 });
}

/** Counters of what this participant did, registered on `r`. */
function makeCounters(r: MetricsRegistry): ParticipantCounters {
  return {
    prepared: r.counter('twopc_participant_votes_yes_total', 'Yes votes written by this participant.'),
    refused: r.counter('twopc_participant_votes_no_total', 'No votes written by this participant.'),
    committed: r.counter('twopc_participant_commits_total', 'Commits applied.'),
    aborted: r.counter('twopc_participant_aborts_total', 'Aborts applied.'),
    helped: r.counter('twopc_participant_help_decide_total', 'Times this participant helped decide past a deadline.'),
  };
}

export class ParticipantNode {
  readonly name: string;
  readonly metrics = new MetricsRegistry(); // no process metrics: a host merges `metrics.registry` into its own
  /** The validated limits and timings this node runs with. */
  readonly config: ParticipantConfig;
  readonly logger: Logger;
  private readonly store: TxStore;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly retry: BackoffPolicy;
  private readonly onFatal: FatalHandler;
  private readonly open = new Map<string, OpenTx>();
  private readonly effects: ParticipantEffects;
  private readonly watch: ParticipantWatch;
  private readonly watcher: PrefixWatcher;
  /** Aborts every sleep and retry of this node at stop; one listener per waiting retry, so no listener cap. */
  private readonly stopAc = unlimitedController();
  private cancelCompaction: Cancel | undefined;
  /** Log writes, store writes and callbacks in flight: stop() lets them settle. */
  private readonly inflight = new Set<Promise<unknown>>();
  private nextRequest = 0;
  private started = false;
  private readyFlag = false;
  private stopping: Promise<void> | undefined;
  /** Set once the node failed (fail-stop): what went wrong. */
  private failure: unknown;

  private constructor(
    /** The durable local log (log.ts). */
    readonly log: ParticipantLog,
    /** This node's claim on its name (claim.ts). */
    private readonly claim: NameClaim,
    opts: ParticipantNodeOptions,
    d: NodeDefaults,
  ) {
    this.name = opts.name;
    const { config, random, logger } = d;
    this.config = config;
    this.store = opts.store;
    this.timers = d.timers;
    this.random = random;
    this.logger = logger;
    this.retry = d.retry;
    this.onFatal = opts.onFatal ?? ((e) => logger('error', 'the participant failed and stopped; restart it to recover from disk', { error: e }));
    const r = this.metrics;
    const counters = makeCounters(r);
    r.gauge('twopc_participant_in_doubt', 'Transactions voted yes and not decided yet.', () => [...this.open.values()].filter((t) => isInDoubt(t.machine.logRecord)).length);
    r.gauge('twopc_participant_open_transactions', 'Transactions not acknowledged yet.', () => this.open.size);
    r.gauge('twopc_participant_log_records', 'Records kept in the participant log (bounded by logMaxRecords).', () => this.log.size);
    r.gauge('twopc_participant_log_bytes', 'Bytes of the participant log file (rewritten past twice its live records plus a floor).', () => this.log.fileBytes);
    r.gauge('twopc_participant_log_memory_bytes', "Bytes of the log records' lines held in memory (every live record).", () => this.log.memoryBytes.live);
    r.gauge('twopc_participant_log_retained_bytes', 'Of those, bytes of acknowledged records kept for the operator view (bounded by logMaxRetainedBytes).', () => this.log.memoryBytes.acknowledged);
    registerBatchMetrics(r, this.store, 'twopc_participant');
    const table = this.openTxTable();
    const timers = this.timers;
    const failpoints = opts.failpoints ?? NO_FAILPOINTS;
    const { helpGraceMs, helpRetryIntervalMs } = config;
    this.effects = new ParticipantEffects({ name: this.name, store: this.store, log, service: opts.service, timers, random, logger, failpoints, retry: this.retry, helpGraceMs, helpRetryIntervalMs, counters }, table);
    this.watch = new ParticipantWatch({ name: this.name, log, store: this.store, logger, timers, prepareDelayMs: config.watchPrepareDelayMs, maxHeldPrepares: config.maxHeldPrepares }, table);
    this.watcher = new PrefixWatcher({ store: this.store, prefix: TX_PREFIX, match: PARTICIPANT_WATCH_MATCH, onEvent: (e) => this.watch.onEvent(e), onResync: () => void this.watch.resyncAll(), random, timers, log: logger });
    // A background rewrite that fails is nobody's awaited write: stop now, not at the next one.
    log.onFailure((e) => this.fatal(e));
    // Another instance may act under our name once the claim is gone: stop at once.
    claim.whenLost((e) => this.fatal(e));
  }

  /**
   * Validates the name and the config, claims the name in the store
   * (waiting out an unavailable store), opens the log (through `logFs`) and
   * builds the node; nothing else runs until `start()`. Rejects with a
   * ProtocolError (`invalid_participant`), a ParticipantConfigError
   * (`invalid_config`), a ParticipantNameTakenError
   * (`participant_name_taken`: another live instance holds the name), or a
   * ParticipantLogError (`log_corrupt`: damage before the last line, or
   * another participant's log); the caller decides (a process exits;
   * onFatal is for failures once running). Call `stop()` to give the name
   * back, even when the node never started.
   */
  static async open(opts: ParticipantNodeOptions): Promise<ParticipantNode> {
    if (!isValidParticipantName(opts.name)) throw new ProtocolError('invalid_participant', 'participant name must match [A-Za-z0-9][A-Za-z0-9._-]* and be at most 64 characters', { name: opts.name });
    const d = nodeDefaults(opts);
    const { config, timers, random, logger, retry } = d;
    const claim = await NameClaim.take({ name: opts.name, logPath: opts.logPath, ttlMs: config.claimTtlMs, store: opts.store, timers, random, retry, logger, ...(opts.claimProcess === undefined ? {} : { self: opts.claimProcess }) });
    let log: ParticipantLog;
    try {
      log = await ParticipantLog.open({ path: opts.logPath, participant: opts.name, fs: opts.logFs ?? nodeLogFs, maxRecords: config.logMaxRecords, rewriteFloorBytes: config.logRewriteFloorBytes, maxRetainedBytes: config.logMaxRetainedBytes });
    } catch (e) {
      await claim.release();
      throw e;
    }
    return new ParticipantNode(log, claim, opts, d);
  }

  /** Recovery finished and the node has not stopped or failed: calls are served. */
  get ready(): boolean {
    return this.readyFlag;
  }

  /** The error that stopped this node (fail-stop), if one did. */
  get failed(): unknown {
    return this.failure;
  }

  /** Throws the 503 every call gets while the node does not serve: recovering, failed, or stopped. */
  assertServing(): void {
    if (this.readyFlag) return;
    if (this.failure !== undefined) throw failedError();
    if (this.stopped) throw new AppError('shutting_down', 503, 'the participant is shutting down');
    throw new AppError('not_ready', 503, 'the participant is recovering; retry shortly', { retryAfterSeconds: 1 });
  }

  /**
   * Starts the watch, then recovers every unacknowledged transaction of the
   * log; resolves once the locks of in-doubt transactions are back (serve
   * nothing, and prepare nothing the watch asks for, before that). Also
   * resolves, with `ready` false, when the node stopped or failed meanwhile
   * (a failure went to onFatal). Once per node: a restart is a new node
   * over the same log.
   */
  async start(): Promise<void> {
    if (this.started) throw new AppError('already_started', 409, `participant ${this.name} was already started`);
    this.started = true;
    // The watch first: no decision written during recovery can be missed. Pinning its start is a store read.
    if ((await this.readUntilAnswered(() => this.watcher.start())) === undefined) return;
    await recoverAll(this.recoveryHost());
    if (this.stopped) return; // stopped or failed meanwhile
    this.watch.release();
    const compaction = { log: this.log, store: this.store, timers: this.timers, logger: this.logger, retentionMs: this.config.logRetentionMs };
    this.cancelCompaction = this.timers.every(this.config.logCompactIntervalMs, () => void this.track(compactLog(compaction).catch((e: unknown) => this.fatal(e))));
    this.readyFlag = true;
  }

  /**
   * Stops serving, lets what is in flight settle (a log write cannot be
   * taken back), closes the log, then gives the name back: no write of
   * ours lands after another instance may have taken it. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.halt(new AppError('shutting_down', 503, 'the participant is shutting down'));
    await this.watcher.stop();
    await Promise.allSettled([...this.inflight]); // their results are ignored
    await this.log.close();
    await this.claim.release();
  }

  /** Stops everything at once (no await): no step, timer, prepare or answer after this. */
  private halt(reason: AppError): void {
    this.readyFlag = false;
    this.stopAc.abort();
    this.cancelCompaction?.();
    this.cancelCompaction = undefined;
    for (const tx of [...this.open.values()]) this.unload(tx, reason);
    this.watch.stop();
    void this.watcher.stop().catch(() => undefined); // shutdown() awaits it; a halt on failure need not
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
  // The API: what the routes (routes.ts), an embedding service and the simulation call

  /** Work for a transaction (`POST /2pc/work`, or a service's own API); resolves once it is durable. */
  async receiveWork(txId: string, work: JsonValue): Promise<WorkResult> {
    this.assertServing();
    this.checkTxId(txId);
    if (JSON.stringify(work).length > this.config.maxWorkChars) throw new AppError('work_too_large', 413, `work is over ${this.config.maxWorkChars} characters`);
    if (this.watch.wasCollected(txId)) throw new AppError('tx_not_active', 409, `transaction ${txId} is finished and collected`);
    const tx = this.openTx(txId, true);
    const reply = await this.request(tx, (requestId) => ({ type: 'workReceived', requestId, work }));
    if (reply.kind === 'error') throw new AppError(reply.code, 409, reply.message);
    this.armWorkCheck(tx);
    return { txId, accepted: true };
  }

  /** See config `workCheckMs`: the watch may have missed the collection (it restarted, or lags). */
  private armWorkCheck(tx: OpenTx): void {
    if (tx.gone || tx.cancelWorkCheck !== undefined) return;
    tx.cancelWorkCheck = this.timers.after(this.config.workCheckMs, () => {
      tx.cancelWorkCheck = undefined;
      void this.track(this.checkWorkStillLive(tx));
    });
  }

  private async checkWorkStillLive(tx: OpenTx): Promise<void> {
    if (tx.gone || this.log.get(tx.id)?.vote !== undefined) return; // voting or voted: the protocol takes it from here
    let live: boolean;
    try {
      live = (await this.store.get(txKey(tx.id))) !== null;
    } catch {
      live = true; // the store did not answer: look again later
    }
    if (tx.gone) return;
    if (live) this.armWorkCheck(tx);
    else this.step(tx, { type: 'excluded' });
  }

  /** The prepare hint (`POST /2pc/prepare`): votes (if not done yet) and answers with the vote the store holds. */
  async prepare(txId: string, deadline?: number): Promise<PrepareResult> {
    this.assertServing();
    this.checkTxId(txId);
    const done = this.log.get(txId);
    if (done?.applied !== undefined && !this.open.has(txId)) {
      // A late or repeated hint for a transaction decided here long ago: answer from the log.
      return { txId, vote: done.vote?.vote ?? (done.applied.decision === 'commit' ? 'yes' : 'no') };
    }
    const tx = this.openTx(txId, true);
    const reply = await this.request(tx, (requestId) => (deadline === undefined ? { type: 'prepareRequested', requestId } : { type: 'prepareRequested', requestId, deadline }));
    if (reply.kind === 'vote') return { txId, vote: reply.vote };
    if (reply.kind === 'error') throw new AppError(reply.code, 409, reply.message);
    throw new AppError('internal', 500, `unexpected reply ${reply.kind} to prepare`);
  }

  /**
   * The decision hint (`POST /2pc/decision`). Believed only once the store
   * confirms it (a hint may be late, duplicated, reordered, or wrong:
   * `409 decision_not_recorded` / `decision_conflict`); answers what this
   * participant knows now. Applying continues in the background.
   */
  async decisionHint(txId: string, decision: Decision): Promise<DecisionResult> {
    this.assertServing();
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

  /** The operator's view of the local log, newest first (`GET /v1/participant/transactions`). */
  transactions(opts: TxListQuery): ParticipantTxView[] {
    return listTransactions(this.log.list(), opts);
  }

  // -------------------------------------------------------------------------
  // What the helpers see of the node: closures, so its methods stay private

  private openTxTable(): OpenTxTable {
    return {
      get: (txId) => this.open.get(txId),
      tryOpen: (txId) => this.tryOpen(txId),
      values: () => this.open.values(),
      step: (tx, event) => this.step(tx, event),
      unload: (tx, error) => this.unload(tx, error),
      track: (p) => this.track(p),
      fatal: (e) => this.fatal(e),
      stopSignal: this.stopAc.signal,
    };
  }

  private recoveryHost(): RecoveryHost {
    return {
      name: this.name,
      concurrency: this.config.recoveryConcurrency,
      unfinished: () => this.log.unfinished(),
      readSnapshot: (txId) => this.readUntilAnswered(() => readTxSnapshot(this.store, txId)),
      recoverTx: (record, stored, frozenWithoutUs) => this.recoverTx(record, stored, frozenWithoutUs),
    };
  }

  /** Opens a logged transaction and steps `recover` with what the store holds; resolves once its locks are back. */
  private async recoverTx(record: LogRecord, stored: RecoverEvent['stored'], frozenWithoutUs: boolean): Promise<void> {
    if (this.stopped) return;
    const tx = this.openTx(record.txId, false);
    // Judge by the log as it is now, not as recovery read it at start: the
    // watch may have voted "yes" since, and a commit would then look like one
    // made without us (found by the 2PC simulation, `stale-recovery-record`).
    const current = this.log.get(record.txId) ?? record;
    const excluded = frozenWithoutUs || (stored.decision === 'commit' && current.vote?.vote !== 'yes');
    // Excluded first, so the recovery does not cast a vote for a transaction that is not ours.
    if (excluded) this.step(tx, { type: 'excluded' });
    this.step(tx, { type: 'recover', nowMs: this.timers.nowMs(), stored: excluded ? { ...stored, decision: stored.decision === 'abort' ? 'abort' : null } : stored });
    await tx.restoring;
  }

  /** A store read that waits out an unavailable store (store-calls.ts); undefined once the node stops. */
  private readUntilAnswered<T>(read: () => Promise<T>): Promise<T | undefined> {
    return untilAnswered(read, { retry: this.retry, random: this.random, timers: this.timers, logger: this.logger, signal: this.stopAc.signal }, 'store read');
  }

  // -------------------------------------------------------------------------
  // Open transactions

  private checkTxId(txId: string): void {
    if (!isValidTxId(txId)) throw new ProtocolError('invalid_tx_id', 'transaction id must match [A-Za-z0-9][A-Za-z0-9._-]* and be at most 128 characters');
  }

  private openTx(txId: string, bounded: boolean): OpenTx {
    const existing = this.open.get(txId);
    if (existing !== undefined) return existing;
    if (bounded && this.open.size >= this.config.maxOpenTxs) {
      throw new AppError('too_many_transactions', 503, `${this.config.maxOpenTxs} transactions are open here; retry later`, { retryAfterSeconds: 1 });
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
    tx.cancelTimer?.();
    tx.cancelTimer = undefined;
    tx.cancelWorkCheck?.();
    tx.cancelWorkCheck = undefined;
    for (const w of tx.waiters.values()) {
      w.cancelTimeout();
      w.reject(error ?? new AppError('unavailable', 503, `transaction ${tx.id} was closed before it answered`));
    }
    tx.waiters.clear();
  }

  private request(tx: OpenTx, makeEvent: (requestId: string) => ParticipantEvent): Promise<ParticipantReply> {
    const requestId = `q${this.nextRequest++}`;
    const timeoutMs = this.config.requestTimeoutMs;
    return new Promise<ParticipantReply>((resolve, reject) => {
      const cancelTimeout = this.timers.after(timeoutMs, () => {
        tx.waiters.delete(requestId);
        reject(new AppError('timeout', 504, `no answer within ${timeoutMs} ms; retry`));
        if (tx.machine.logRecord?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
      });
      tx.waiters.set(requestId, { resolve, reject, cancelTimeout });
      this.step(tx, makeEvent(requestId));
    });
  }

  private step(tx: OpenTx, event: ParticipantEvent): void {
    if (tx.gone || this.stopped) return;
    let effects: readonly ParticipantEffect[];
    try {
      effects = tx.machine.step(event);
    } catch (e) {
      // A broken invariant (AssertionError) is a bug: going on could break atomicity.
      this.fatal(e);
      return;
    }
    for (const e of effects) this.effects.perform(tx, e);
    const record = tx.machine.logRecord;
    // Acknowledged: nothing more to do here; the record stays in the log for the retention time.
    if (record?.ackedAt !== undefined && tx.waiters.size === 0) this.unload(tx);
  }

  /**
   * Fail-stop, once: halt at once, then tell the embedder. A failure while
   * stopping is not one. The claim is no longer kept alive, but not given
   * back either: writes still in flight may land, so the name frees when
   * its lease expires, or when `stop()` has let them settle.
   */
  private fatal(e: unknown): void {
    if (this.stopped) return;
    this.failure = e;
    this.claim.abandon();
    this.halt(failedError());
    this.onFatal(e);
  }
}
