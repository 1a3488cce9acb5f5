// Goal: exactly-once writes through client sessions: a retried last seq is
// answered from the cache (duplicate, nothing applied), an older seq is
// refused as stale, failures are not cached, and sessions expire by the
// commands' nowMs and are bounded with least-recently-used eviction.
import { describe, expect, it } from 'vitest';
import type { KvApplied, KvCommand, KvConfig } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function setup(config: Partial<KvConfig> = {}) {
  const kv = newKv(config);
  let index = 0;
  const apply = (command: KvCommand): KvApplied => kv.apply(command, ++index);
  return { kv, apply, run: (command: KvCommand) => apply(command).result };
}

const rid = (clientId: string, seq: number) => ({ requestId: { clientId, seq } });

describe('sessions', () => {
  it('answers a retried write from the cache without applying it again', () => {
    const { kv, apply } = setup();
    const put: KvCommand = { type: 'put', key: 'a', value: 'x', ...rid('c1', 1), nowMs: 1000 };
    const first = apply(put);
    expect(first.result).toEqual({ ok: true, type: 'put', revision: 2, previous: null });
    expect(first.events).toHaveLength(1);
    const retry = apply({ ...put, nowMs: 2000 });
    expect(retry.result).toEqual({ ok: true, type: 'put', revision: 2, previous: null, duplicate: true });
    expect(retry.events).toEqual([]);
    expect(kv.revision).toBe(2);
    expect(kv.get('a')).toMatchObject({ kv: { version: 1 } });
  });

  it('applies a newer seq and refuses an older one as stale', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: '1', ...rid('c1', 5), nowMs: 0 });
    expect(run({ type: 'put', key: 'a', value: '2', ...rid('c1', 7), nowMs: 0 })).toMatchObject({
      ok: true,
      revision: 3,
    });
    expect(run({ type: 'put', key: 'a', value: '3', ...rid('c1', 5), nowMs: 0 })).toEqual({
      ok: false,
      error: {
        code: 'request_id_stale',
        message: 'request c1:5 is older than the last applied seq 7',
        clientId: 'c1',
        seq: 5,
        lastSeq: 7,
      },
    });
    expect(kv.revision).toBe(3);
    // Sessions are per client.
    expect(run({ type: 'put', key: 'a', value: '4', ...rid('c2', 1), nowMs: 0 })).toMatchObject({ ok: true });
  });

  it('caches a failed CAS: the retry reports the original outcome even if the state changed', () => {
    const { run } = setup();
    const cas: KvCommand = { type: 'cas', key: 'a', expected: 'x', value: 'y', ...rid('c1', 1), nowMs: 0 };
    expect(run(cas)).toMatchObject({ succeeded: false, previous: null });
    run({ type: 'put', key: 'a', value: 'x' });
    expect(run(cas)).toEqual({ ok: true, type: 'cas', succeeded: false, previous: null, revision: 1, duplicate: true });
  });

  it('caches txn results whole', () => {
    const { run } = setup();
    const txn: KvCommand = {
      type: 'txn',
      compare: [{ key: 'a', target: 'version', op: '=', value: 0 }],
      success: [{ type: 'put', key: 'a', value: '1' }, { type: 'get', key: 'a' }],
      failure: [],
      ...rid('c1', 1),
      nowMs: 0,
    };
    const first = run(txn);
    expect(run(txn)).toEqual({ ...first, duplicate: true });
  });

  it('does not cache failures, so a retry after the cause is fixed applies', () => {
    const { kv, run } = setup();
    const put: KvCommand = { type: 'put', key: 'a', value: 'x', lease: 3, ...rid('c1', 1), nowMs: 0 };
    expect(run(put)).toMatchObject({ ok: false, error: { code: 'lease_not_found' } });
    run({ type: 'leaseGrant', id: 3, ttlMs: 10 });
    expect(run(put)).toEqual({ ok: true, type: 'put', revision: 2, previous: null });
    expect(kv.get('a')).toMatchObject({ kv: { lease: 3 } });
  });

  it('requires nowMs with a requestId', () => {
    const { kv, run } = setup();
    expect(run({ type: 'put', key: 'a', value: 'x', ...rid('c1', 1) })).toMatchObject({
      ok: false,
      error: { code: 'invalid_command' },
    });
    expect(kv.revision).toBe(1);
  });

  it('expires a session idle for more than sessionIdleMs, by the commands nowMs', () => {
    const { kv, run } = setup({ sessionIdleMs: 100 });
    const put: KvCommand = { type: 'put', key: 'a', value: 'x', ...rid('c1', 1), nowMs: 1000 };
    run(put);
    // Exactly sessionIdleMs later the session is still there.
    expect(run({ ...put, nowMs: 1100 })).toMatchObject({ duplicate: true });
    // The duplicate refreshed it: 100 ms after that, still there; 101 ms, gone, so the retry applies again.
    expect(run({ ...put, nowMs: 1200 })).toMatchObject({ duplicate: true });
    const late = run({ ...put, nowMs: 1301 });
    expect(late).toEqual({ ok: true, type: 'put', revision: 3, previous: 'x' });
    expect(kv.revision).toBe(3);
  });

  it('expires sessions when any write moves the clock, and never lets the clock go back', () => {
    const { run } = setup({ sessionIdleMs: 100 });
    run({ type: 'put', key: 'a', value: 'x', ...rid('c1', 1), nowMs: 1000 });
    // Another client's write (or any write with nowMs) advances the clock past c1's idle limit.
    run({ type: 'put', key: 'b', value: 'y', nowMs: 5000 });
    // A command stamped with an older time (a new leader with a slower clock) does not revive c1.
    expect(run({ type: 'put', key: 'a', value: 'x', ...rid('c1', 1), nowMs: 1050 })).toMatchObject({
      ok: true,
      revision: 4,
    });
    expect(run({ type: 'put', key: 'a', value: 'x', ...rid('c1', 1), nowMs: 1060 })).toMatchObject({
      duplicate: true,
    });
  });

  it('keeps at most maxSessions and evicts the least recently used', () => {
    const { kv, run } = setup({ maxSessions: 2 });
    const put = (clientId: string, nowMs: number): KvCommand => ({
      type: 'put',
      key: clientId,
      value: 'v',
      ...rid(clientId, 1),
      nowMs,
    });
    run(put('c1', 1));
    run(put('c2', 2));
    expect(run(put('c1', 3))).toMatchObject({ duplicate: true }); // c1 is now the most recent
    run(put('c3', 4)); // evicts c2
    expect(run(put('c1', 5))).toMatchObject({ duplicate: true });
    expect(run(put('c3', 6))).toMatchObject({ duplicate: true });
    const before = kv.revision;
    expect(run(put('c2', 7))).toMatchObject({ ok: true, revision: before + 1 }); // applied again
    expect(run(put('c2', 8))).toMatchObject({ duplicate: true });
  });

  it('keeps at most maxSessionBytes of cached results, evicting the least recently used, but always the newest', () => {
    const { kv, run } = setup({ maxSessionBytes: 700 });
    const txn = (clientId: string, nowMs: number): KvCommand => ({ type: 'txn', compare: [], success: [{ type: 'range', prefix: '' }], failure: [], ...rid(clientId, 1), nowMs });
    for (let i = 0; i < 4; i++) run({ type: 'put', key: `k${i}`, value: 'x'.repeat(40) }); // a range result of about 550 bytes: one fits, two do not
    run(txn('big1', 1));
    expect(kv.memoryUse.sessions).toBe(1);
    run(txn('big2', 2)); // big1, the least recently used, goes
    expect(kv.memoryUse).toMatchObject({ sessions: 1 });
    expect(kv.memoryUse.sessionBytes).toBeLessThanOrEqual(700);
    expect(run(txn('big2', 3))).toMatchObject({ duplicate: true });
    const before = kv.revision;
    const again = run(txn('big1', 4)) as { ok: boolean; duplicate?: boolean };
    expect([again.ok, again.duplicate]).toEqual([true, undefined]); // applied again: its cache was evicted
    expect(kv.revision).toBe(before); // a read-only txn changes nothing either way
    run({ type: 'put', key: 'huge', value: 'y'.repeat(1000), ...rid('huge', 1), nowMs: 5 });
    expect(run({ type: 'put', key: 'huge', value: 'y'.repeat(1000), ...rid('huge', 1), nowMs: 6 })).toMatchObject({ duplicate: true });
  });

  it('dedupes lease grants and revokes too', () => {
    const { run } = setup();
    run({ type: 'leaseGrant', id: 1, ttlMs: 5, ...rid('c', 1), nowMs: 0 });
    expect(run({ type: 'leaseGrant', id: 1, ttlMs: 5, ...rid('c', 1), nowMs: 0 })).toMatchObject({
      ok: true,
      duplicate: true,
    });
    run({ type: 'leaseRevoke', id: 1, ...rid('c', 2), nowMs: 0 });
    expect(run({ type: 'leaseRevoke', id: 1, ...rid('c', 2), nowMs: 0 })).toMatchObject({
      ok: true,
      duplicate: true,
    });
  });
});
