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
 * seen either in the read or by the watch.
 */
import { readTxSnapshot } from '../coordinator/txstore/index.js';
import type { ParticipantNode } from './participant.js';

/** Records recovered at once. */
const RECOVERY_CONCURRENCY = 16;

export async function recoverAll(node: ParticipantNode): Promise<{ readonly recovered: number }> {
  const records = node.log.unfinished();
  for (let i = 0; i < records.length; i += RECOVERY_CONCURRENCY) {
    await Promise.all(
      records.slice(i, i + RECOVERY_CONCURRENCY).map(async (record) => {
        const snap = await readTxSnapshot(node.storeForRecovery, record.txId);
        const stored = {
          vote: snap.votes.get(node.name) ?? null,
          decision: snap.decision ?? null,
          deadline: snap.tx?.record.deadline ?? null,
        };
        const frozenWithoutUs = snap.tx?.record.state === 'preparing' && !snap.tx.record.participants.some((p) => p.name === node.name);
        await node.recoverTx(record, stored, frozenWithoutUs);
      }),
    );
  }
  return { recovered: records.length };
}
