// Goal: bad or oversize input never throws and never changes anything: each
// case comes back as a typed failure with a snake_case code (and the limit in
// its details), and the state afterwards equals the state before except for
// the applied index.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import type { KvStateMachine } from '../../store/kv/index.js';
import type { KvCommand, KvConfig, KvErrorCode } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

const CONFIG: Partial<KvConfig> = {
  maxKeyBytes: 8,
  maxValueBytes: 16,
  maxTxnOps: 2,
  maxRangeLimit: 5,
  maxStoreBytes: 20,
  maxClientIdBytes: 4,
};

/** A store with some keys and a lease, so a wrongly applied command would show. */
function seeded(): KvStateMachine {
  const kv = newKv(CONFIG);
  kv.apply({ type: 'leaseGrant', id: 1, ttlMs: 10 }, 1);
  kv.apply({ type: 'put', key: 'a', value: 'x', lease: 1 }, 2);
  kv.apply({ type: 'put', key: 'b', value: 'y', requestId: { clientId: 'c', seq: 2 }, nowMs: 5 }, 3);
  return kv;
}

/** The snapshot with the applied index masked out: everything a failure must leave alone. */
function stateOf(kv: KvStateMachine): unknown {
  return { ...(JSON.parse(kv.snapshot()) as object), appliedIndex: 0 };
}

const bigKey = 'é'.repeat(5); // 10 bytes, 5 UTF-16 units
const bigValue = '€'.repeat(6); // 18 bytes
const put = (extra: object) => ({ type: 'put', key: 'k', value: 'v', ...extra });
const txn = (extra: object) => ({ type: 'txn', compare: [], success: [], failure: [], ...extra });

const CASES: [string, unknown, KvErrorCode][] = [
  ['a non-object', 'put', 'invalid_command'],
  ['null', null, 'invalid_command'],
  ['an array', [], 'invalid_command'],
  ['an unknown type', { type: 'increment', key: 'a' }, 'invalid_command'],
  ['a put without key', { type: 'put', value: 'v' }, 'invalid_key'],
  ['an empty key', put({ key: '' }), 'invalid_key'],
  ['a numeric key', put({ key: 7 }), 'invalid_key'],
  ['a key with a lone surrogate', put({ key: 'a\uD800' }), 'invalid_key'],
  ['a key over maxKeyBytes in UTF-8', put({ key: bigKey }), 'key_too_large'],
  ['a put without value', { type: 'put', key: 'k' }, 'invalid_value'],
  ['a value with a lone low surrogate', put({ value: '\uDC00x' }), 'invalid_value'],
  ['a value over maxValueBytes', put({ value: bigValue }), 'value_too_large'],
  ['lease 0', put({ lease: 0 }), 'invalid_command'],
  ['a fractional lease', put({ lease: 1.5 }), 'invalid_command'],
  ['a string lease', put({ lease: '1' }), 'invalid_command'],
  ['an unknown lease', put({ lease: 2 }), 'lease_not_found'],
  ['a store quota overflow', put({ key: 'kkkkkkkk', value: 'v'.repeat(16) }), 'store_full'],
  ['a cas without expected', { type: 'cas', key: 'a', value: 'v' }, 'invalid_value'],
  ['a cas with a numeric expected', { type: 'cas', key: 'a', expected: 1, value: 'v' }, 'invalid_value'],
  ['a cas with an oversize value', { type: 'cas', key: 'a', expected: 'x', value: bigValue }, 'value_too_large'],
  ['a delete with an oversize key', { type: 'delete', key: bigKey }, 'key_too_large'],
  ['a get with an oversize key', { type: 'get', key: bigKey }, 'key_too_large'],
  ['a range over maxRangeLimit', { type: 'range', prefix: '', limit: 6 }, 'limit_too_large'],
  ['a range with a negative limit', { type: 'range', prefix: '', limit: -1 }, 'invalid_command'],
  ['a range without prefix', { type: 'range' }, 'invalid_key'],
  ['a range with a numeric after', { type: 'range', prefix: '', after: 1 }, 'invalid_key'],
  ['a txn with too many compares', txn({ compare: [1, 2, 3] }), 'too_many_ops'],
  ['a txn with a non-array branch', txn({ success: {} }), 'invalid_command'],
  ['a txn compare that is not an object', txn({ compare: [null] }), 'invalid_command'],
  ['a txn compare with a bad target', txn({ compare: [{ key: 'a', target: 'lease', op: '=', value: 0 }] }), 'invalid_command'],
  ['a txn compare with a bad op', txn({ compare: [{ key: 'a', target: 'version', op: '>=', value: 0 }] }), 'invalid_command'],
  ['a txn version compare with a string', txn({ compare: [{ key: 'a', target: 'version', op: '=', value: '1' }] }), 'invalid_command'],
  ['a txn value compare with a number', txn({ compare: [{ key: 'a', target: 'value', op: '=', value: 1 }] }), 'invalid_value'],
  ['a txn with a nested txn', txn({ success: [{ type: 'txn' }] }), 'invalid_command'],
  ['a txn with a lease grant op', txn({ success: [{ type: 'leaseGrant', id: 5, ttlMs: 1 }] }), 'invalid_command'],
  ['a txn with a bad op in the branch not taken', txn({ failure: [put({ key: '' })] }), 'invalid_key'],
  ['a txn writing one key twice', txn({ success: [put({}), { type: 'delete', key: 'k' }] }), 'duplicate_key_in_txn'],
  ['a txn growing the store past the quota', txn({ success: [put({ key: 'k1', value: 'v'.repeat(16) }), put({ key: 'k2', value: 'v'.repeat(16) })] }), 'store_full'],
  ['a lease grant with ttl 0', { type: 'leaseGrant', id: 3, ttlMs: 0 }, 'invalid_command'],
  ['a lease grant without id', { type: 'leaseGrant', ttlMs: 10 }, 'invalid_command'],
  ['a lease grant of a live id', { type: 'leaseGrant', id: 1, ttlMs: 10 }, 'lease_exists'],
  ['a revoke of an unknown lease', { type: 'leaseRevoke', id: 3 }, 'lease_not_found'],
  ['a negative nowMs', put({ nowMs: -1 }), 'invalid_command'],
  ['a requestId without nowMs', put({ requestId: { clientId: 'c', seq: 2 } }), 'invalid_command'],
  ['a requestId that is a string', put({ requestId: 'c:1', nowMs: 1 }), 'invalid_command'],
  ['a requestId with seq 0', put({ requestId: { clientId: 'c', seq: 0 }, nowMs: 1 }), 'invalid_command'],
  ['a requestId with an empty clientId', put({ requestId: { clientId: '', seq: 1 }, nowMs: 1 }), 'invalid_command'],
  ['a requestId with a long clientId', put({ requestId: { clientId: 'abcde', seq: 1 }, nowMs: 1 }), 'invalid_command'],
  ['a fractional seq', put({ requestId: { clientId: 'c', seq: 2.5 }, nowMs: 9 }), 'invalid_command'],
  ['a stale requestId', put({ requestId: { clientId: 'c', seq: 1 }, nowMs: 9 }), 'request_id_stale'],
];

describe('bad input', () => {
  for (const [what, command, code] of CASES) {
    it(`answers ${what} with ${code} and changes nothing`, () => {
      const kv = seeded();
      const before = stateOf(kv);
      const out = kv.apply(command as KvCommand, 10);
      expect(out.result).toMatchObject({ ok: false, error: { code } });
      expect(out.events).toEqual([]);
      if (!out.result.ok) expect(typeof out.result.error.message).toBe('string');
      // store_full raises the NOSPACE alarm (store/kv/alarm.ts): the one state change a failure makes.
      expect(stateOf(kv)).toEqual(code === 'store_full' ? { ...(before as object), alarms: [expect.objectContaining({ type: 'NOSPACE' })] } : before);
      expect(kv.appliedIndex).toBe(10);
    });
  }

  it('puts the limit and the measured size in the details', () => {
    const kv = seeded();
    expect(kv.apply(put({ key: bigKey }) as KvCommand, 10).result).toEqual({
      ok: false,
      error: { code: 'key_too_large', message: 'key is 10 bytes, at most 8', maxKeyBytes: 8, bytes: 10 },
    });
    expect(kv.apply(put({ value: bigValue }) as KvCommand, 11).result).toMatchObject({
      error: { code: 'value_too_large', maxValueBytes: 16, bytes: 18 },
    });
    expect(kv.apply(put({ key: 'kkkkkkkk', value: 'v'.repeat(16) }) as KvCommand, 12).result).toMatchObject({
      error: { code: 'store_full', maxStoreBytes: 20, storeBytes: 4 },
    });
  });

  it('always lets writes that shrink the store through, even when full', () => {
    const kv = newKv({ maxStoreBytes: 10 });
    kv.apply({ type: 'put', key: 'a', value: 'x'.repeat(9) }, 1);
    expect(kv.apply({ type: 'put', key: 'b', value: 'y' }, 2).result).toMatchObject({ error: { code: 'store_full' } });
    expect(kv.apply({ type: 'put', key: 'a', value: 'x' }, 3).result).toMatchObject({ ok: true });
    // The refused write raised the NOSPACE alarm: growing writes wait for a disarm.
    expect(kv.apply({ type: 'alarmDisarm' }, 4).result).toMatchObject({ ok: true, disarmed: true });
    expect(kv.apply({ type: 'put', key: 'b', value: 'y' }, 5).result).toMatchObject({ ok: true });
    expect(kv.storeBytes).toBe(4);
  });

  it('validates read API arguments the same way', () => {
    const kv = seeded();
    expect(kv.get(bigKey)).toMatchObject({ ok: false, error: { code: 'key_too_large' } });
    expect(kv.get('')).toMatchObject({ ok: false, error: { code: 'invalid_key' } });
    expect(kv.range({ prefix: bigKey })).toMatchObject({ ok: false, error: { code: 'key_too_large' } });
    expect(kv.range({ prefix: 'a', after: '\uD800' })).toMatchObject({ ok: false, error: { code: 'invalid_key' } });
  });

  it('never throws on random junk, and junk changes nothing', () => {
    const seed = 20240601;
    const random = new SeededRandom(seed);
    const atoms: unknown[] = [null, 0, -1, 1.5, 2 ** 60, '', 'a', bigKey, bigValue, true, [], {}, '\uD800'];
    const junk = (depth: number): unknown => {
      if (depth > 2 || random.chance(0.5)) return random.pick(atoms);
      if (random.chance(0.3)) return [junk(depth + 1), junk(depth + 1)];
      const fields = ['type', 'key', 'value', 'lease', 'expected', 'compare', 'success', 'failure', 'requestId', 'nowMs', 'id', 'ttlMs', 'prefix', 'limit'];
      const types = ['get', 'put', 'cas', 'delete', 'range', 'txn', 'leaseGrant', 'leaseRevoke', 'nope'];
      const out: Record<string, unknown> = { type: random.pick(types) };
      for (let i = 0; i < 4; i++) out[random.pick(fields)] = junk(depth + 1);
      if (random.chance(0.2)) out['type'] = random.pick(atoms);
      return out;
    };
    const kv = seeded();
    for (let i = 0; i < 2000; i++) {
      const command = junk(0);
      const before = kv.snapshot();
      let out;
      try {
        out = kv.apply(command as KvCommand, 10 + i);
      } catch (e) {
        throw new Error(`seed ${seed} step ${i}: threw ${String(e)} on ${JSON.stringify(command)}`);
      }
      if (!out.result.ok) {
        const after = { ...(JSON.parse(kv.snapshot()) as object), appliedIndex: 0 };
        expect(after, `seed ${seed} step ${i}: ${JSON.stringify(command)}`).toEqual({
          ...(JSON.parse(before) as object),
          appliedIndex: 0,
        });
      }
    }
  });
});
