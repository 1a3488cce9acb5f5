// Goal: txn follows etcd: every compare target and op works on present and
// missing keys (missing = revisions 0, value compares fail), the chosen branch
// runs atomically at one shared revision, later ops see earlier writes, and a
// txn that cannot run completely changes nothing.
import { describe, expect, it } from 'vitest';
import type { KvStateMachine } from '../../store/kv/index.js';
import type { Compare, CompareOp, KvApplied, KvCommand, TxnOp } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function setup(config = {}) {
  const kv = newKv(config);
  let index = 0;
  const apply = (command: KvCommand): KvApplied => kv.apply(command, ++index);
  return { kv, apply, run: (command: KvCommand) => apply(command).result };
}

/** Runs a txn whose success branch is a marker put; returns whether the compare held. */
function holds(kv: KvStateMachine, apply: (c: KvCommand) => KvApplied, compare: Compare): boolean {
  const before = kv.revision;
  const result = apply({ type: 'txn', compare: [compare], success: [], failure: [] }).result;
  expect(kv.revision).toBe(before);
  if (!result.ok || result.type !== 'txn') throw new Error(`txn failed: ${JSON.stringify(result)}`);
  return result.succeeded;
}

describe('txn compares', () => {
  // Key 'k' is put twice: version 2, createRevision 2, modRevision 3, value 'm'.
  const cases: [Compare['target'], CompareOp, string | number, boolean][] = [
    ['value', '=', 'm', true],
    ['value', '=', 'n', false],
    ['value', '!=', 'n', true],
    ['value', '!=', 'm', false],
    ['value', '<', 'n', true],
    ['value', '<', 'm', false],
    ['value', '>', 'l', true],
    ['value', '>', 'mm', false],
    ['version', '=', 2, true],
    ['version', '!=', 2, false],
    ['version', '<', 3, true],
    ['version', '>', 2, false],
    ['createRevision', '=', 2, true],
    ['createRevision', '!=', 3, true],
    ['createRevision', '<', 2, false],
    ['createRevision', '>', 1, true],
    ['modRevision', '=', 3, true],
    ['modRevision', '!=', 3, false],
    ['modRevision', '<', 4, true],
    ['modRevision', '>', 3, false],
  ];
  for (const [target, op, value, expected] of cases) {
    it(`${target} ${op} ${JSON.stringify(value)} is ${expected} on a present key`, () => {
      const { kv, apply } = setup();
      apply({ type: 'put', key: 'k', value: 'l' });
      apply({ type: 'put', key: 'k', value: 'm' });
      expect(holds(kv, apply, { key: 'k', target, op, value } as Compare)).toBe(expected);
    });
  }

  it('compares a missing key as version, createRevision and modRevision 0', () => {
    const { kv, apply } = setup();
    for (const target of ['version', 'createRevision', 'modRevision'] as const) {
      expect(holds(kv, apply, { key: 'nope', target, op: '=', value: 0 })).toBe(true);
      expect(holds(kv, apply, { key: 'nope', target, op: '<', value: 1 })).toBe(true);
      expect(holds(kv, apply, { key: 'nope', target, op: '>', value: 0 })).toBe(false);
      expect(holds(kv, apply, { key: 'nope', target, op: '!=', value: 0 })).toBe(false);
    }
  });

  it('fails every value compare on a missing key, even != and against the empty string', () => {
    const { kv, apply } = setup();
    for (const op of ['=', '!=', '<', '>'] as const) {
      expect(holds(kv, apply, { key: 'nope', target: 'value', op, value: '' })).toBe(false);
      expect(holds(kv, apply, { key: 'nope', target: 'value', op, value: 'x' })).toBe(false);
    }
  });

  it('compares values in UTF-8 byte order', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'k', value: '\u{1F600}' });
    expect(holds(kv, apply, { key: 'k', target: 'value', op: '>', value: '\uFFFF' })).toBe(true);
  });

  it('needs every compare to hold', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: '1' });
    const a: Compare = { key: 'a', target: 'value', op: '=', value: '1' };
    const b: Compare = { key: 'b', target: 'version', op: '>', value: 0 };
    expect(holds(kv, apply, a)).toBe(true);
    const result = apply({ type: 'txn', compare: [a, b], success: [], failure: [] }).result;
    expect(result).toMatchObject({ ok: true, succeeded: false });
  });
});

describe('txn branches', () => {
  it('runs success ops at one shared revision, in order, with one event per change', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'old', value: 'o' });
    const success: TxnOp[] = [
      { type: 'get', key: 'a' },
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: 'b', value: '2' },
      { type: 'get', key: 'a' },
      { type: 'delete', key: 'old' },
      { type: 'delete', key: 'missing' },
      { type: 'range', prefix: '', limit: 10 },
    ];
    const out = apply({
      type: 'txn',
      compare: [{ key: 'a', target: 'createRevision', op: '=', value: 0 }],
      success,
      failure: [{ type: 'put', key: 'never', value: 'x' }],
    });
    const a = { key: 'a', value: '1', version: 1, createRevision: 3, modRevision: 3 };
    const b = { key: 'b', value: '2', version: 1, createRevision: 3, modRevision: 3 };
    expect(out.result).toEqual({
      ok: true,
      type: 'txn',
      succeeded: true,
      revision: 3,
      results: [
        { type: 'get', kv: null, revision: 3 },
        { type: 'put', revision: 3, previous: null },
        { type: 'put', revision: 3, previous: null },
        { type: 'get', kv: a, revision: 3 },
        { type: 'delete', deleted: true, previous: 'o', revision: 3 },
        { type: 'delete', deleted: false, previous: null, revision: 3 },
        { type: 'range', kvs: [a, b], more: false, revision: 3 },
      ],
    });
    expect(out.events).toEqual([
      { type: 'put', key: 'a', value: '1', prevValue: null, revision: 3 },
      { type: 'put', key: 'b', value: '2', prevValue: null, revision: 3 },
      { type: 'delete', key: 'old', value: null, prevValue: 'o', revision: 3 },
    ]);
    expect(kv.revision).toBe(3);
    expect(kv.get('never')).toMatchObject({ kv: null });
  });

  it('runs the failure branch when a compare fails', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: '1' });
    const result = run({
      type: 'txn',
      compare: [{ key: 'a', target: 'value', op: '=', value: '2' }],
      success: [{ type: 'put', key: 's', value: 'x' }],
      failure: [{ type: 'put', key: 'f', value: 'y' }, { type: 'get', key: 'a' }],
    });
    expect(result).toMatchObject({ ok: true, succeeded: false, revision: 3 });
    expect(kv.get('s')).toMatchObject({ kv: null });
    expect(kv.get('f')).toMatchObject({ kv: { value: 'y' } });
  });

  it('keeps the revision when nothing changes: reads only, or deletes of missing keys', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: '1' });
    const reads = apply({ type: 'txn', compare: [], success: [{ type: 'get', key: 'a' }], failure: [] });
    expect(reads.result).toMatchObject({ ok: true, succeeded: true, revision: 2 });
    const deletes = apply({ type: 'txn', compare: [], success: [{ type: 'delete', key: 'zz' }], failure: [] });
    expect(deletes.result).toMatchObject({ ok: true, revision: 2 });
    expect(deletes.events).toEqual([]);
    expect(kv.revision).toBe(2);
  });

  it('bumps a key written in a txn by one version', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: '1' });
    run({ type: 'txn', compare: [], success: [{ type: 'put', key: 'a', value: '2' }], failure: [] });
    expect(kv.get('a')).toMatchObject({ kv: { version: 2, createRevision: 2, modRevision: 3 } });
  });

  it('refuses two writes to one key in a branch (etcd), but allows reading a written key', () => {
    const { kv, run } = setup();
    const twice = run({
      type: 'txn',
      compare: [],
      success: [{ type: 'put', key: 'a', value: '1' }, { type: 'delete', key: 'a' }],
      failure: [],
    });
    expect(twice).toMatchObject({ ok: false, error: { code: 'duplicate_key_in_txn', key: 'a' } });
    const inFailure = run({
      type: 'txn',
      compare: [],
      success: [],
      failure: [{ type: 'put', key: 'a', value: '1' }, { type: 'put', key: 'a', value: '2' }],
    });
    expect(inFailure).toMatchObject({ ok: false, error: { code: 'duplicate_key_in_txn' } });
    const readBack = run({
      type: 'txn',
      compare: [],
      success: [{ type: 'put', key: 'a', value: '1' }, { type: 'get', key: 'a' }],
      failure: [{ type: 'put', key: 'a', value: '2' }],
    });
    expect(readBack).toMatchObject({ ok: true, results: [{}, { kv: { value: '1' } }] });
    expect(kv.revision).toBe(2);
  });

  it('writes nothing when a later op of the branch names an unknown lease', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: '1' });
    const out = apply({
      type: 'txn',
      compare: [],
      success: [
        { type: 'put', key: 'a', value: '2' },
        { type: 'delete', key: 'a2' },
        { type: 'put', key: 'b', value: '3', lease: 99 },
      ],
      failure: [],
    });
    expect(out.result).toMatchObject({ ok: false, error: { code: 'lease_not_found', lease: 99 } });
    expect(out.events).toEqual([]);
    expect(kv.revision).toBe(2);
    expect(kv.get('a')).toMatchObject({ kv: { value: '1' } });
    expect(kv.get('b')).toMatchObject({ kv: null });
  });

  it('limits each of compare, success and failure to maxTxnOps', () => {
    const { kv, run } = setup({ maxTxnOps: 2 });
    const put = (key: string): TxnOp => ({ type: 'put', key, value: '' });
    const cmp: Compare = { key: 'a', target: 'version', op: '=', value: 0 };
    const ok = run({ type: 'txn', compare: [cmp, cmp], success: [put('a'), put('b')], failure: [put('c'), put('d')] });
    expect(ok).toMatchObject({ ok: true });
    for (const txn of [
      { compare: [cmp, cmp, cmp], success: [], failure: [] },
      { compare: [], success: [put('x'), put('y'), put('z')], failure: [] },
      { compare: [], success: [], failure: [put('x'), put('y'), put('z')] },
    ]) {
      expect(run({ type: 'txn', ...txn })).toMatchObject({ ok: false, error: { code: 'too_many_ops', maxTxnOps: 2 } });
    }
    expect(kv.revision).toBe(2);
  });
});
