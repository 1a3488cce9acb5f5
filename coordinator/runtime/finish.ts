/**
 * Finishing a transaction from the store alone, in one call, with no hints,
 * no timers and no memory: what a participant does when its deadline passes
 * with no decision ("helpDecide"), and what a tool can do by hand.
 *
 * It runs the coordinator's own machine from a snapshot with `recover` past
 * the deadline, performing only the store writes: freeze an active record
 * (CAS), fill every missing vote with "no" (CAS create-if-absent), record the
 * decision (CAS create-if-absent); the fills and the decision only while the
 * frozen record is still there (txstore/txstore.ts `guardedCreate`). Every write is a
 * CAS, so racing a live coordinator, or another helper, is safe: the machine
 * adopts whatever the store holds. Before the deadline it writes nothing (a live coordinator may
 * still be collecting votes) unless the votes already decide.
 */
import type { Random } from '../../lib/random.js';
import type { Timers } from '../../lib/timers.js';
import { CoordinatorMachine, type CoordinatorEffect } from '../core/index.js';
import { decisionOfDone } from '../protocol/index.js';
import { PROTOCOL_LIMITS, txKey, type Decision } from '../protocol/index.js';
import { readDone } from './query.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import { casValueWithVote, guardedCreate, readTxSnapshot, withStoreRetries, type GuardedCasResult, type TxStore } from '../txstore/index.js';

export interface FinishOptions {
  readonly helperId: string;
  readonly nowMs: number;
  readonly retry: BackoffPolicy;
  readonly random: Random;
  /** The waits between retried writes. */
  readonly timers: Pick<Timers, 'sleep'>;
}

/** The decision the store holds afterwards, or undefined (no such transaction, or not decidable yet). */
export async function finishTransaction(store: TxStore, txId: string, opts: FinishOptions): Promise<Decision | undefined> {
  const snapshot = await readTxSnapshot(store, txId);
  if (snapshot.decision !== undefined) return snapshot.decision;
  if (snapshot.tx === null) return undefined;
  const machine = new CoordinatorMachine(snapshot, { coordinatorId: opts.helperId, maxParticipants: PROTOCOL_LIMITS.maxParticipants });
  const queue: CoordinatorEffect[] = machine.step({ type: 'recover', nowMs: opts.nowMs });
  // Each participant's vote, the record and the decision are written at most a few times each.
  const maxWrites = 4 * PROTOCOL_LIMITS.maxParticipants + 16;
  let writes = 0;
  for (let e = queue.shift(); e !== undefined; e = queue.shift()) {
    if (e.type !== 'writeTx' && e.type !== 'writeVote' && e.type !== 'writeDecision') continue;
    if (++writes > maxWrites) throw new Error(`finishTransaction(${txId}): more than ${maxWrites} writes`);
    const write = e;
    const r = await withStoreRetries(
      async (): Promise<GuardedCasResult & { voteCreated: boolean }> => {
        if (write.type !== 'writeTx') return { ...(await guardedCreate(store, write.key, write.value, { key: txKey(txId), value: write.guard })), voteCreated: false };
        if (write.expected === null) return { ...(await store.casCreate(write.key, write.value)), guardFailed: false, voteCreated: false };
        return { ...(await casValueWithVote(store, write.key, write.expected, write.value, write.withVote)), guardFailed: false };
      },
      opts.retry,
      opts.random,
      opts.timers,
    );
    if (r.guardFailed) {
      // Collected meanwhile by a coordinator: the compacted record holds the decision.
      const done = await readDone(store, txId);
      return done === null ? undefined : decisionOfDone(done);
    }
    if (write.type === 'writeTx' && write.withVote !== undefined) {
      queue.push(...machine.step({ type: 'voteWritten', participant: write.withVote.participant, succeeded: r.voteCreated, previous: null }));
    }
    if (write.type === 'writeTx') queue.push(...machine.step({ type: 'txWritten', value: write.value, succeeded: r.succeeded, previous: r.previous }));
    else if (write.type === 'writeVote') queue.push(...machine.step({ type: 'voteWritten', participant: write.participant, succeeded: r.succeeded, previous: r.previous }));
    else queue.push(...machine.step({ type: 'decisionWritten', succeeded: r.succeeded, previous: r.previous }));
  }
  return machine.view().decision;
}
