// Goal: the Raft log (log.ts) on its own: terms at the edges of a compacted
// log, the §5.4.1 up-to-date comparison, Figure 2's AppendEntries receiver
// rules (match, conflict truncation, commit), fast back-tracking hints, the
// byte and count caps, the unstable/stable split that drives persistence,
// and compaction and snapshot restore.
import { describe, expect, it } from 'vitest';
import { RaftLog, entryBytes } from '../../store/raft/log.js';
import { emptySnapshot, type Entry, type Snapshot } from '../../store/raft/index.js';
import { ent, ents, termsOf } from './paper-helpers.js';

const conf = { voters: ['1'], learners: [] };
const snap = (index: number, term: number, data = ''): Snapshot => ({ meta: { index, term, conf }, data });
const logWith = (terms: number[], committed = 0) => new RaftLog(emptySnapshot(conf), ents(...terms), committed);
const all = (l: RaftLog): Entry[] => l.between(l.firstIndex() - 1, l.lastIndex());

describe('RaftLog', () => {
  it('starts after its snapshot, with stored entries stable and commit clamped to what it holds', () => {
    const l = new RaftLog(snap(3, 2), [ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)], 9);
    expect([l.firstIndex(), l.lastIndex(), l.lastTerm()]).toEqual([4, 5, 3]);
    expect(l.committed).toBe(5);
    expect(l.applied).toBe(3);
    expect(l.unstableEntries()).toEqual([]);
    expect(new RaftLog(snap(3, 2), [], 1).committed).toBe(3);
  });

  it('knows the term of the snapshot index, and of nothing before it or past the end', () => {
    const l = new RaftLog(snap(3, 2), [ent(4, 2), ent(5, 3)], 0);
    expect([2, 3, 4, 5, 6].map((i) => l.term(i))).toEqual([undefined, 2, 2, 3, undefined]);
    expect(logWith([]).term(0)).toBe(0);
    expect(logWith([]).lastTerm()).toBe(0);
  });

  it('§5.4.1 up-to-date: a later last term wins; with equal last terms the longer log wins', () => {
    const l = logWith([1, 2, 2]);
    expect(l.isUpToDate(3, 2)).toBe(true);
    expect(l.isUpToDate(4, 2)).toBe(true);
    expect(l.isUpToDate(2, 2)).toBe(false);
    expect(l.isUpToDate(1, 3)).toBe(true);
    expect(l.isUpToDate(9, 1)).toBe(false);
  });

  it('Figure 2 rule 2: reject when there is no entry at prevLogIndex with prevLogTerm', () => {
    const l = logWith([1, 2]);
    expect(l.maybeAppend(2, 1, 0, [ent(3, 2)])).toBeUndefined();
    expect(l.maybeAppend(3, 2, 0, [ent(4, 2)])).toBeUndefined();
    expect(termsOf(all(l))).toEqual([1, 2]);
  });

  it('Figure 2 rules 3-4: delete a conflicting entry and all that follow, append new ones, keep matching ones', () => {
    const l = logWith([1, 1, 1, 1]);
    expect(l.maybeAppend(1, 1, 0, [ent(2, 1), ent(3, 2)])).toBe(3);
    expect(termsOf(all(l))).toEqual([1, 1, 2]);
    // A duplicate of what is there truncates nothing past it.
    expect(l.maybeAppend(0, 0, 0, [ent(1, 1)])).toBe(1);
    expect(termsOf(all(l))).toEqual([1, 1, 2]);
    expect(l.maybeAppend(3, 2, 0, [ent(4, 2), ent(5, 2)])).toBe(5);
    expect(termsOf(all(l))).toEqual([1, 1, 2, 2, 2]);
  });

  it('Figure 2 rule 5: commit up to min(leaderCommit, last new entry), never backwards', () => {
    const l = logWith([1, 1, 1, 1]);
    l.maybeAppend(1, 1, 4, []);
    expect(l.committed).toBe(1);
    l.maybeAppend(2, 1, 4, [ent(3, 1)]);
    expect(l.committed).toBe(3);
    l.maybeAppend(0, 0, 1, []);
    expect(l.committed).toBe(3);
  });

  it('never truncates a committed entry (that would break State Machine Safety)', () => {
    const l = logWith([1, 1, 1], 2);
    expect(() => l.maybeAppend(1, 1, 0, [ent(2, 2)])).toThrow(/conflict at 2 would truncate committed 2/);
  });

  it('commitTo only moves forward, and never past the last entry', () => {
    const l = logWith([1, 1, 1]);
    l.commitTo(2);
    l.commitTo(1);
    expect(l.committed).toBe(2);
    expect(() => l.commitTo(4)).toThrow();
  });

  it('fast back-tracking: the last index at or below i whose term is at most t', () => {
    const l = logWith([1, 1, 2, 2, 4, 4, 5]);
    expect(l.findConflictByTerm(7, 5)).toEqual({ index: 7, term: 5 });
    expect(l.findConflictByTerm(7, 3)).toEqual({ index: 4, term: 2 });
    expect(l.findConflictByTerm(9, 4)).toEqual({ index: 6, term: 4 });
    expect(l.findConflictByTerm(4, 1)).toEqual({ index: 2, term: 1 });
    expect(l.findConflictByTerm(3, 0)).toEqual({ index: 0, term: 0 });
    // Below a compacted prefix the answer is "unknown", term 0: the leader falls back to a snapshot.
    const c = new RaftLog(snap(4, 2), [ent(5, 4), ent(6, 4)], 0);
    expect(c.findConflictByTerm(6, 3)).toEqual({ index: 4, term: 2 });
    expect(c.findConflictByTerm(6, 1)).toEqual({ index: 3, term: 0 });
  });

  it('slice caps an append by entry count and byte size, but always carries at least one entry', () => {
    const l = new RaftLog(
      emptySnapshot(conf),
      [ent(1, 1, 'x'.repeat(10)), ent(2, 1, 'x'.repeat(10)), ent(3, 1, 'x'.repeat(200)), ent(4, 1, 'x')],
      0,
    );
    expect(l.slice(1, 2, 1 << 20).map((e) => e.index)).toEqual([1, 2]);
    expect(l.slice(1, 10, 2 * entryBytes(ent(1, 1, 'x'.repeat(10)))).map((e) => e.index)).toEqual([1, 2]);
    expect(l.slice(1, 10, 10).map((e) => e.index)).toEqual([1]);
    expect(l.slice(3, 10, 50).map((e) => e.index)).toEqual([3]); // oversized, alone
    expect(l.slice(5, 10, 50)).toEqual([]);
  });

  it('entries become stable once persisted; an overwritten tail must be persisted again', () => {
    const l = logWith([1, 1]);
    expect(l.unstableEntries()).toEqual([]);
    l.append([ent(3, 2), ent(4, 2)]);
    expect(l.unstableEntries().map((e) => e.index)).toEqual([3, 4]);
    l.stableTo(3, 2);
    expect(l.unstableEntries().map((e) => e.index)).toEqual([4]);
    // A conflicting append replaces 4 before it was persisted, and 2 which was.
    l.maybeAppend(1, 1, 0, [ent(2, 3), ent(3, 3)]);
    expect(l.unstableEntries().map((e) => [e.index, e.term])).toEqual([
      [2, 3],
      [3, 3],
    ]);
    // A late acknowledgement for the overwritten entry 4 (term 2) is ignored.
    l.stableTo(4, 2);
    expect(l.unstableEntries()).toHaveLength(2);
    l.stableTo(3, 3);
    expect(l.unstableEntries()).toEqual([]);
  });

  it('hands out committed entries in order, within a byte budget, and never past commit', () => {
    const l = logWith([1, 1, 1, 1]);
    expect(l.hasNextCommittedEntries()).toBe(false);
    l.commitTo(3);
    expect(l.hasNextCommittedEntries()).toBe(true);
    expect(l.nextCommittedEntries(1).map((e) => e.index)).toEqual([1]);
    expect(l.nextCommittedEntries(1 << 20).map((e) => e.index)).toEqual([1, 2, 3]);
    l.appliedTo(2);
    expect(l.nextCommittedEntries(1 << 20).map((e) => e.index)).toEqual([3]);
    expect(() => l.appliedTo(4)).toThrow();
    l.appliedTo(3);
    expect(l.hasNextCommittedEntries()).toBe(false);
  });

  it('compaction drops applied entries, keeping the term of the compaction point and an optional tail', () => {
    const l = logWith([1, 1, 2, 2, 3, 3], 6);
    l.appliedTo(5);
    l.compact(snap(5, 3), 2);
    expect([l.firstIndex(), l.lastIndex(), l.term(3), l.term(2)]).toEqual([4, 6, 2, undefined]);
    expect(l.snapshot.meta.index).toBe(5);
    l.compact(snap(5, 3), 0);
    expect([l.firstIndex(), l.term(5), l.term(6)]).toEqual([6, 3, 3]);
    expect(() => l.compact(snap(6, 3), 0)).toThrow(/past applied/);
  });

  it('compaction keeps at most keepBytes of the tail, whatever keepEntries allows', () => {
    const l = logWith([1, 1, 1, 1, 1, 1, 1, 1], 8);
    l.appliedTo(8);
    const each = entryBytes(l.entryAt(1) as Entry);
    l.compact(snap(8, 1), 6, 2 * each); // six entries allowed, but only two fit the bytes
    expect([l.firstIndex(), l.lastIndex()]).toEqual([7, 8]);
    l.compact(snap(8, 1), 6, 0);
    expect(l.firstIndex()).toBe(9);
  });

  it('restoring a leader snapshot replaces the whole log and awaits persistence', () => {
    const l = logWith([1, 1, 2], 1);
    const s = snap(10, 4, 'image');
    l.restore(s);
    expect([l.firstIndex(), l.lastIndex(), l.lastTerm(), l.committed]).toEqual([11, 10, 4, 10]);
    expect(l.pendingSnapshot).toBe(s);
    expect(l.unstableEntries()).toEqual([]);
    expect(l.maybeAppend(10, 4, 11, [ent(11, 4)])).toBe(11);
    expect(l.committed).toBe(11);
  });

  it('between returns (from, to] of what is still in memory', () => {
    const l = new RaftLog(snap(2, 1), [ent(3, 1), ent(4, 2), ent(5, 2)], 0);
    expect(l.between(0, 5).map((e) => e.index)).toEqual([3, 4, 5]);
    expect(l.between(3, 4).map((e) => e.index)).toEqual([4]);
    expect(l.between(5, 5)).toEqual([]);
  });
});
