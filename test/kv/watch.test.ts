// Goal: the watch history lets a watcher resume from any kept revision with no
// gap and no duplicate: events come in revision order, filtered by key or
// prefix, pages never split a revision, and a revision older than the kept
// history is refused as compacted with the oldest revision still available.
import { describe, expect, it } from 'vitest';
import type { KvStateMachine } from '../../store/kv/index.js';
import type { EventsResult, KvApplied, KvCommand, KvConfig, KvEvent, WatchFilter } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function setup(config: Partial<KvConfig> = {}) {
  const kv = newKv(config);
  let index = 0;
  const apply = (command: KvCommand): KvApplied => kv.apply(command, ++index);
  return { kv, apply };
}

function events(kv: KvStateMachine, from: number, filter: WatchFilter = { prefix: '' }, limit = 1000): EventsResult {
  const result = kv.eventsSince(from, filter, limit);
  if (!result.ok) throw new Error(`eventsSince failed: ${JSON.stringify(result)}`);
  return result;
}

describe('watch history', () => {
  it('returns what apply returned, in revision order', () => {
    const { kv, apply } = setup();
    const produced: KvEvent[] = [];
    produced.push(...apply({ type: 'put', key: 'a', value: '1' }).events);
    produced.push(...apply({ type: 'put', key: 'a', value: '2' }).events);
    produced.push(...apply({ type: 'delete', key: 'a' }).events);
    produced.push(...apply({ type: 'put', key: 'b', value: '3' }).events);
    expect(produced).toEqual([
      { type: 'put', key: 'a', value: '1', prevValue: null, revision: 2 },
      { type: 'put', key: 'a', value: '2', prevValue: '1', revision: 3 },
      { type: 'delete', key: 'a', value: null, prevValue: '2', revision: 4 },
      { type: 'put', key: 'b', value: '3', prevValue: null, revision: 5 },
    ]);
    expect(events(kv, 1)).toEqual({ ok: true, events: produced, nextRevision: 6, more: false });
    expect(events(kv, 4).events).toEqual(produced.slice(2));
  });

  it('filters by exact key or by prefix', () => {
    const { kv, apply } = setup();
    for (const key of ['a', 'ab', 'b', 'a']) apply({ type: 'put', key, value: key });
    expect(events(kv, 1, { key: 'a' }).events.map((e) => e.revision)).toEqual([2, 5]);
    expect(events(kv, 1, { prefix: 'a' }).events.map((e) => e.key)).toEqual(['a', 'ab', 'a']);
  });

  it('answers from the current revision + 1 or later with nothing, and points at the next revision', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: '1' });
    expect(events(kv, 3)).toEqual({ ok: true, events: [], nextRevision: 3, more: false });
    expect(events(kv, 10)).toEqual({ ok: true, events: [], nextRevision: 10, more: false });
    expect(events(newKv(), 1)).toEqual({ ok: true, events: [], nextRevision: 2, more: false });
  });

  it('pages by whole revisions, so resuming at nextRevision neither skips nor repeats', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'x', value: '0' });
    const put = (key: string) => ({ type: 'put' as const, key, value: key });
    apply({ type: 'txn', compare: [], success: [put('a'), put('b'), put('c')], failure: [] });
    apply({ type: 'put', key: 'd', value: 'd' });
    apply({ type: 'txn', compare: [], success: [put('e'), put('f')], failure: [] });
    const first = events(kv, 1, { prefix: '' }, 2);
    // Revision 2 (one event) fits; revision 3 has three events and would pass the limit.
    expect(first.events.map((e) => e.key)).toEqual(['x']);
    expect(first).toMatchObject({ nextRevision: 3, more: true });
    // A revision bigger than the limit on its own is returned whole.
    const second = events(kv, 3, { prefix: '' }, 2);
    expect(second.events.map((e) => e.key)).toEqual(['a', 'b', 'c']);
    expect(second).toMatchObject({ nextRevision: 4, more: true });
    const all: string[] = [];
    let from = 1;
    for (let i = 0; i < 20; i++) {
      const page = events(kv, from, { prefix: '' }, 2);
      all.push(...page.events.map((e) => e.key));
      from = page.nextRevision;
      if (!page.more) break;
    }
    expect(all).toEqual(['x', 'a', 'b', 'c', 'd', 'e', 'f']);
    expect(from).toBe(kv.revision + 1);
  });

  it('drops the oldest revisions past watchHistoryEvents and reports compacted', () => {
    const { kv, apply } = setup({ watchHistoryEvents: 3 });
    for (let i = 0; i < 6; i++) apply({ type: 'put', key: 'k', value: String(i) }); // revisions 2..7
    expect(events(kv, 5).events.map((e) => e.revision)).toEqual([5, 6, 7]);
    expect(kv.eventsSince(4, { prefix: '' }, 10)).toEqual({
      ok: false,
      error: {
        code: 'compacted',
        message: 'revision 4 is older than the kept watch history',
        oldestRevision: 5,
        currentRevision: 7,
      },
    });
    expect(kv.eventsSince(1, { key: 'k' }, 10)).toMatchObject({ ok: false, error: { code: 'compacted' } });
  });

  it('drops a revision whole, so it is either fully kept or compacted', () => {
    const { kv, apply } = setup({ watchHistoryEvents: 3 });
    const put = (key: string) => ({ type: 'put' as const, key, value: '' });
    apply({ type: 'txn', compare: [], success: [put('a'), put('b')], failure: [] }); // rev 2
    apply({ type: 'txn', compare: [], success: [put('c'), put('d')], failure: [] }); // rev 3
    // Four events > 3: all of revision 2 goes, not just its first event.
    expect(events(kv, 3).events.map((e) => e.key)).toEqual(['c', 'd']);
    expect(kv.eventsSince(2, { prefix: '' }, 10)).toMatchObject({ error: { code: 'compacted', oldestRevision: 3 } });
  });

  it('bounds history bytes, counting key, value and previous value', () => {
    const { kv, apply } = setup({ watchHistoryBytes: 10 });
    apply({ type: 'put', key: 'k', value: 'abcd' }); // 1 + 4 = 5 bytes
    apply({ type: 'put', key: 'k', value: 'ab' }); // 1 + 2 + 4 = 7 bytes: total 12, drop rev 2
    expect(events(kv, 3).events).toHaveLength(1);
    expect(kv.eventsSince(2, { prefix: '' }, 10)).toMatchObject({ error: { code: 'compacted', oldestRevision: 3 } });
    // A single revision larger than the whole budget is dropped too: watchers at it are told to resync.
    apply({ type: 'put', key: 'big', value: 'x'.repeat(20) });
    expect(kv.eventsSince(4, { prefix: '' }, 10)).toMatchObject({ error: { code: 'compacted', oldestRevision: 5 } });
    expect(events(kv, 5)).toEqual({ ok: true, events: [], nextRevision: 5, more: false });
  });

  it('refuses bad arguments with invalid_argument', () => {
    const { kv } = setup();
    const bad: [number, unknown, number][] = [
      [0, { prefix: '' }, 1],
      [1.5, { prefix: '' }, 1],
      [1, { prefix: '' }, 0],
      [1, {}, 1],
      [1, { key: 'a', prefix: 'a' }, 1],
      [1, { key: 3 }, 1],
      [1, null, 1],
    ];
    for (const [from, filter, limit] of bad) {
      expect(kv.eventsSince(from, filter as WatchFilter, limit)).toMatchObject({
        ok: false,
        error: { code: 'invalid_argument' },
      });
    }
  });

  it('keeps many events and trims in amortized constant time', () => {
    const { kv, apply } = setup({ watchHistoryEvents: 1000 });
    for (let i = 0; i < 5000; i++) apply({ type: 'put', key: `k${i % 7}`, value: String(i) });
    const page = events(kv, kv.revision - 999, { prefix: '' }, 5000);
    expect(page.events).toHaveLength(1000);
    expect(page.events[0]?.revision).toBe(kv.revision - 999);
  });
});
