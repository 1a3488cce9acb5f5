/**
 * What a simulated coordinator keeps per live transaction (runtime.ts
 * `LiveTx`), plus two small pieces of its request path: the reply built from
 * a compacted record (service.ts answers a collected transaction from it) and
 * a one-line description of machine events for traces.
 *
 * The two watch filters here are the simulation's workarounds for bugs it
 * found (knobs.ts KNOWN_BUGS stale-tx-event, orphan-event): a watched record
 * older than the one the machine adopted from its own CAS result, and keys
 * written after the record was deleted, are not fed to the machine.
 */
import { decisionOfDone, type DoneRecord } from '../../coordinator/compacted.js';
import type { CoordinatorEvent, CoordinatorMachine, CoordinatorReply } from '../../coordinator/machine.js';
import type { VoteValue } from '../../coordinator/protocol.js';
import type { TxWatchEvent } from '../../coordinator/store.js';
import type { CasResult } from '../../store/kv/index.js';
import type { CoordinatorCall } from './messages.js';
import type { Timer } from './world.js';

/** A CAS result; `guardMissing` when a guarded write found the record collected. */
export type Written = CasResult & { readonly guardMissing?: boolean };

export type Loaded = (tx: LiveTx | undefined, code?: string) => void;

export class LiveTx {
  machine: CoordinatorMachine | undefined;
  /** Watched events that arrived while the snapshot was read; undefined once the machine exists. */
  buffered: TxWatchEvent[] | undefined = [];
  overflowed = false;
  /** Callers waiting for the snapshot read; undefined once loaded. */
  loadWaiters: Loaded[] | undefined;
  readonly waiters = new Map<string, { readonly from: string; readonly rid: string; readonly op: CoordinatorCall['op']; readonly timer: Timer }>();
  deadlineTimer: Timer | undefined;
  ackTimer: Timer | undefined;
  /** Store writes in flight. */
  inflight = 0;
  gone = false;
  preparesAnswered = 0;
  /** Participants already sent a prepare hint (early, or on the machine's effect): one each. */
  readonly hinted = new Set<string>();
  /** Revision at which the machine last learned `tx/{id}` (snapshot, CAS result or watch). */
  txRevision = 0;
  /** Revision at which `tx/{id}` was seen deleted (collected); later keys of it are orphans. */
  deletedRevision: number | undefined;

  constructor(readonly id: string) {}

  /** A record (watched, or read) older than the one the machine has; otherwise note it as the newest. */
  isStale(revision: number): boolean {
    if (revision < this.txRevision) return true;
    this.txRevision = revision;
    return false;
  }

  /** A vote, decision or ack written after the record was deleted: a late CAS retry recreated it. */
  isOrphan(revision: number): boolean {
    return this.deletedRevision !== undefined && revision > this.deletedRevision;
  }
}

/** service.ts: commit, abort and enlist of a collected transaction answer from its compacted record. */
export function replyFromDone(id: string, op: CoordinatorCall['op'], done: DoneRecord): CoordinatorReply {
  if (op === 'enlist') return { kind: 'error', code: 'tx_not_active', message: `transaction ${id} is finished` };
  if (op === 'abort' && decisionOfDone(done) === 'commit') return { kind: 'error', code: 'already_committed', message: `transaction ${id} is committed` };
  const votes: Record<string, VoteValue | null> = {};
  for (const p of done.participants) votes[p.name] = done.votes[p.name]?.vote ?? null;
  return { kind: 'outcome', id, outcome: done.outcome, votes };
}

export function describeEvent(e: CoordinatorEvent): string {
  switch (e.type) {
    case 'txWritten':
      return `txWritten ${e.succeeded ? 'ok' : 'failed'} ${e.value}`;
    case 'txObserved':
      return `txObserved ${e.raw ?? 'deleted'}`;
    case 'voteObserved':
      return `voteObserved ${e.participant} ${e.vote.vote} by ${e.vote.by}`;
    case 'voteWritten':
    case 'ackObserved':
      return `${e.type} ${e.participant}`;
    case 'decisionWritten':
      return `decisionWritten ${e.succeeded ? 'ok' : 'failed'}`;
    case 'decisionObserved':
      return `decisionObserved ${e.decision}`;
    default:
      return e.type;
  }
}
