/**
 * How store changes reach the coordinator's machines: ONE shared watch on
 * `tx/` per process (watcher.ts), its events routed to the live transaction
 * they concern and turned into machine events. A transaction is registered
 * before its snapshot is read; watched events that arrive meanwhile are
 * buffered and replayed if newer than the snapshot's revision, so nothing
 * falls between the read and the watch. When the watch lost history (`410
 * compacted`), every live transaction re-reads its snapshot (re-observations
 * are no-ops).
 */
import type { FailpointHook } from '../../lib/failpoints.js';
import { MAX_BUFFERED_EVENTS, type LiveTx } from './live-tx.js';
import type { Logger } from '../../lib/logger.js';
import type { CoordinatorEvent } from '../core/index.js';
import { decodeAck, decodeDecision, decodeVote, parseKey, type TxSnapshot } from '../protocol/index.js';
import { readTxSnapshot, type TxStore, type TxWatchEvent } from '../txstore/index.js';

export interface WatchFeedHost {
  readonly live: ReadonlyMap<string, LiveTx>;
  step(tx: LiveTx, event: CoordinatorEvent): void;
  unload(tx: LiveTx, error?: unknown): void;
}

/** The machine event a watched change means for transaction `id`; undefined when it means nothing. */
export function watchedEvent(id: string, e: TxWatchEvent): CoordinatorEvent | undefined {
  const parsed = parseKey(e.key);
  if (parsed === null || parsed.id !== id) return undefined;
  if (parsed.kind === 'tx') return { type: 'txObserved', raw: e.value };
  if (e.value === null) return undefined; // a vote, decision or ack deleted: only GC does that
  if (parsed.kind === 'vote') return { type: 'voteObserved', participant: parsed.participant, vote: decodeVote(e.value) };
  if (parsed.kind === 'decision') return { type: 'decisionObserved', decision: decodeDecision(e.value) };
  return { type: 'ackObserved', participant: parsed.participant };
}

/** Reads of a resync snapshot before giving up on one that stays behind the watch. */
const RESYNC_READ_ATTEMPTS = 3;

export class WatchFeed {
  constructor(
    private readonly host: WatchFeedHost,
    private readonly store: TxStore,
    private readonly failpoints: FailpointHook,
    private readonly log: Logger,
  ) {}

  /** The shared watch's callback. */
  dispatch(e: TxWatchEvent): void {
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    const tx = this.host.live.get(parsed.id);
    if (tx === undefined || tx.gone) return;
    if (tx.machine === undefined) {
      if (tx.buffered === undefined || tx.buffered.length >= MAX_BUFFERED_EVENTS) tx.overflowed = true;
      else tx.buffered.push(e);
      return;
    }
    this.feed(tx, e);
  }

  /** Steps a loaded transaction with one watched change. */
  feed(tx: LiveTx, e: TxWatchEvent): void {
    let event: CoordinatorEvent | undefined;
    try {
      event = watchedEvent(tx.id, e);
    } catch (err) {
      this.log('error', 'corrupt value in the store', { key: e.key, error: err });
      return;
    }
    tx.knownRevision = Math.max(tx.knownRevision, e.revision);
    if (event === undefined) return;
    if (event.type === 'txObserved') {
      // A deletion counts even when the machine knows newer: later keys of this id are orphans.
      if (event.raw === null) tx.deletedRevision ??= e.revision;
      // Older than the record the machine holds (the 2PC simulation's `stale-tx-event`).
      if (e.revision <= tx.txRevision) return;
      tx.txRevision = e.revision;
    } else if (this.isOrphan(tx, event, e.revision)) {
      return;
    } else if (event.type === 'ackObserved' && e.value !== null) {
      tx.ackTimes.set(event.participant, decodeAck(e.value));
    }
    this.host.step(tx, event);
    if (event.type === 'voteObserved' && tx.machine?.view().verdict === 'pending') this.failpoints.hit('coordinator.afterSomeVotes');
  }

  /**
   * A vote, decision or ack that cannot belong to the transaction the machine
   * drives: written after the record was collected, or a write-once key
   * holding another value than the machine saw (deleted by GC and recreated
   * by a late CAS retry, the deletion itself lost to a watch compaction).
   * The recovery loop deletes such orphan keys.
   */
  private isOrphan(tx: LiveTx, event: CoordinatorEvent, revision: number): boolean {
    let orphan = tx.deletedRevision !== undefined && revision > tx.deletedRevision;
    const view = tx.machine?.view();
    if (!orphan && view !== undefined) {
      if (event.type === 'voteObserved') {
        const known = view.votes.get(event.participant);
        orphan = known !== undefined && (known.vote !== event.vote.vote || known.by !== event.vote.by);
      } else if (event.type === 'decisionObserved') {
        orphan = view.decision !== undefined && view.decision !== event.decision;
      }
    }
    if (orphan) this.log('warn', 'ignored a key written after its transaction was collected', { txId: tx.id, event: event.type, revision });
    return orphan;
  }

  /** The watch lost history: every live transaction reads its snapshot again. */
  resyncAll(): void {
    for (const tx of this.host.live.values()) {
      if (tx.machine === undefined) tx.overflowed = true;
      else void this.resync(tx);
    }
  }

  /**
   * Re-reads a transaction and feeds what the store holds (re-observations
   * are no-ops). The watch and the machine's own writes keep feeding while
   * the read is in flight, so a snapshot may come back older than what the
   * machine already holds (the chaos runner caught one showing the record
   * `active` after the watch showed it frozen; the 2PC simulation one older
   * than the frozen record a failed begin CAS returned): such a snapshot is
   * read again, and dropped if still behind.
   */
  async resync(tx: LiveTx): Promise<void> {
    tx.overflowed = false;
    let snap: TxSnapshot | undefined;
    for (let attempt = 0; attempt < RESYNC_READ_ATTEMPTS; attempt++) {
      try {
        snap = await readTxSnapshot(this.store, tx.id);
      } catch (e) {
        this.log('warn', 'resync read failed; dropping the transaction until recovery', { txId: tx.id, error: e });
        if (tx.waiters.size === 0) this.host.unload(tx);
        return;
      }
      if (snap.revision >= newestKnown(tx)) break;
    }
    if (snap === undefined || snap.revision < newestKnown(tx)) {
      this.log('info', 'resync snapshot older than what the machine holds; kept the newer state', { txId: tx.id, snapshotRevision: snap?.revision, knownRevision: newestKnown(tx) });
      return;
    }
    tx.knownRevision = snap.revision;
    tx.txRevision = Math.max(tx.txRevision, snap.revision);
    this.host.step(tx, { type: 'txObserved', raw: snap.tx?.raw ?? null });
    // Without its record, what the snapshot shows of a transaction are orphans (see isOrphan).
    if (snap.tx === null) {
      tx.deletedRevision ??= snap.revision;
      return;
    }
    const events: CoordinatorEvent[] = [];
    for (const [participant, vote] of snap.votes) events.push({ type: 'voteObserved', participant, vote });
    if (snap.decision !== undefined) events.push({ type: 'decisionObserved', decision: snap.decision });
    for (const [participant, at] of snap.acks) {
      tx.ackTimes.set(participant, at);
      events.push({ type: 'ackObserved', participant });
    }
    for (const event of events) if (!this.isOrphan(tx, event, snap.revision)) this.host.step(tx, event);
  }
}

/** The newest store revision a live transaction's machine reflects: from watched events, snapshots, or its record's CAS answers. */
function newestKnown(tx: LiveTx): number {
  return Math.max(tx.knownRevision, tx.txRevision);
}
