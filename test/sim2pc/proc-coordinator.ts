/**
 * A simulated coordinator process: the real CoordinatorService (runtime,
 * effects, watch feed, recovery loop, garbage collection, hints capped as
 * in production), built as coordinator/service/server.ts builds it, with
 * every outside effect simulated: the store through the real store client
 * over the lossy network, hints to participants as packets, time on the
 * simulated clock, failpoints that crash this process. The client's REST
 * calls arrive as packets and are answered from the service's methods, as
 * routes.ts answers them; only express and node:http are left out.
 */
import { makeCoordinatorConfig, type CoordinatorConfig } from '../../coordinator/runtime/index.js';
import type { HintResult, HintSender } from '../../coordinator/runtime/hints.js';
import { CoordinatorService, type OutcomeBody } from '../../coordinator/service/index.js';
import type { Decision } from '../../coordinator/protocol/index.js';
import { AssertionError } from '../../lib/assert.js';
import { isAppError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { SimHttpClient, isStreamChunk, type SimStreamChunk } from './http.js';
import { participantAddress, type CoordinatorAnswer, type CoordinatorCall, type ParticipantAnswer, type ParticipantCall } from './messages.js';
import { mutatedStore, type Mutation } from './mutations.js';
import { RpcClient, type Net, type Packet } from './net.js';
import { simTxStore, type StoreAccessOptions } from './store-access.js';
import { Proc, type World } from './world.js';

export interface CoordinatorProcOptions {
  readonly config: Omit<Partial<CoordinatorConfig>, 'id'>;
  readonly store: StoreAccessOptions;
  readonly mutation: Mutation | undefined;
  /** What this coordinator answered a client: an outcome, or `already_committed` (for the checker). */
  readonly onOutcome: (coordinator: string, id: string, told: Decision) => void;
  /** A log line at level error (an assertion inside the runtime is a violation). */
  readonly onError: (coordinator: string, message: string, fields: Readonly<Record<string, unknown>> | undefined) => void;
}

export class SimCoordinator extends Proc {
  private service: CoordinatorService | undefined;
  private rpc!: RpcClient;
  private http!: SimHttpClient;

  constructor(
    name: string,
    world: World,
    private readonly net: Net,
    private readonly opts: CoordinatorProcOptions,
  ) {
    super(name, world);
    net.register(name, (p) => this.receive(p));
  }

  protected onStart(): void {
    this.rpc = new RpcClient(this, this.net);
    this.http = new SimHttpClient(this, this.net, this.rpc, this.opts.store.requestTimeoutMs);
    const store = mutatedStore(simTxStore(this, this.http, this.world.random, this.opts.store), 'coordinator', this.opts.mutation);
    const service = new CoordinatorService({
      config: makeCoordinatorConfig({ ...this.opts.config, id: this.name }),
      store,
      timers: this.timers,
      random: this.world.random,
      hints: this.hintSender(),
      failpoints: { hit: (name) => this.failpoint(name) },
      log: this.logger(),
    });
    const inc = this.incarnation;
    void service.start().then(() => {
      if (this.isLive(inc)) this.service = service;
    });
  }

  protected onKill(): void {
    // Dropped, not stopped: a SIGKILL runs no shutdown. Its timers and I/O die with the incarnation.
    this.service = undefined;
    this.http.clear();
  }

  private logger(): Logger {
    return (level, message, fields) => {
      if (level === 'error' || fields?.['error'] instanceof AssertionError) this.opts.onError(this.name, message, fields);
      if (this.world.tracing && level !== 'debug') this.world.trace(`${this.name} ${level}: ${message}${fields === undefined ? '' : ` ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`}`);
    };
  }

  private hintSender(): HintSender {
    const call = async (url: string, body: ParticipantCall): Promise<HintResult> => {
      const a = (await this.rpc.call(participantAddress(url), body, this.opts.config.hintTimeoutMs ?? defaultHintTimeoutMs)) as ParticipantAnswer | undefined;
      if (a === undefined) return { ok: false, error: 'no answer' };
      return a.ok ? { ok: true, status: 200, body: a } : { ok: false, status: a.status, body: a, error: a.code };
    };
    return {
      prepare: (url, txId, deadline) => call(url, { kind: 'prepare', txId, deadline }),
      decision: (url, txId, decision) => call(url, { kind: 'decision', txId, decision }),
    };
  }

  private receive(p: Packet): void {
    if (!this.alive) return;
    const pl = p.payload;
    if (pl.kind === 'resp') {
      if (isStreamChunk(p)) this.http.onChunk(pl.body as SimStreamChunk);
      else this.rpc.onReply(pl.rid, pl.body);
    } else if (pl.kind === 'req') {
      void this.serve(p.from, pl.rid, pl.body as CoordinatorCall);
    }
  }

  /** One client call: answered from the service, or `not_ready` while it starts (routes.ts would be down). */
  private async serve(from: string, rid: string, call: CoordinatorCall): Promise<void> {
    const inc = this.incarnation;
    const answer = await this.answer(call);
    if (this.isLive(inc)) this.net.send(this.name, from, { kind: 'resp', rid, body: answer });
  }

  private async answer(call: CoordinatorCall): Promise<CoordinatorAnswer> {
    const s = this.service;
    if (s === undefined) return { ok: false, code: 'not_ready', status: 503 };
    try {
      switch (call.op) {
        case 'begin': {
          const r = await s.begin({ participants: call.participants, timeoutMs: call.timeoutMs }, call.key);
          return { ok: true, id: r.id };
        }
        case 'enlist':
          await s.enlist(call.txId, call.participant);
          return { ok: true, id: call.txId };
        case 'commit':
          return this.told(call.txId, await s.commit(call.txId));
        case 'abort':
          return this.told(call.txId, await s.abort(call.txId, call.reason));
      }
    } catch (e) {
      if (!isAppError(e)) {
        // routes.ts would answer 500: a bug, not an expected failure.
        this.opts.onError(this.name, 'internal error answering a call', { error: e });
        return { ok: false, code: 'internal', status: 500 };
      }
      if (e.code === 'already_committed' && call.op !== 'begin') this.opts.onOutcome(this.name, call.txId, 'commit');
      return { ok: false, code: e.code, status: e.status };
    }
  }

  private told(id: string, body: OutcomeBody): CoordinatorAnswer {
    this.opts.onOutcome(this.name, id, body.outcome === 'committed' ? 'commit' : 'abort');
    return { ok: true, id, outcome: body.outcome };
  }
}

/** Simulated ms one hint waits for the participant when the config names none. */
const defaultHintTimeoutMs = 200;
