/**
 * What a simulated coordinator keeps per live transaction (runtime.ts
 * `LiveTx`), plus two small pieces of its request path: the reply built from
 * a compacted record (service.ts answers a collected transaction from it) and
 * a one-line description of machine events for traces.
 *
 * It also turns watched changes and snapshots into machine events, with the
 * simulation's two watch filters, workarounds for bugs it found (knobs.ts
 * KNOWN_BUGS stale-tx-event, orphan-event): a watched record older than the
 * one the machine adopted from its own CAS result, and keys written after the
 * record was deleted, are not fed to the machine.
 */
import { decisionOfDone, type DoneRecord } from '../../coordinator/protocol/compacted.js';
import type { CoordinatorEvent, CoordinatorMachine, CoordinatorReply } from '../../coordinator/core/machine.js';
import { decodeDecision, decodeVote, parseKey, type TxSnapshot, type VoteValue } from '../../coordinator/protocol/kernel.js';
import type { TxWatchEvent } from '../../coordinator/txstore/txstore.js';
import type { CasResult } from '../../store/kv/index.js';
import type { CoordinatorCall } from './messages.js';
import type { Timer } from './world.js';

/** A CAS result; `guardMissing` when a guarded write found the record collected; `voteCreated` for a freeze with a vote. */
export type Written = CasResult & { readonly guardMissing?: boolean; readonly voteCreated?: boolean };

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

/** Which watched changes reach the machine (the workarounds are on unless a known bug is asked for). */
export interface WatchFilters {
  readonly feedStale: boolean;
  readonly feedOrphans: boolean;
  readonly count: (name: string) => void;
}

function stale(tx: LiveTx, revision: number, f: WatchFilters): boolean {
  const yes = !f.feedStale && tx.isStale(revision);
  if (yes) f.count('stale tx records not fed');
  return yes;
}

function orphan(tx: LiveTx, revision: number, f: WatchFilters): boolean {
  const yes = !f.feedOrphans && tx.isOrphan(revision);
  if (yes) f.count('orphan events not fed');
  return yes;
}

/** runtime.ts `feedWatched`: the machine event for a watched change, or undefined when none is fed. */
export function watchedEvent(tx: LiveTx, e: TxWatchEvent, f: WatchFilters): CoordinatorEvent | undefined {
  const parsed = parseKey(e.key);
  if (parsed === null || parsed.id !== tx.id) return undefined;
  if (parsed.kind === 'tx') {
    // A deletion counts even when the machine knows newer (its own CAS found the record gone).
    if (e.value === null) tx.deletedRevision ??= e.revision;
    if (stale(tx, e.revision, f)) return undefined;
    return { type: 'txObserved', raw: e.value };
  }
  if (orphan(tx, e.revision, f) || e.value === null) return undefined; // a child key deleted: only GC does that
  let event: CoordinatorEvent;
  if (parsed.kind === 'vote') event = { type: 'voteObserved', participant: parsed.participant, vote: decodeVote(e.value) };
  else if (parsed.kind === 'decision') event = { type: 'decisionObserved', decision: decodeDecision(e.value) };
  else event = { type: 'ackObserved', participant: parsed.participant };
  return recreated(tx, event, f) ? undefined : event;
}

/**
 * A vote or decision that differs from the one the machine knows: the key is
 * write-once, so it was deleted (collected) and written again by a late CAS.
 * Caught here even when the deletion itself was never seen (the watch lost
 * history to compaction and the resync read has not come back yet).
 */
function recreated(tx: LiveTx, event: CoordinatorEvent, f: WatchFilters): boolean {
  if (f.feedOrphans || tx.machine === undefined) return false;
  const view = tx.machine.view();
  let yes = false;
  if (event.type === 'voteObserved') {
    const known = view.votes.get(event.participant);
    yes = known !== undefined && (known.vote !== event.vote.vote || known.by !== event.vote.by);
  } else if (event.type === 'decisionObserved') {
    yes = view.decision !== undefined && view.decision !== event.decision;
  }
  if (yes) f.count('orphan events not fed');
  return yes;
}

/** runtime.ts `resync`: what a fresh snapshot tells the machine (re-observations are no-ops). */
export function snapshotEvents(tx: LiveTx, snap: TxSnapshot, f: WatchFilters): CoordinatorEvent[] {
  const out: CoordinatorEvent[] = [];
  if (!stale(tx, snap.revision, f)) out.push({ type: 'txObserved', raw: snap.tx?.raw ?? null });
  if (snap.tx === null) tx.deletedRevision ??= snap.revision;
  if (orphan(tx, snap.revision + 1, f)) return out;
  for (const [participant, vote] of snap.votes) out.push({ type: 'voteObserved', participant, vote });
  if (snap.decision !== undefined) out.push({ type: 'decisionObserved', decision: snap.decision });
  for (const participant of snap.acks.keys()) out.push({ type: 'ackObserved', participant });
  return out.filter((e) => !recreated(tx, e, f));
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
