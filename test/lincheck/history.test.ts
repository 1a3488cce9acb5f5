import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { checkHistory } from './checker.js';
import {
  describeOperation,
  HistoryFormatError,
  HistoryRecorder,
  parseHistory,
  validateHistory,
  type OpOutput,
} from './history.js';

describe('HistoryRecorder', () => {
  it('records calls and returns with an injected clock function', () => {
    let now = 100;
    const rec = new HistoryRecorder({ clock: () => now });
    const a = rec.begin('c1', { op: 'set', key: 'x', value: 'a' });
    now = 105;
    const b = rec.begin('c2', { op: 'get', key: 'x' });
    now = 110;
    rec.ok(a, { previous: null });
    now = 112;
    rec.end(b, 'ok', { value: 'a' });
    expect(rec.pending).toBe(0);
    expect(rec.toJSON()).toEqual({
      version: 1,
      clock: 'monotonic-ms',
      operations: [
        { id: 0, client: 'c1', op: 'set', key: 'x', value: 'a', call: 100, return: 110, status: 'ok', output: { previous: null } },
        { id: 1, client: 'c2', op: 'get', key: 'x', call: 105, return: 112, status: 'ok', output: { value: 'a' } },
      ],
    });
    expect(checkHistory(rec.toJSON()).result).toBe('ok');
  });

  it('accepts a lib/clock.ts Clock and records cas and delete fields', () => {
    const clock = new ManualClock(0, 10);
    const rec = new HistoryRecorder({ clock });
    const h = rec.begin(7, { op: 'cas', key: 'k', expected: null, value: 'v' });
    clock.advance(3);
    rec.ok(h, { succeeded: true });
    const d = rec.begin(7, { op: 'delete', key: 'k' });
    clock.advance(1);
    rec.ok(d, { deleted: true, previous: 'v', revision: 4 });
    const ops = rec.toJSON().operations;
    expect(ops[0]).toMatchObject({ op: 'cas', expected: null, value: 'v', call: 10, return: 13 });
    expect(ops[1]).toMatchObject({ op: 'delete', call: 13, return: 14, output: { deleted: true, previous: 'v', revision: 4 } });
    expect(ops[1]).not.toHaveProperty('value');
    expect(checkHistory(rec.toJSON()).result).toBe('ok');
  });

  it('defaults to performance.now()', () => {
    const before = performance.now();
    const rec = new HistoryRecorder();
    rec.ok(rec.begin(1, { op: 'get', key: 'x' }), { value: null });
    const op = rec.toJSON().operations[0];
    expect(op?.call).toBeGreaterThanOrEqual(before);
    expect(op?.return).toBeGreaterThanOrEqual(op?.call ?? Infinity);
    expect(op?.return).toBeLessThanOrEqual(performance.now());
  });

  it('records fail and unknown outcomes with their reasons', () => {
    let now = 0;
    const rec = new HistoryRecorder({ clock: () => now++ });
    rec.fail(rec.begin(1, { op: 'set', key: 'x', value: 'a' }), '503 no_leader');
    rec.unknown(rec.begin(1, { op: 'set', key: 'x', value: 'b' }), 'timeout');
    const ops = rec.toJSON().operations;
    expect(ops[0]).toMatchObject({ status: 'fail', error: '503 no_leader', output: {}, return: 1 });
    expect(ops[1]).toMatchObject({ status: 'unknown', error: 'timeout', output: {}, return: 3 });
  });

  it('reports operations never ended as unknown', () => {
    const rec = new HistoryRecorder({ clock: () => 1 });
    rec.begin(1, { op: 'set', key: 'x', value: 'a' });
    expect(rec.pending).toBe(1);
    expect(rec.toJSON().operations[0]).toMatchObject({ status: 'unknown', return: null, error: 'never completed' });
    expect(() => validateHistory(rec.toJSON())).not.toThrow();
  });

  it('rejects ending twice and ok results missing their fields', () => {
    const rec = new HistoryRecorder({ clock: () => 1 });
    const h = rec.begin(1, { op: 'get', key: 'x' });
    expect(() => rec.ok(h, {})).toThrow(/needs value/);
    rec.ok(h, { value: null });
    expect(() => rec.ok(h, { value: null })).toThrow(/already ended/);
    const c = rec.begin(1, { op: 'cas', key: 'x', expected: 'a', value: 'b' });
    expect(() => rec.ok(c, { succeeded: 'yes' } as unknown as OpOutput)).toThrow(/succeeded/);
  });

  it('snapshots: later changes do not alter an earlier toJSON()', () => {
    let now = 0;
    const rec = new HistoryRecorder({ clock: () => now++ });
    const h = rec.begin(1, { op: 'get', key: 'x' });
    const snapshot = rec.toJSON();
    rec.ok(h, { value: null });
    expect(snapshot.operations[0]?.status).toBe('unknown');
    expect(rec.toJSON().operations[0]?.status).toBe('ok');
  });

  it('round-trips through JSON text', () => {
    let now = 0;
    const rec = new HistoryRecorder({ clock: () => (now += 0.25) });
    rec.ok(rec.begin('a', { op: 'set', key: 'ключ', value: 'значение ✓' }));
    rec.ok(rec.begin('b', { op: 'get', key: 'ключ' }), { value: 'значение ✓' });
    rec.unknown(rec.begin('b', { op: 'delete', key: 'ключ' }));
    const parsed = parseHistory(JSON.stringify(rec.toJSON()));
    expect(parsed).toEqual(rec.toJSON());
    expect(checkHistory(parsed).result).toBe('ok');
  });
});

describe('parseHistory', () => {
  it('reports text that is not JSON', () => {
    expect(() => parseHistory('{nope')).toThrow(HistoryFormatError);
    expect(() => parseHistory('[]')).toThrow(/history: expected an object/);
  });
});

describe('describeOperation', () => {
  it('prints one readable line', () => {
    const line = describeOperation({
      id: 4,
      client: 2,
      op: 'cas',
      key: 'x',
      expected: null,
      value: 'a',
      call: 20,
      return: 30.5,
      status: 'ok',
      output: { succeeded: false, previous: 'b' },
    });
    expect(line).toBe('#4 client 2: cas("x", null -> "a") -> not succeeded (previous "b")  [20, 30.500]');
    const unknownLine = describeOperation({
      id: 5, client: 'c', op: 'get', key: 'x', call: 1, return: 9, status: 'unknown', output: {},
    });
    expect(unknownLine).toBe('#5 client c: get("x") -> unknown  [1, ∞]');
  });
});
