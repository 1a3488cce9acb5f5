// Goal: the leader's per-follower replication state (progress.ts) on its own:
// the in-flight window, match/next bookkeeping on acknowledgements, stale and
// fresh rejections in probe and replicate states, and the probe / replicate /
// snapshot transitions that decide when an append may go out.
import { describe, expect, it } from 'vitest';
import { Inflights, Progress } from '../../store/raft/progress.js';

describe('Inflights', () => {
  it('fills up to its capacity and frees every message acknowledged', () => {
    const w = new Inflights(3);
    w.add(5);
    w.add(7);
    expect(w.full()).toBe(false);
    w.add(9);
    expect(w.full()).toBe(true);
    expect(w.count()).toBe(3);
    w.freeLE(4); // acknowledges nothing in flight
    expect(w.count()).toBe(3);
    w.freeLE(7); // frees the appends ending at 5 and 7
    expect(w.count()).toBe(1);
    expect(w.full()).toBe(false);
    w.freeLE(100);
    expect(w.count()).toBe(0);
    w.add(10);
    w.reset();
    expect(w.count()).toBe(0);
  });

  it('is also full once the entry bytes in flight reach its byte capacity, and frees them on acknowledgement', () => {
    const w = new Inflights(256, 1_000);
    w.add(5, 600);
    expect(w.full()).toBe(false);
    w.add(9, 400); // 1,000 bytes in flight: a far-behind follower gets no more until it answers
    expect(w.full()).toBe(true);
    w.freeLE(5);
    expect(w.full()).toBe(false);
    w.add(12, 700);
    expect(w.full()).toBe(true);
    w.reset();
    w.add(13, 999);
    expect(w.full()).toBe(false);
  });
});

describe('Progress', () => {
  it('an acknowledgement raises match and next; a stale one moves neither back', () => {
    const pr = new Progress(6, false, 4);
    expect(pr.maybeUpdate(3)).toBe(true);
    expect([pr.match, pr.next]).toEqual([3, 6]);
    expect(pr.maybeUpdate(7)).toBe(true);
    expect([pr.match, pr.next]).toEqual([7, 8]);
    expect(pr.maybeUpdate(5)).toBe(false);
    expect([pr.match, pr.next]).toEqual([7, 8]);
  });

  it('probe: one append at a time; a rejection of it backs next off using the hint, never below match+1', () => {
    const pr = new Progress(10, false, 4);
    pr.match = 3;
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(2, 11);
    expect(pr.probeSent).toBe(true);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(10); // probing does not advance next optimistically
    // A rejection of some other prevIndex is stale.
    expect(pr.maybeDecrTo(7, 5)).toBe(false);
    expect(pr.next).toBe(10);
    // The rejection of prevIndex 9 with a hint of 6: retry after 6.
    expect(pr.maybeDecrTo(9, 6)).toBe(true);
    expect(pr.next).toBe(7);
    expect(pr.isPaused()).toBe(false);
    // A hint below match never takes next under match+1.
    pr.sentEntries(1, 7);
    expect(pr.maybeDecrTo(6, 0)).toBe(true);
    expect(pr.next).toBe(4);
  });

  it('replicate: streams appends optimistically up to the window; a fresh rejection falls back to match+1', () => {
    const pr = new Progress(6, false, 2);
    pr.match = 5;
    pr.becomeReplicate();
    expect(pr.next).toBe(6);
    pr.sentEntries(3, 8);
    expect(pr.next).toBe(9);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(2, 10);
    expect(pr.next).toBe(11);
    expect(pr.isPaused()).toBe(true); // two appends in flight: the window is full
    pr.sentEntries(0, 10); // empty appends (commit updates) do not take a slot
    expect(pr.inflights.count()).toBe(2);
    // A rejection at or below match is stale.
    expect(pr.maybeDecrTo(5, 0)).toBe(false);
    expect(pr.next).toBe(11);
    expect(pr.maybeDecrTo(8, 0)).toBe(true);
    expect(pr.next).toBe(6);
  });

  it('snapshot: paused until it lands; back to probing after the snapshot index', () => {
    const pr = new Progress(3, false, 4);
    pr.match = 2;
    pr.becomeSnapshot(20);
    expect(pr.state).toBe('snapshot');
    expect(pr.isPaused()).toBe(true);
    expect(pr.pendingSnapshot).toBe(20);
    pr.becomeProbe();
    expect(pr.state).toBe('probe');
    expect(pr.next).toBe(21);
    expect(pr.pendingSnapshot).toBe(0);
    expect(pr.isPaused()).toBe(false);
  });

  it('becoming probe or replicate restarts from match+1 with an empty window', () => {
    const pr = new Progress(10, false, 2);
    pr.match = 4;
    pr.becomeReplicate();
    pr.sentEntries(2, 6);
    pr.sentEntries(2, 8);
    expect(pr.inflights.count()).toBe(2);
    pr.becomeProbe();
    expect([pr.state, pr.next, pr.inflights.count(), pr.probeSent]).toEqual(['probe', 5, 0, false]);
    pr.maybeUpdate(7);
    pr.becomeReplicate();
    expect([pr.state, pr.next, pr.inflights.count()]).toEqual(['replicate', 8, 0]);
  });
});
