/**
 * Start-up recovery of a participant (issue 5, "Recovery at start"): every
 * log record without an ack is opened again with what the store holds now
 * (its vote key, the decision, the deadline), read at one revision, and the
 * machine does the rest:
 *
 * - work without a vote: the service's locks died with the process, so the
 *   only safe vote is "no" (logged, then CAS), and the transaction aborts;
 * - a logged "yes": the service takes its locks back first (`restore`), the
 *   "yes" is re-asserted by CAS (a "no" already there means abort), and the
 *   participant waits for the decision, helping decide past the deadline;
 * - a decision in the store is applied if it was not; an applied decision
 *   without an ack gets its ack;
 * - a transaction frozen without us, or committed without our "yes" (the
 *   application gave us work but never enlisted us), is aborted locally.
 *
 * The watch is started before this runs, so a decision written meanwhile is
 * seen either in the read or by the watch. Recovery reaches the node only
 * through `RecoveryHost` (no import of participant.ts: no cycle).
 */
import type { TxSnapshot } from '../coordinator/protocol/index.js';
import type { LogRecord } from './log.js';
import type { RecoverEvent } from './machine.js';

/** What recovery needs from the node that owns the open transactions (the node implements it; recovery never sees the node). */
export interface RecoveryHost {
  /** This participant's name: its vote key, and whether a frozen record lists it. */
  readonly name: string;
  /** Log records recovered at once. */
  readonly concurrency: number;
  /** Every log record not acknowledged yet, oldest first. */
  unfinished(): readonly LogRecord[];
  /** The transaction's keys read at one revision, retried while the store is unavailable; undefined once the node stops. */
  readSnapshot(txId: string): Promise<TxSnapshot | undefined>;
  /** Opens a logged transaction and steps `recover` with what the store holds; resolves once its locks are back. */
  recoverTx(record: LogRecord, stored: RecoverEvent['stored'], frozenWithoutUs: boolean): Promise<void>;
}

export async function recoverAll(host: RecoveryHost): Promise<{ readonly recovered: number }> {
  const records = host.unfinished();
  for (let i = 0; i < records.length; i += host.concurrency) {
    await Promise.all(
      records.slice(i, i + host.concurrency).map(async (record) => {
        const snap = await host.readSnapshot(record.txId);
        if (snap === undefined) return; // stopping
        const stored = {
          vote: snap.votes.get(host.name) ?? null,
          decision: snap.decision ?? null,
          deadline: snap.tx?.record.deadline ?? null,
        };
        const frozenWithoutUs = snap.tx?.record.state === 'preparing' && !snap.tx.record.participants.some((p) => p.name === host.name);
        await host.recoverTx(record, stored, frozenWithoutUs);
      }),
    );
  }
  return { recovered: records.length };
}
