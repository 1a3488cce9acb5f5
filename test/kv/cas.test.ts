// Goal: compare-and-swap follows the store contract: `expected: null` means
// "must be absent", `previous` is the value before the call whether or not it
// succeeded, and a failed CAS changes nothing (no revision, no event).
import { describe, expect, it } from 'vitest';
import type { KvApplied, KvCommand } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function setup() {
  const kv = newKv();
  let index = 0;
  const apply = (command: KvCommand): KvApplied => kv.apply(command, ++index);
  return { kv, apply, run: (command: KvCommand) => apply(command).result };
}

describe('cas', () => {
  it('creates an absent key when expected is null', () => {
    const { kv, run } = setup();
    expect(run({ type: 'cas', key: 'a', expected: null, value: 'x' })).toEqual({
      ok: true,
      type: 'cas',
      succeeded: true,
      previous: null,
      revision: 2,
    });
    const got = kv.get('a');
    expect(got.ok && got.kv).toMatchObject({ value: 'x', version: 1, createRevision: 2 });
  });

  it('fails with the current value as previous when expected is null but the key exists', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: 'x' });
    const out = apply({ type: 'cas', key: 'a', expected: null, value: 'y' });
    expect(out.result).toEqual({ ok: true, type: 'cas', succeeded: false, previous: 'x', revision: 2 });
    expect(out.events).toEqual([]);
    expect(kv.revision).toBe(2);
    const got = kv.get('a');
    expect(got.ok && got.kv?.value).toBe('x');
  });

  it('swaps when the value matches and reports the old value', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: 'x' });
    const out = apply({ type: 'cas', key: 'a', expected: 'x', value: 'y' });
    expect(out.result).toEqual({ ok: true, type: 'cas', succeeded: true, previous: 'x', revision: 3 });
    expect(out.events).toEqual([{ type: 'put', key: 'a', value: 'y', prevValue: 'x', revision: 3 }]);
    const got = kv.get('a');
    expect(got.ok && got.kv).toMatchObject({ value: 'y', version: 2, modRevision: 3 });
  });

  it('fails on a mismatch, including an empty expected string against a missing key', () => {
    const { kv, run } = setup();
    expect(run({ type: 'cas', key: 'a', expected: '', value: 'y' })).toMatchObject({
      succeeded: false,
      previous: null,
      revision: 1,
    });
    run({ type: 'put', key: 'a', value: 'x' });
    expect(run({ type: 'cas', key: 'a', expected: 'X', value: 'y' })).toMatchObject({
      succeeded: false,
      previous: 'x',
      revision: 2,
    });
    expect(kv.revision).toBe(2);
  });

  it('attaches a lease on success and refuses an unknown lease before comparing', () => {
    const { kv, run } = setup();
    run({ type: 'leaseGrant', id: 7, ttlMs: 1000 });
    run({ type: 'cas', key: 'a', expected: null, value: 'x', lease: 7 });
    expect(kv.leases()).toEqual([{ id: 7, ttlMs: 1000, keys: 1 }]);
    // The compare would fail too; the missing lease is reported first, and nothing changes.
    expect(run({ type: 'cas', key: 'a', expected: 'nope', value: 'y', lease: 8 })).toMatchObject({
      ok: false,
      error: { code: 'lease_not_found', lease: 8 },
    });
    expect(run({ type: 'cas', key: 'b', expected: null, value: 'y', lease: 8 })).toMatchObject({
      ok: false,
      error: { code: 'lease_not_found' },
    });
    expect(kv.get('b')).toMatchObject({ kv: null });
    expect(kv.revision).toBe(2);
  });
});
