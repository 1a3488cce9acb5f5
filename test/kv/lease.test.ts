// Goal: the replicated half of leases: grant, attach through put and cas,
// move and detach, list for the leader's expiry timer, and revoke, which
// deletes every attached key at one revision with one delete event each.
import { describe, expect, it } from 'vitest';
import type { KvApplied, KvCommand } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function setup(config = {}) {
  const kv = newKv(config);
  let index = 0;
  const apply = (command: KvCommand): KvApplied => kv.apply(command, ++index);
  return { kv, apply, run: (command: KvCommand) => apply(command).result };
}

describe('leases', () => {
  it('grants without changing the revision and lists leases in grant order', () => {
    const { kv, run } = setup();
    expect(run({ type: 'leaseGrant', id: 5, ttlMs: 3000 })).toEqual({
      ok: true,
      type: 'leaseGrant',
      id: 5,
      ttlMs: 3000,
      revision: 1,
    });
    run({ type: 'leaseGrant', id: 2, ttlMs: 100 });
    expect(kv.leases()).toEqual([
      { id: 5, ttlMs: 3000, keys: 0 },
      { id: 2, ttlMs: 100, keys: 0 },
    ]);
    expect(kv.revision).toBe(1);
  });

  it('refuses a granted id and more than maxLeases', () => {
    const { kv, run } = setup({ maxLeases: 2 });
    run({ type: 'leaseGrant', id: 1, ttlMs: 10 });
    expect(run({ type: 'leaseGrant', id: 1, ttlMs: 20 })).toMatchObject({
      ok: false,
      error: { code: 'lease_exists', lease: 1 },
    });
    run({ type: 'leaseGrant', id: 2, ttlMs: 10 });
    expect(run({ type: 'leaseGrant', id: 3, ttlMs: 10 })).toMatchObject({
      ok: false,
      error: { code: 'too_many_leases', maxLeases: 2 },
    });
    expect(kv.leases()).toEqual([
      { id: 1, ttlMs: 10, keys: 0 },
      { id: 2, ttlMs: 10, keys: 0 },
    ]);
  });

  it('attaches keys by put, shows the lease on the record, and counts them', () => {
    const { kv, run } = setup();
    run({ type: 'leaseGrant', id: 1, ttlMs: 10 });
    run({ type: 'put', key: 'a', value: 'x', lease: 1 });
    run({ type: 'put', key: 'b', value: 'y', lease: 1 });
    run({ type: 'put', key: 'c', value: 'z' });
    expect(kv.get('a')).toMatchObject({ kv: { lease: 1 } });
    const c = kv.get('c');
    expect(c.ok && c.kv !== null && 'lease' in c.kv).toBe(false);
    expect(kv.leases()).toEqual([{ id: 1, ttlMs: 10, keys: 2 }]);
  });

  it('refuses a put with an unknown lease and changes nothing', () => {
    const { kv, apply } = setup();
    apply({ type: 'put', key: 'a', value: 'x' });
    const out = apply({ type: 'put', key: 'a', value: 'y', lease: 42 });
    expect(out.result).toEqual({
      ok: false,
      error: { code: 'lease_not_found', message: 'lease 42 does not exist', lease: 42 },
    });
    expect(out.events).toEqual([]);
    expect(kv.revision).toBe(2);
    expect(kv.get('a')).toMatchObject({ kv: { value: 'x', version: 1 } });
  });

  it('detaches on a put without lease, moves on a put with another lease, and detaches on delete', () => {
    const { kv, run } = setup();
    run({ type: 'leaseGrant', id: 1, ttlMs: 10 });
    run({ type: 'leaseGrant', id: 2, ttlMs: 10 });
    run({ type: 'put', key: 'a', value: 'x', lease: 1 });
    run({ type: 'put', key: 'b', value: 'x', lease: 1 });
    run({ type: 'put', key: 'c', value: 'x', lease: 1 });
    run({ type: 'put', key: 'a', value: 'y' });
    run({ type: 'put', key: 'b', value: 'y', lease: 2 });
    run({ type: 'delete', key: 'c' });
    expect(kv.leases()).toEqual([
      { id: 1, ttlMs: 10, keys: 0 },
      { id: 2, ttlMs: 10, keys: 1 },
    ]);
    run({ type: 'leaseRevoke', id: 1 });
    expect(kv.get('a')).toMatchObject({ kv: { value: 'y' } });
  });

  it('revokes: deletes attached keys at one revision with a delete event each, in key order', () => {
    const { kv, apply } = setup();
    apply({ type: 'leaseGrant', id: 9, ttlMs: 10 });
    for (const key of ['m', 'b', 'x']) apply({ type: 'put', key, value: `v${key}`, lease: 9 });
    apply({ type: 'put', key: 'keep', value: 'k' });
    const out = apply({ type: 'leaseRevoke', id: 9 });
    expect(out.result).toEqual({ ok: true, type: 'leaseRevoke', id: 9, deleted: 3, revision: 6 });
    expect(out.events).toEqual([
      { type: 'delete', key: 'b', value: null, prevValue: 'vb', revision: 6 },
      { type: 'delete', key: 'm', value: null, prevValue: 'vm', revision: 6 },
      { type: 'delete', key: 'x', value: null, prevValue: 'vx', revision: 6 },
    ]);
    expect(kv.revision).toBe(6);
    expect(kv.keyCount).toBe(1);
    expect(kv.leases()).toEqual([]);
  });

  it('revokes an empty lease without a new revision, and refuses an unknown one', () => {
    const { kv, apply } = setup();
    apply({ type: 'leaseGrant', id: 1, ttlMs: 10 });
    const out = apply({ type: 'leaseRevoke', id: 1 });
    expect(out.result).toMatchObject({ ok: true, deleted: 0, revision: 1 });
    expect(out.events).toEqual([]);
    expect(apply({ type: 'leaseRevoke', id: 1 }).result).toMatchObject({
      ok: false,
      error: { code: 'lease_not_found', lease: 1 },
    });
    expect(kv.revision).toBe(1);
  });

  it('attaches through a txn put and lets the id be granted again after revoke', () => {
    const { kv, run } = setup();
    run({ type: 'leaseGrant', id: 1, ttlMs: 10 });
    run({ type: 'txn', compare: [], success: [{ type: 'put', key: 't', value: 'v', lease: 1 }], failure: [] });
    expect(kv.leases()).toEqual([{ id: 1, ttlMs: 10, keys: 1 }]);
    run({ type: 'leaseRevoke', id: 1 });
    expect(run({ type: 'leaseGrant', id: 1, ttlMs: 20 })).toMatchObject({ ok: true });
    expect(kv.leases()).toEqual([{ id: 1, ttlMs: 20, keys: 0 }]);
  });
});
