// Goal: snapshot() and restore() round-trip the whole replicated state
// exactly (keys, revision, leases, sessions, clock, watch history), so a
// replica restored from a snapshot answers every later command, read and
// watch exactly like the replica that wrote it.
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import type { KvStateMachine } from '../../store/kv/index.js';
import type { KvCommand, KvConfig } from '../../store/kv/index.js';
import { newKv, restoreKv } from './kv-factory.js';

const CONFIG: Partial<KvConfig> = { watchHistoryEvents: 6, maxSessions: 4, sessionIdleMs: 50 };

/** A history that exercises every part of the state. */
const SCRIPT: KvCommand[] = [
  { type: 'leaseGrant', id: 1, ttlMs: 500 },
  { type: 'leaseGrant', id: 2, ttlMs: 900, requestId: { clientId: 'c1', seq: 1 }, nowMs: 10 },
  { type: 'put', key: 'a', value: 'x', lease: 1 },
  { type: 'put', key: 'b/1', value: 'é\u{1F600}', lease: 2, requestId: { clientId: 'c2', seq: 1 }, nowMs: 20 },
  { type: 'cas', key: 'c', expected: null, value: '', requestId: { clientId: 'c1', seq: 2 }, nowMs: 30 },
  {
    type: 'txn',
    compare: [{ key: 'a', target: 'version', op: '=', value: 1 }],
    success: [{ type: 'put', key: 'b/2', value: 'y' }, { type: 'delete', key: 'c' }, { type: 'range', prefix: 'b/' }],
    failure: [],
    requestId: { clientId: 'c3', seq: 4 },
    nowMs: 40,
  },
  { type: 'put', key: 'a', value: 'x2', lease: 1 },
  { type: 'delete', key: 'b/2' },
  { type: 'put', key: 'd', value: 'z', requestId: { clientId: 'c4', seq: 1 }, nowMs: 45 },
];

/** What is run on both the original and the restored copy afterwards. */
const CONTINUATION: KvCommand[] = [
  { type: 'put', key: 'b/1', value: 'again', lease: 2, requestId: { clientId: 'c2', seq: 1 }, nowMs: 60 },
  { type: 'cas', key: 'c', expected: null, value: 'v', requestId: { clientId: 'c1', seq: 2 }, nowMs: 61 },
  { type: 'put', key: 'e', value: 'w', requestId: { clientId: 'c3', seq: 3 }, nowMs: 62 },
  { type: 'leaseRevoke', id: 1 },
  { type: 'put', key: 'f', value: 'v', requestId: { clientId: 'c9', seq: 1 }, nowMs: 200 },
  { type: 'put', key: 'a', value: 'v', requestId: { clientId: 'c4', seq: 1 }, nowMs: 201 },
  { type: 'leaseGrant', id: 1, ttlMs: 7 },
  { type: 'range', prefix: '', limit: 3, after: 'a' },
];

function build(): KvStateMachine {
  const kv = newKv(CONFIG);
  SCRIPT.forEach((command, i) => kv.apply(command, 10 + i));
  return kv;
}

describe('snapshot', () => {
  it('restores a state that snapshots to the same string', () => {
    const kv = build();
    const data = kv.snapshot();
    const copy = restoreKv(data, CONFIG);
    expect(copy.snapshot()).toBe(data);
    expect(copy.revision).toBe(kv.revision);
    expect(copy.appliedIndex).toBe(kv.appliedIndex);
    expect(copy.keyCount).toBe(kv.keyCount);
    expect(copy.storeBytes).toBe(kv.storeBytes);
    expect(copy.leases()).toEqual(kv.leases());
    expect(copy.range({ prefix: '' })).toEqual(kv.range({ prefix: '' }));
    expect(copy.eventsSince(1, { prefix: '' }, 100)).toEqual(kv.eventsSince(1, { prefix: '' }, 100));
    for (let rev = 1; rev <= kv.revision + 1; rev++) {
      expect(copy.eventsSince(rev, { prefix: 'b' }, 100)).toEqual(kv.eventsSince(rev, { prefix: 'b' }, 100));
    }
  });

  it('applies later commands exactly like the original', () => {
    const kv = build();
    const copy = restoreKv(kv.snapshot(), CONFIG);
    let index = kv.appliedIndex;
    for (const command of CONTINUATION) {
      index += 3;
      const expected = kv.apply(command, index);
      expect(copy.apply(command, index)).toEqual(expected);
      expect(copy.snapshot()).toBe(kv.snapshot());
    }
    // The continuation really exercised sessions: duplicates, a stale seq and expiry.
    const replay = restoreKv(build().snapshot(), CONFIG);
    const results = CONTINUATION.map((c, i) => replay.apply(c, 1000 + i).result);
    expect(results[0]).toMatchObject({ duplicate: true });
    expect(results[1]).toMatchObject({ duplicate: true });
    expect(results[2]).toMatchObject({ ok: false, error: { code: 'request_id_stale' } });
    expect(results[5]).not.toHaveProperty('duplicate'); // c4 expired by nowMs 201
  });

  it('round-trips an empty state', () => {
    const kv = newKv();
    const copy = restoreKv(kv.snapshot());
    expect(copy.snapshot()).toBe(kv.snapshot());
    expect(copy.revision).toBe(1);
    copy.apply({ type: 'put', key: 'a', value: 'b' }, 1);
    expect(copy.revision).toBe(2);
  });

  it('keeps the applied index, so restored replicas refuse an old index', () => {
    const copy = restoreKv(build().snapshot(), CONFIG);
    expect(() => copy.apply({ type: 'get', key: 'a' }, 10)).toThrow(AssertionError);
  });

  it('keeps what the history dropped, so compaction answers stay the same', () => {
    const kv = build();
    const oldest = kv.eventsSince(1, { prefix: '' }, 10);
    expect(oldest).toMatchObject({ ok: false, error: { code: 'compacted' } });
    expect(restoreKv(kv.snapshot(), CONFIG).eventsSince(1, { prefix: '' }, 10)).toEqual(oldest);
  });

  it('fails loudly on a snapshot that is corrupt or not a KV snapshot', () => {
    const data = build().snapshot();
    const parsed = JSON.parse(data) as Record<string, unknown>;
    const bad = [
      'not json',
      '[]',
      JSON.stringify({ ...parsed, format: 'other' }),
      JSON.stringify({ ...parsed, version: 2 }),
      JSON.stringify({ ...parsed, revision: 'x' }),
      JSON.stringify({ ...parsed, keys: [...(parsed['keys'] as unknown[])].reverse() }),
      JSON.stringify({ ...parsed, leases: [] }), // keys refer to leases that are gone
    ];
    for (const data of bad) expect(() => restoreKv(data, CONFIG)).toThrow(AssertionError);
  });
});
