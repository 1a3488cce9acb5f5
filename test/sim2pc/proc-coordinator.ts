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
import { participantAddress, type CoordinatorAnswer, type CoordinatorCall, type ParticipantAnswer, type ParticipantCall } from './messages.js';
import { isAppError } from '../../lib/errors.js';
import { mutatedStore, type Mutation } from './mutations.js';
import type { Net } from './net.js';
import { ServiceProc, type ErrorReport } from './proc-service.js';
import { simTxStore, type StoreAccessOptions } from './store-access.js';
import type { World } from './world.js';

export interface CoordinatorProcOptions {
  readonly config: Omit<Partial<CoordinatorConfig>, 'id'>;
  readonly store: StoreAccessOptions;
  readonly mutation: Mutation | undefined;
  /** What this coordinator answered a client: an outcome, or `already_committed` (for the checker). */
  readonly onOutcome: (coordinator: string, id: string, told: Decision) => void;
  /** A log line at level error (an assertion inside the runtime is a violation). */
  readonly onError: ErrorReport;
}

export class SimCoordinator extends ServiceProc<CoordinatorCall, CoordinatorAnswer> {
  private service: CoordinatorService | undefined;

  constructor(
    name: string,
    world: World,
    net: Net,
    private readonly opts: CoordinatorProcOptions,
  ) {
    super(name, world, net, opts.onError, opts.store.requestTimeoutMs);
  }

  protected onStart(): void {
    this.connect();
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

  private hintSender(): HintSender {
    const send = async (url: string, body: ParticipantCall): Promise<HintResult> => {
      const a = (await this.rpc.call(participantAddress(url), body, this.opts.config.hintTimeoutMs ?? defaultHintTimeoutMs)) as ParticipantAnswer | undefined;
      if (a === undefined) return { ok: false, error: 'no answer' };
      return a.ok ? { ok: true, status: 200, body: a } : { ok: false, status: a.status, body: a, error: a.code };
    };
    return {
      prepare: (url, txId, deadline) => send(url, { kind: 'prepare', txId, deadline }),
      decision: (url, txId, decision) => send(url, { kind: 'decision', txId, decision }),
    };
  }

  protected call(call: CoordinatorCall): Promise<CoordinatorAnswer> | undefined {
    const s = this.service;
    return s === undefined ? undefined : this.callService(s, call);
  }

  private async callService(s: CoordinatorService, call: CoordinatorCall): Promise<CoordinatorAnswer> {
    try {
      switch (call.op) {
        case 'begin':
          return { ok: true, id: (await s.begin({ participants: call.participants, timeoutMs: call.timeoutMs }, call.key)).id };
        case 'enlist':
          await s.enlist(call.txId, call.participant);
          return { ok: true, id: call.txId };
        case 'commit':
          return this.told(call.txId, await s.commit(call.txId));
        case 'abort':
          return this.told(call.txId, await s.abort(call.txId, call.reason));
      }
    } catch (e) {
      // 409 already_committed tells the client its transaction committed.
      if (isAppError(e) && e.code === 'already_committed' && call.op !== 'begin') this.opts.onOutcome(this.name, call.txId, 'commit');
      throw e;
    }
  }

  private told(id: string, body: OutcomeBody): CoordinatorAnswer {
    this.opts.onOutcome(this.name, id, body.outcome === 'committed' ? 'commit' : 'abort');
    return { ok: true, id, outcome: body.outcome };
  }
}

/** Simulated ms one hint waits for the participant when the config names none. */
const defaultHintTimeoutMs = 200;
