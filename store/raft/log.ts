/**
 * The Raft log as this peer knows it: a compacted prefix (summarised by the
 * latest snapshot), stable entries the application has persisted, and
 * unstable entries it has yet to persist. Pure data, no I/O.
 */
import { assert } from '../../lib/assert.js';
import type { Entry, Snapshot } from './types.js';

/** Rough encoded size of an entry, for message and apply byte caps. */
export function entryBytes(e: Entry): number {
  return e.data.length + 24;
}

export class RaftLog {
  /** Invariant: entries[i].index === offset + 1 + i. */
  private entries: Entry[] = [];
  /** Index of the last compacted entry (the log starts after it). */
  private offset: number;
  private offsetTerm: number;
  /** Invariant: offset <= committed <= lastIndex(), except while a restored snapshot is unapplied. */
  committed: number;
  /** Invariant: applied <= committed. */
  applied: number;
  /** Invariant: offset <= stableIndex <= lastIndex(). Entries after it must still be persisted. */
  stableIndex: number;
  /** The newest snapshot: sent to followers whose next entry was compacted away. */
  snapshot: Snapshot;
  /** A snapshot received from the leader that the application has yet to persist and install. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number) {
    this.snapshot = snapshot;
    this.offset = snapshot.meta.index;
    this.offsetTerm = snapshot.meta.term;
    for (const e of entries) {
      if (e.index <= this.offset) continue;
      assert(e.index === this.lastIndex() + 1, `log gap at ${e.index} after ${this.lastIndex()}`);
      this.entries.push(e);
    }
    this.stableIndex = this.lastIndex();
    this.committed = Math.min(Math.max(committed, this.offset), this.lastIndex());
    this.applied = this.offset;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of entry i, or undefined when i is compacted away or past the end. */
  term(i: number): number | undefined {
    if (i === this.offset) return this.offsetTerm;
    if (i < this.offset || i > this.lastIndex()) return undefined;
    return this.entries[i - this.offset - 1]?.term;
  }

  entryAt(i: number): Entry | undefined {
    return this.entries[i - this.offset - 1];
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Leader-side append of new entries at the end. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0] as Entry;
    assert(first.index === this.lastIndex() + 1, 'leader append must extend the log');
    for (const e of entries) this.entries.push(e);
  }

  /**
   * Follower-side AppendEntries (§5.3, Figure 2 receiver rules 2-5). Returns
   * the last index known to match the leader, or undefined on a mismatch at prevIndex.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      // Figure 2 rule 3: delete the conflicting entry and all that follow it.
      assert(conflict > this.committed, `conflict at ${conflict} would truncate committed ${this.committed}`);
      this.truncateAndAppend(entries.slice(conflict - prevIndex - 1));
    }
    // Rule 5: commit up to the last new entry, never past it (entries after it may be stale).
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** The first entry whose term differs from ours (or that we lack); 0 when all match. */
  private findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = (entries[0] as Entry).index;
    assert(first > this.offset, 'cannot overwrite compacted entries');
    this.entries.length = first - this.offset - 1;
    if (this.stableIndex >= first) this.stableIndex = first - 1;
    for (const e of entries) this.entries.push(e);
  }

  /**
   * Fast back-tracking: the largest index <= `index` whose term is <= `term`.
   * A follower reports it on reject; the leader uses it to skip a whole term at once.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
      i--;
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} past last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries in [lo, ...) up to a count and byte cap; at least one if any exist. */
  slice(lo: number, maxEntries: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= this.lastIndex() && out.length < maxEntries; i++) {
      const e = this.entryAt(i);
      assert(e !== undefined, `slice at compacted index ${i}`);
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  unstableEntries(): Entry[] {
    return this.entries.slice(this.stableIndex - this.offset);
  }

  /** The application persisted entries up to (index, term); ignored if they were overwritten since. */
  stableTo(index: number, term: number): void {
    if (index > this.stableIndex && this.matchTerm(index, term)) this.stableIndex = index;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.offset);
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied, this.offset) + 1;
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed - lo + 1, maxBytes);
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    assert(index <= this.committed, `applied ${index} past committed ${this.committed}`);
    this.applied = index;
  }

  /** Install a leader's snapshot (§7): everything we had is replaced by it. */
  restore(snapshot: Snapshot): void {
    this.entries = [];
    this.offset = snapshot.meta.index;
    this.offsetTerm = snapshot.meta.term;
    this.committed = snapshot.meta.index;
    this.stableIndex = snapshot.meta.index;
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
  }

  /**
   * The application took a snapshot; keep up to `keepEntries` entries, and
   * at most `keepBytes` of them, before it for slow followers.
   */
  compact(snapshot: Snapshot, keepEntries: number, keepBytes = Number.MAX_SAFE_INTEGER): void {
    const index = snapshot.meta.index;
    assert(index <= this.applied, `snapshot ${index} past applied ${this.applied}`);
    if (index > this.snapshot.meta.index) this.snapshot = snapshot;
    let cut = Math.max(this.offset, index - keepEntries);
    let kept = 0;
    for (let i = index; i > cut; i--) {
      kept += entryBytes(this.entryAt(i) as Entry);
      if (kept > keepBytes) {
        cut = i;
        break;
      }
    }
    if (cut <= this.offset) return;
    const cutTerm = this.term(cut);
    assert(cutTerm !== undefined, 'compaction point must be in the log');
    this.entries = this.entries.slice(cut - this.offset);
    this.offset = cut;
    this.offsetTerm = cutTerm;
  }

  /** Entries in (from, to] still in memory, for replaying configuration at restart. */
  between(from: number, to: number): Entry[] {
    const lo = Math.max(from, this.offset) + 1;
    return lo > to ? [] : this.entries.slice(lo - this.offset - 1, to - this.offset);
  }
}
