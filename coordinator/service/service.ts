/**
 * The coordinator service: the contract of shared/DESIGN.md ("Coordinator
 * contract") over the runtime, the recovery loop and the store, without
 * HTTP (routes.ts maps it to express). Stateless: every answer comes from
 * the store or from a machine that learned it from the store, so any number
 * of these run against one store.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Clock } from '../../lib/clock.js';
import { systemClock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { systemRandom, type Random } from '../../lib/random.js';
import { decisionOfDone, type DoneRecord } from '../protocol/index.js';
import type { CoordinatorConfig } from '../runtime/index.js';
import { Failpoints } from '../../lib/failpoints.js';
import { Collector } from '../runtime/index.js';
import { HintClient } from '../runtime/index.js';
import { stderrLogger, type Logger } from '../../lib/logger.js';
import type { CoordinatorReply } from '../core/index.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import { encodeTxRecord, toParticipant, type JsonObject, type ListedState, type Participant, type TxRecord, type VoteValue } from '../protocol/index.js';
import { getTransaction, listTransactions, readDone, type TxSummary, type TxView } from '../runtime/index.js';
import { RecoveryLoop } from '../runtime/index.js';
import { coordinatorApp } from './routes.js';
import { CoordinatorRuntime, toServiceError, TxCollectedError, type RuntimeMetrics } from '../runtime/index.js';
import type { TxStore } from '../txstore/index.js';

export interface CoordinatorServiceOptions {
  readonly config: CoordinatorConfig;
  readonly store: TxStore;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly failpoints?: Failpoints;
  readonly log?: Logger;
}

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

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The transaction id an Idempotency-Key stands for: the same on every coordinator. */
export function idForIdempotencyKey(key: string): string {
  return `k${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 40)}`;
}

/** A fresh id: time first (listings come out roughly in begin order), then 64 random bits. */
export function freshTxId(nowMs: number): string {
  return `t${nowMs.toString(36)}${randomBytes(8).toString('hex')}`;
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

export class CoordinatorService {
  readonly config: CoordinatorConfig;
  readonly store: TxStore;
  readonly clock: Clock;
  readonly registry = new MetricsRegistry();
  readonly runtime: CoordinatorRuntime;
  readonly recovery: RecoveryLoop;
  readonly collector: Collector;
  readonly hints: HintClient;
  readonly app: express.Express;
  private readonly log: Logger;
  private server: Server | undefined;

  constructor(opts: CoordinatorServiceOptions) {
    this.config = opts.config;
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    const random = opts.random ?? systemRandom;
    this.log = opts.log ?? stderrLogger(`coordinator ${opts.config.id}`);
    const c = this.config;
    const retry = { maxAttempts: c.storeWriteMaxAttempts, baseMs: c.storeBackoffBaseMs, maxMs: c.storeBackoffMaxMs };
    this.hints = new HintClient({ timeoutMs: c.hintTimeoutMs, maxInflight: c.maxInflightHints });
    this.collector = new Collector({ store: this.store, retentionMs: c.retentionMs, clock: this.clock, random, retry });
    const r = this.registry;
    const metrics: RuntimeMetrics = {
      begun: r.counter('twopc_transactions_begun_total', 'Transactions begun (tx record created) by this coordinator.'),
      committed: r.counter('twopc_transactions_committed_total', 'Commit decisions recorded by this coordinator.'),
      aborted: r.counter('twopc_transactions_aborted_total', 'Abort decisions recorded by this coordinator.'),
      storeRetries: r.counter('twopc_store_write_retries_total', 'Store writes repeated after an ambiguous failure.'),
      hintFailures: r.counter('twopc_hint_failures_total', 'Prepare or decision calls to participants that failed (hints only).'),
      collected: r.counter('twopc_transactions_collected_total', 'Finished transactions garbage-collected by this coordinator.'),
      collectedMeanwhile: r.counter('twopc_writes_refused_collected_total', 'Vote fills and decisions not written because the transaction was already collected.'),
      evicted: r.counter('twopc_transactions_evicted_total', 'Idle live transactions dropped to make room (reloaded from the store on demand).'),
      commitLatency: r.histogram('twopc_commit_latency_seconds', 'From a commit request to its outcome, in seconds.'),
    };
    const inDoubtFound = r.counter('twopc_transactions_in_doubt_total', 'Undecided transactions found past their deadline by the recovery loop.');
    const adopted = r.counter('twopc_recovery_adopted_total', 'Transactions taken over by the recovery loop.');
    const passes = r.counter('twopc_recovery_passes_total', 'Recovery scans run.');
    this.runtime = new CoordinatorRuntime({
      store: this.store,
      config: c,
      clock: this.clock,
      random,
      hints: this.hints,
      collector: this.collector,
      failpoints: opts.failpoints ?? new Failpoints(),
      log: this.log,
      metrics,
    });
    this.recovery = new RecoveryLoop({ store: this.store, runtime: this.runtime, collector: this.collector, config: c, clock: this.clock, random, log: this.log, metrics: { inDoubtFound, adopted, passes } });
    r.gauge('twopc_transactions_in_doubt', 'Undecided transactions past their deadline in the last full recovery scan.', () => this.recovery.lastInDoubt);
    r.gauge('twopc_live_transactions', 'Transactions this coordinator drives now.', () => this.runtime.liveCount);
    r.gauge('twopc_hints_skipped_total', 'Hints skipped because too many were in flight.', () => this.hints.skipped);
    this.app = coordinatorApp(this);
  }

  /** Starts the watch, the recovery loop and (with a port) the HTTP server. */
  async start(listen?: { readonly port: number; readonly host?: string }): Promise<number | undefined> {
    await this.runtime.start();
    this.recovery.start();
    if (listen === undefined) return undefined;
    const server = this.app.listen(listen.port, listen.host ?? '127.0.0.1');
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    // Requests wait for the store, up to their own timeouts; keep-alive sockets must outlive that.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await this.recovery.stop();
    await this.runtime.stop();
    this.hints.close();
    const server = this.server;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  metricsText(): string {
    return this.registry.render();
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
      const q = toParticipant(p);
      if (participants.some((x) => x.name === q.name)) throw new AppError('duplicate_participant', 400, `participant ${q.name} is listed twice`);
      participants.push(q);
    }
    if (participants.length > c.maxParticipants) throw new AppError('too_many_participants', 400, `at most ${c.maxParticipants} participants`);
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new AppError('invalid_idempotency_key', 400, 'Idempotency-Key must be 1 to 255 visible ASCII characters');
    }
    const nowMs = this.clock.nowMs();
    const id = idempotencyKey === undefined ? freshTxId(nowMs) : idForIdempotencyKey(idempotencyKey);
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

  async enlist(id: string, participant: unknown): Promise<{ id: string; participant: Participant }> {
    const p = toParticipant(participant);
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
    const view = await this.call(() => getTransaction(this.store, id, this.clock.nowMs()));
    if (view === null) throw new AppError('tx_not_found', 404, `no transaction ${id}`);
    return view;
  }

  list(opts: { state?: ListedState; limit?: number; after?: string }): Promise<{ transactions: TxSummary[]; next: string | null }> {
    const limit = opts.limit ?? this.config.listDefaultLimit;
    const o = { limit, scanMaxKeys: this.config.listScanMaxKeys, ...(opts.state === undefined ? {} : { state: opts.state }), ...(opts.after === undefined ? {} : { after: opts.after }) };
    return this.call(() => listTransactions(this.store, o, this.clock.nowMs()));
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
