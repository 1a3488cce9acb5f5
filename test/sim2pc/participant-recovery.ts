/**
 * A simulated participant's recovery at start, participant/recovery.ts in
 * callback form: every unacknowledged log record is opened again with what
 * the store holds (its vote key, the decision, the deadline, read at one
 * revision), 16 at a time, and the machine does the rest (work without a
 * vote votes "no"; a logged "yes" restores its locks and waits; a known
 * decision is applied; an applied one is acknowledged). The watch was
 * started before this runs, so nothing decided meanwhile is missed.
 */
import type { LogRecord } from '../../participant/log.js';
import type { SimParticipant } from './participant.js';
import type { SimStore } from './store-client.js';
import { readTxSnapshot } from './txstore-ops.js';

/** Records recovered at once (recovery.ts). */
const recoveryConcurrency = 16;

export function recoverAll(p: SimParticipant, store: SimStore, retryMs: number, judgeCurrentRecord: boolean, ready: () => void): void {
  const records = p.log.unfinished();
  if (records.length > 0) p.count('participant restarts with records');
  const chunk = (from: number): void => {
    if (from >= records.length) return ready();
    const batch = records.slice(from, from + recoveryConcurrency);
    let left = batch.length;
    for (const record of batch) {
      recoverOne(p, store, record, retryMs, judgeCurrentRecord, () => {
        if (--left === 0) chunk(from + recoveryConcurrency);
      });
    }
  };
  chunk(0);
}

function recoverOne(p: SimParticipant, store: SimStore, record: LogRecord, retryMs: number, judgeCurrentRecord: boolean, done: () => void): void {
  readTxSnapshot(store, record.txId, (o) => {
    if (!o.ok) {
      // The real start() fails and the process restarts; trying the read again is the same thing, cheaper.
      p.after(retryMs, () => recoverOne(p, store, record, retryMs, judgeCurrentRecord, done));
      return;
    }
    const snap = o.value;
    const stored = { vote: snap.votes.get(p.name) ?? null, decision: snap.decision ?? null, deadline: snap.tx?.record.deadline ?? null };
    const frozenWithoutUs = snap.tx?.record.state === 'preparing' && !snap.tx.record.participants.some((x) => x.name === p.name);
    const tx = p.openTx(record.txId);
    // recovery.ts judges by the record it listed at start (known bug stale-recovery-record): the watch
    // may have voted "yes" since, and then a commit looks like a commit without us.
    const judged = judgeCurrentRecord ? (p.log.get(record.txId) ?? record) : record;
    const excluded = frozenWithoutUs || (stored.decision === 'commit' && judged.vote?.vote !== 'yes');
    // Excluded first, so the recovery does not cast a vote for a transaction that is not ours.
    if (excluded) p.step(tx, { type: 'excluded' });
    p.step(tx, { type: 'recover', nowMs: p.nowMs, stored: excluded ? { ...stored, decision: stored.decision === 'abort' ? 'abort' : null } : stored });
    p.count('participant records recovered');
    done();
  });
}
