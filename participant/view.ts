/** The operator's view of the participant log (`GET /v1/participant/transactions`). */
import type { LogRecord } from './log.js';
import { isInDoubt, phaseOf, type ParticipantPhase } from './machine.js';
import type { ParticipantTxView } from './options.js';

export interface TxListQuery {
  readonly phase?: ParticipantPhase;
  readonly limit: number;
}

/** At most `limit` of `records` (oldest first, as the log lists them), newest first, in `phase` if given. */
export function listTransactions(records: readonly LogRecord[], q: TxListQuery): ParticipantTxView[] {
  const out: ParticipantTxView[] = [];
  for (let i = records.length - 1; i >= 0 && out.length < q.limit; i--) {
    const r = records[i] as LogRecord;
    const phase = phaseOf(r);
    if (q.phase !== undefined && phase !== q.phase) continue;
    out.push({
      txId: r.txId,
      phase,
      inDoubt: isInDoubt(r),
      work: r.work,
      vote: r.vote?.vote ?? null,
      decision: r.applied?.decision ?? null,
      receivedAt: r.receivedAt,
      appliedAt: r.applied?.at ?? null,
      ackedAt: r.ackedAt ?? null,
    });
  }
  return out;
}
