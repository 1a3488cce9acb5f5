/**
 * A simulated coordinator's calls to participants (coordinator/runtime/hints.ts and
 * the runtime's use of it): prepare and decision hints with a timeout, the
 * prepare repeated once on silence or a 5xx, the "early prepare" that goes
 * out with the freeze CAS instead of after it, and the decision hint sent
 * only to a participant that has not acked a while later. They are hints only: a
 * participant that never hears them learns everything from its watch.
 */
import type { Random } from '../../lib/random.js';
import type { Decision, Participant } from '../../coordinator/protocol/kernel.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import type { LiveTx } from './coordinator-tx.js';
import { participantAddress, type ParticipantAnswer } from './messages.js';
import type { RpcClient } from './net.js';
import type { Proc } from './world.js';

/** Answers that mean the participant saw the call (a 4xx): a prepare hint is not repeated. */
const seenCodes = new Set(['tx_not_active', 'work_conflict']);

export class Hints {
  constructor(
    private readonly proc: Proc,
    private readonly rpc: () => RpcClient,
    private readonly random: Random,
    private readonly timing: { readonly hintTimeoutMs: number; readonly prepareHintAttempts: number; readonly decisionHintDelayMs: number; readonly storeRetry: BackoffPolicy },
  ) {}

  /** runtime.ts `prepareEarly`: on commit of an active record, prepare everyone while the freeze is in flight. */
  prepareEarly(tx: LiveTx): void {
    const record = tx.machine?.view().record;
    if (tx.gone || record === undefined || record === null || record.state !== 'active' || this.proc.nowMs >= record.deadline) return;
    for (const p of record.participants) this.prepare(tx, p, record.deadline);
  }

  /** One prepare hint per participant and transaction (sent early, or on the machine's effect). */
  prepare(tx: LiveTx, p: Participant, deadline: number): void {
    if (tx.hinted.has(p.name)) return;
    tx.hinted.add(p.name);
    this.sendPrepare(tx, p, deadline, 0);
  }

  /** effects.ts `hintDecisionLater`: only for a participant that has not acked by then (its watch is faster). */
  decision(tx: LiveTx, p: Participant, decision: Decision): void {
    this.proc.after(this.timing.decisionHintDelayMs, () => {
      if (tx.gone || tx.machine?.view().acks.has(p.name) === true) return;
      this.rpc().call(participantAddress(p.url), { kind: 'decision', txId: tx.id, decision }, this.timing.hintTimeoutMs, () => undefined);
    });
  }

  private sendPrepare(tx: LiveTx, p: Participant, deadline: number, attempt: number): void {
    const t = this.timing;
    if (attempt >= t.prepareHintAttempts || tx.gone || this.proc.nowMs >= deadline) return;
    this.rpc().call(participantAddress(p.url), { kind: 'prepare', txId: tx.id, deadline }, t.hintTimeoutMs, (body) => {
      if (tx.preparesAnswered++ === 0) this.proc.failpoint('coordinator.afterSomePrepares');
      const a = body as ParticipantAnswer | undefined;
      // A participant that answered (even "no", or a 4xx) has seen the request: do not repeat it.
      if (a !== undefined && (a.ok || seenCodes.has(a.code))) return;
      this.proc.after(t.storeRetry.baseMs * 4 * (1 + this.random.float()), () => this.sendPrepare(tx, p, deadline, attempt + 1));
    });
  }
}
