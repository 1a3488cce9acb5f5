/**
 * A simulated coordinator: the real CoordinatorService, built as
 * coordinator/service/server.ts builds it, with hints as packets and
 * failpoints that crash this process; the client's calls are answered from
 * the service's methods, as routes.ts answers them.
 */
import { makeCoordinatorConfig } from '../../coordinator/runtime/index.js';
import type { HintResult, HintSender } from '../../coordinator/runtime/hints.js';
import { CoordinatorService, type OutcomeBody } from '../../coordinator/service/index.js';
import { isAppError } from '../../lib/errors.js';
import { coordinatorConfig } from './knobs.js';
import { participantAddress, ServiceProc, type CoordinatorAnswer, type CoordinatorCall, type ParticipantAnswer, type ParticipantCall } from './proc-service.js';

export class SimCoordinator extends ServiceProc<CoordinatorCall, CoordinatorAnswer> {
  private service: CoordinatorService | undefined;

  protected onStart(): void {
    this.connect();
    const store = this.txStore('coordinator');
    const config = makeCoordinatorConfig({ ...coordinatorConfig(this.world.knobs), id: this.name });
    const service = new CoordinatorService({
      config,
      store,
      timers: this.timers,
      random: this.world.random,
      hints: this.hintSender(config.hintTimeoutMs),
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

  /** Hints as packets to the participants, each waiting `timeoutMs` for its answer. */
  private hintSender(timeoutMs: number): HintSender {
    const send = async (url: string, body: ParticipantCall): Promise<HintResult> => {
      const a = (await this.rpc.call(participantAddress(url), body, timeoutMs)) as ParticipantAnswer | undefined;
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
      if (isAppError(e) && e.code === 'already_committed' && call.op !== 'begin') this.world.check((c) => c.onOutcome(this.name, call.txId, 'commit'));
      throw e;
    }
  }

  private told(id: string, body: OutcomeBody): CoordinatorAnswer {
    this.world.check((c) => c.onOutcome(this.name, id, body.outcome === 'committed' ? 'commit' : 'abort'));
    return { ok: true, id, outcome: body.outcome };
  }
}
