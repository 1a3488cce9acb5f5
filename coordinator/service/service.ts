/**
 * The coordinator service: the contract of docs/API.md ("Coordinator
 * contract") over the runtime, the recovery loop and the store, without
 * HTTP (server.ts listens; routes.ts maps requests to these methods).
 * Stateless: every answer comes from the store or from a machine that
 * learned it from the store, so any number of these run against one store.
 *
 * Everything outside this process comes in through `CoordinatorServiceDeps`
 * (store, time, randomness, hints, failpoints, logging), and nothing is kept
 * at module level, so a simulation builds this same service on simulated
 * time, network and storage, several in one process.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import type { FailpointHook } from '../../lib/failpoints.js';
import type { Logger } from '../../lib/logger.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import type { Random } from '../../lib/random.js';
import { errorText, notReady, READINESS_PROBE_TIMEOUT_MS, ready, withinMs, type Readiness } from '../../lib/readiness.js';
import type { Timers } from '../../lib/timers.js';
import type { CoordinatorReply } from '../core/index.js';
import { decisionOfDone, encodeTxRecord, TX_PREFIX, type DoneRecord, type JsonObject, type ListedState, type Participant, type TxRecord, type VoteValue } from '../protocol/index.js';
import {
  CappedHintSender,
  Collector,
  CoordinatorRuntime,
  getTransaction,
  listTransactions,
  readDone,
  RecoveryLoop,
  toServiceError,
  TxCollectedError,
  type CoordinatorConfig,
  type HintSender,
  type RecoveryDeps,
  type RuntimeMetrics,
  type TxSummary,
  type TxView,
} from '../runtime/index.js';
import { registerBatchMetrics, type TxStore } from '../txstore/index.js';
import { requestedParticipant } from '../runtime/registry.js';
import { BackPressure, type StoreUsageSource } from './store-usage.js';

/** What a coordinator service is built from: every effect on the world outside this object. */
export interface CoordinatorServiceDeps {
  readonly config: CoordinatorConfig;
  readonly store: TxStore;
  /** Timers and clocks for the runtime, the recovery loop, GC and every retry. */
  readonly timers: Timers;
  /** Jitter, and the random part of fresh transaction ids. */
  readonly random: Random;
  /** Prepare and decision calls to participants; capped here at `config.maxInflightHints`. */
  readonly hints: HintSender;
  readonly failpoints: FailpointHook;
  readonly log: Logger;
  /** The store's fill level, for back-pressure on begins (store-usage.ts); without it begins are never refused for it. */
  readonly storeUsage?: StoreUsageSource;
}

/** The former name of CoordinatorServiceDeps. */
export type CoordinatorServiceOptions = CoordinatorServiceDeps;

export interface BeginInput {
  readonly timeoutMs?: number;
  readonly participants?: readonly unknown[];
  readonly metadata?: JsonObject;
}

export interface OutcomeBody {
  readonly id: string;
  readonly outcome: 'committed' | 'aborted';
  readonly votes: Readonly<Record<string, VoteValue | null>>;
  readonly reason?: string;
}

/** How long a successful store read vouches for the store's reachability (readiness). */
const STORE_OK_FRESH_MS = 1_000;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The transaction id an Idempotency-Key stands for: the same on every coordinator. */
export function idForIdempotencyKey(key: string): string {
  return `k${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 40)}`;
}

/** A fresh id: time first (listings come out roughly in begin order), then 64 random bits. */
export function freshTxId(nowMs: number, random: Random): string {
  return `t${nowMs.toString(36)}${randomHex32(random)}${randomHex32(random)}`;
}

const TWO_POW_32 = 2 ** 32;
const HEX_DIGITS_PER_32_BITS = 8;

function randomHex32(random: Random): string {
  return random.int(TWO_POW_32).toString(16).padStart(HEX_DIGITS_PER_32_BITS, '0');
}

const REPLY_STATUS: Readonly<Record<string, number>> = {
  tx_not_found: 404,
  tx_not_active: 409,
  already_committed: 409,
  participant_conflict: 409,
  too_many_participants: 409,
};

function replyError(reply: Extract<CoordinatorReply, { kind: 'error' }>): AppError {
  return new AppError(reply.code, REPLY_STATUS[reply.code] ?? 409, reply.message);
}

function outcomeOfDone(d: DoneRecord): OutcomeBody {
  const votes: Record<string, VoteValue | null> = {};
  let reason: string | undefined;
  for (const p of d.participants) {
    const v = d.votes[p.name];
    votes[p.name] = v?.vote ?? null;
    if (reason === undefined && v?.vote === 'no') reason = `${p.name} ${v.by === p.name ? 'voted no' : `vote filled with no by ${v.by}`}${v.reason === undefined ? '' : `: ${v.reason}`}`;
  }
  const base = { id: d.id, outcome: d.outcome, votes };
  return d.outcome === 'aborted' ? { ...base, reason: reason ?? 'decision recorded as abort' } : base;
}

/** The counters the runtime and the recovery loop update, registered in `r`. */
function registerMetrics(r: MetricsRegistry): { readonly runtime: RuntimeMetrics; readonly recovery: RecoveryDeps['metrics'] } {
  return {
    runtime: {
      begun: r.counter('twopc_transactions_begun_total', 'Transactions begun (tx record created) by this coordinator.'),
      committed: r.counter('twopc_transactions_committed_total', 'Commit decisions recorded by this coordinator.'),
      aborted: r.counter('twopc_transactions_aborted_total', 'Abort decisions recorded by this coordinator.'),
      storeRetries: r.counter('twopc_store_write_retries_total', 'Store writes repeated after an ambiguous failure.'),
      hintFailures: r.counter('twopc_hint_failures_total', 'Prepare or decision calls to participants that failed (hints only).'),
      preparesSkipped: r.counter('twopc_prepare_hints_skipped_total', 'Prepare calls not sent because maxPrepareHintsPerParticipant were in flight to that participant (its watch prepares it).'),
      collected: r.counter('twopc_transactions_collected_total', 'Finished transactions garbage-collected by this coordinator.'),
      collectedMeanwhile: r.counter('twopc_writes_refused_collected_total', 'Vote fills and decisions not written because the transaction was already collected.'),
      evicted: r.counter('twopc_transactions_evicted_total', 'Idle live transactions dropped to make room (reloaded from the store on demand).'),
      commitLatency: r.histogram('twopc_commit_latency_seconds', 'From a commit request to its outcome, in seconds.'),
    },
    recovery: {
      inDoubtFound: r.counter('twopc_transactions_in_doubt_total', 'Undecided transactions found past their deadline by the recovery loop.'),
      adopted: r.counter('twopc_recovery_adopted_total', 'Transactions taken over by the recovery loop.'),
      passes: r.counter('twopc_recovery_passes_total', 'Recovery scans run.'),
    },
  };
}

export class CoordinatorService {
  readonly config: CoordinatorConfig;
  readonly store: TxStore;
  readonly timers: Timers;
  /**
   * This service's metrics (one registry per service: two services never
   * share a counter). No process metrics here: a simulation runs many
   * services in one process; the server adds them (server.ts).
   */
  readonly metrics = new MetricsRegistry();
  readonly runtime: CoordinatorRuntime;
  readonly recovery: RecoveryLoop;
  readonly collector: Collector;
  /** The injected sender behind the in-flight cap. */
  readonly hints: CappedHintSender;
  private readonly random: Random;
  private phase: 'new' | 'running' | 'stopped' = 'new';
  /** Set once a recovery pass finished after start: before it, a crashed coordinator's transactions may lie unadopted. */
  private recovered = false;
  /** When a store read last succeeded (readiness). */
  private storeOkAtMs = -Infinity;
  /** Refuses begins while the store is nearly full; undefined without a usage source. */
  readonly backPressure: BackPressure | undefined;

  constructor(deps: CoordinatorServiceDeps) {
    const c = deps.config;
    this.config = c;
    this.store = deps.store;
    this.timers = deps.timers;
    this.random = deps.random;
    const retry = { maxAttempts: c.storeWriteMaxAttempts, baseMs: c.storeBackoffBaseMs, maxMs: c.storeBackoffMaxMs };
    this.hints = new CappedHintSender(deps.hints, c.maxInflightHints);
    this.collector = new Collector({ store: this.store, retentionMs: c.retentionMs, retentionMaxBytes: c.retentionMaxBytes, timers: this.timers, random: this.random, retry });
    this.backPressure = deps.storeUsage === undefined ? undefined : new BackPressure({ source: deps.storeUsage, highWaterPercent: c.storeHighWaterPercent, checkMs: c.storeUsageCheckMs, timers: this.timers });
    const metrics = registerMetrics(this.metrics);
    const shared = { store: this.store, config: c, timers: this.timers, random: this.random, collector: this.collector, log: deps.log };
    this.runtime = new CoordinatorRuntime({ ...shared, hints: this.hints, failpoints: deps.failpoints, metrics: metrics.runtime });
    this.recovery = new RecoveryLoop({ ...shared, runtime: this.runtime, metrics: metrics.recovery });
    const r = this.metrics;
    this.recovery.registerMetrics(r); // the sweep election's, when configured
    r.gauge('twopc_transactions_in_doubt', 'Undecided transactions past their deadline in the last full recovery scan.', () => this.recovery.lastInDoubt);
    r.gauge('twopc_live_transactions', 'Transactions this coordinator drives now.', () => this.runtime.liveCount);
    r.counterFrom('twopc_hints_skipped_total', 'Hints skipped because too many were in flight.', () => this.hints.skipped);
    registerBatchMetrics(r, this.store);
    r.gauge('twopc_compacted_bytes', "Bytes of the compacted records this process keeps (retentionMaxBytes bounds them).", () => this.collector.retainedBytes);
    r.counterFrom('twopc_retention_budget_revokes_total', 'Retention leases revoked to keep the compacted records within retentionMaxBytes.', () => this.collector.budgetRevokes);
    r.counterFrom('twopc_begins_refused_store_full_total', 'Begins refused with 429 store_nearly_full (back-pressure).', () => this.backPressure?.refused ?? 0);
    r.gauge('twopc_store_used_ratio', "The store's used bytes over its quota, as last read for back-pressure (0 when unknown).", () => {
      const u = this.backPressure?.last;
      return u === undefined || u.quotaBytes === 0 ? 0 : u.usedBytes / u.quotaBytes;
    });
  }

  /** Starts the store watch, then the recovery loop (which also collects garbage). Once per service. */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`coordinator ${this.config.id} cannot start: it is ${this.phase}`);
    this.phase = 'running';
    await this.runtime.start();
    this.recovery.start();
  }

  /** Stops the recovery loop, then the runtime: waiting requests get 503, writes in flight settle. Final. */
  async stop(): Promise<void> {
    if (this.phase === 'stopped') return;
    this.phase = 'stopped';
    await this.recovery.stop();
    await this.runtime.stop();
  }

  /** Transactions this service drives now. */
  get liveCount(): number {
    return this.runtime.liveCount;
  }

  metricsText(): Promise<string> {
    return this.metrics.render();
  }

  /**
   * For `/readyz`: running, the store answers a read (one that succeeded
   * within STORE_OK_FRESH_MS counts), and a recovery pass finished since
   * start (asking runs one now, sharing any pass in flight). Each wait is
   * bounded, so a probe answers in about a second.
   */
  async readiness(): Promise<Readiness> {
    const id = { id: this.config.id };
    if (this.phase !== 'running') return notReady(this.phase === 'new' ? 'not started' : 'stopping', id);
    try {
      if (this.timers.nowMs() - this.storeOkAtMs > STORE_OK_FRESH_MS) {
        await withinMs(this.timers, READINESS_PROBE_TIMEOUT_MS, this.store.range(TX_PREFIX, { limit: 1 }));
        this.storeOkAtMs = this.timers.nowMs();
      }
    } catch (e) {
      return notReady(`the store does not answer: ${errorText(e)}`, id);
    }
    try {
      if (!this.recovered) await withinMs(this.timers, READINESS_PROBE_TIMEOUT_MS, this.recovery.runOnce());
      this.recovered = true;
    } catch (e) {
      return notReady(`startup recovery has not finished: ${errorText(e)}`, id);
    }
    return ready(id);
  }

  // -------------------------------------------------------------------------
  // The contract

  async begin(input: BeginInput, idempotencyKey: string | undefined): Promise<{ id: string; state: string; deadline: number }> {
    const c = this.config;
    const timeoutMs = input.timeoutMs ?? c.defaultTimeoutMs;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < c.minTimeoutMs || timeoutMs > c.maxTimeoutMs) {
      throw new AppError('invalid_timeout', 400, `timeoutMs must be an integer from ${c.minTimeoutMs} to ${c.maxTimeoutMs}`);
    }
    const participants: Participant[] = [];
    for (const p of input.participants ?? []) {
      const q = requestedParticipant(p, c.participantRegistry);
      if (participants.some((x) => x.name === q.name)) throw new AppError('duplicate_participant', 400, `participant ${q.name} is listed twice`);
      participants.push(q);
    }
    if (participants.length > c.maxParticipants) throw new AppError('too_many_participants', 400, `at most ${c.maxParticipants} participants`);
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new AppError('invalid_idempotency_key', 400, 'Idempotency-Key must be 1 to 255 visible ASCII characters');
    }
    const nowMs = this.timers.nowMs();
    const id = idempotencyKey === undefined ? freshTxId(nowMs, this.random) : idForIdempotencyKey(idempotencyKey);
    await this.checkBackPressure(id, idempotencyKey !== undefined);
    const record: TxRecord = { participants, state: 'active', deadline: nowMs + timeoutMs, createdAt: nowMs, ...(input.metadata === undefined ? {} : { metadata: input.metadata }) };
    encodeTxRecord(record); // validates (metadata size): 400 before anything is written
    let reply: CoordinatorReply;
    try {
      reply = await this.runtime.begin(id, record);
    } catch (e) {
      if (!(e instanceof TxCollectedError)) throw toServiceError(e);
      const done = await readDone(this.store, id);
      if (done === null) throw new AppError('store_unavailable', 503, 'retry the begin');
      return { id, state: done.outcome, deadline: done.deadline };
    }
    if (reply.kind === 'error') throw replyError(reply);
    if (reply.kind !== 'begun') throw new Error(`unexpected reply ${reply.kind} to begin`);
    return { id: reply.id, state: reply.state, deadline: reply.deadline };
  }

  /**
   * Back-pressure on new work only: enlist, commit and abort of begun
   * transactions never ask, and neither does a keyed begin repeated for a
   * transaction that exists.
   */
  private async checkBackPressure(id: string, keyed: boolean): Promise<void> {
    try {
      await this.backPressure?.checkBegin();
    } catch (e) {
      if (!keyed) throw e;
      const exists = (await this.store.get(TX_PREFIX + id)) !== null || (await readDone(this.store, id)) !== null;
      if (!exists) throw e;
    }
  }

  async enlist(id: string, participant: unknown): Promise<{ id: string; participant: Participant }> {
    const p = requestedParticipant(participant, this.config.participantRegistry);
    const reply = await this.call(() => this.runtime.enlist(id, p));
    if (reply.kind === 'enlisted') return { id: reply.id, participant: reply.participant };
    if (reply.kind === 'error' && reply.code === 'tx_not_found' && (await readDone(this.store, id)) !== null) {
      throw new AppError('tx_not_active', 409, `transaction ${id} is finished`);
    }
    throw this.unexpected(reply);
  }

  async commit(id: string): Promise<OutcomeBody> {
    const reply = await this.call(() => this.runtime.commit(id));
    if (reply.kind === 'outcome') return outcomeBody(reply);
    if (reply.kind === 'error' && reply.code === 'tx_not_found') {
      const done = await readDone(this.store, id);
      if (done !== null) return outcomeOfDone(done);
    }
    throw this.unexpected(reply);
  }

  async abort(id: string, reason?: string): Promise<OutcomeBody> {
    const reply = await this.call(() => this.runtime.abort(id, reason));
    if (reply.kind === 'outcome') return outcomeBody(reply);
    if (reply.kind === 'error' && reply.code === 'tx_not_found') {
      const done = await readDone(this.store, id);
      if (done !== null) {
        if (decisionOfDone(done) === 'commit') throw new AppError('already_committed', 409, `transaction ${id} is committed`);
        return outcomeOfDone(done);
      }
    }
    throw this.unexpected(reply);
  }

  async get(id: string): Promise<TxView> {
    const view = await this.call(() => getTransaction(this.store, id, this.timers.nowMs()));
    if (view === null) throw new AppError('tx_not_found', 404, `no transaction ${id}`);
    return view;
  }

  list(opts: { state?: ListedState; limit?: number; after?: string }): Promise<{ transactions: TxSummary[]; next: string | null }> {
    const limit = opts.limit ?? this.config.listDefaultLimit;
    const o = { limit, scanMaxKeys: this.config.listScanMaxKeys, ...(opts.state === undefined ? {} : { state: opts.state }), ...(opts.after === undefined ? {} : { after: opts.after }) };
    return this.call(() => listTransactions(this.store, o, this.timers.nowMs()));
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw toServiceError(e);
    }
  }

  private unexpected(reply: CoordinatorReply): Error {
    if (reply.kind === 'error') return replyError(reply);
    return new Error(`unexpected reply ${reply.kind}`);
  }
}

function outcomeBody(reply: Extract<CoordinatorReply, { kind: 'outcome' }>): OutcomeBody {
  const base = { id: reply.id, outcome: reply.outcome, votes: reply.votes };
  return reply.reason === undefined ? base : { ...base, reason: reply.reason };
}
