// Goal: the revision and per-key version rules match etcd: the store starts at
// revision 1, each changing write takes exactly the next revision, a key's
// version counts puts within one life of the key, and reads change nothing.
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import type { KvCommand, KvResult } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function setup() {
  const kv = newKv();
  let index = 0;
  const run = (command: KvCommand): KvResult => kv.apply(command, ++index).result;
  return { kv, run };
}

describe('revisions and versions', () => {
  it('starts empty at revision 1 and applied index 0', () => {
    const { kv } = setup();
    expect(kv.revision).toBe(1);
    expect(kv.appliedIndex).toBe(0);
    expect(kv.keyCount).toBe(0);
    expect(kv.get('a')).toEqual({ ok: true, type: 'get', kv: null, revision: 1 });
  });

  it('gives a created key version 1 and the new revision as create and mod revision', () => {
    const { kv, run } = setup();
    expect(run({ type: 'put', key: 'a', value: 'x' })).toEqual({
      ok: true,
      type: 'put',
      revision: 2,
      previous: null,
    });
    expect(kv.get('a')).toEqual({
      ok: true,
      type: 'get',
      kv: { key: 'a', value: 'x', version: 1, createRevision: 2, modRevision: 2 },
      revision: 2,
    });
  });

  it('bumps version and revision on every put, even of the same value', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: 'x' });
    expect(run({ type: 'put', key: 'a', value: 'y' })).toMatchObject({ revision: 3, previous: 'x' });
    expect(run({ type: 'put', key: 'a', value: 'y' })).toMatchObject({ revision: 4, previous: 'y' });
    run({ type: 'put', key: 'b', value: 'z' });
    const got = kv.get('a');
    expect(got.ok && got.kv).toEqual({ key: 'a', value: 'y', version: 3, createRevision: 2, modRevision: 4 });
    expect(kv.revision).toBe(5);
  });

  it('deletes once, keeps the revision on a delete of a missing key, and restarts the version', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: 'x' });
    run({ type: 'put', key: 'a', value: 'y' });
    expect(run({ type: 'delete', key: 'a' })).toEqual({
      ok: true,
      type: 'delete',
      deleted: true,
      previous: 'y',
      revision: 4,
    });
    expect(run({ type: 'delete', key: 'a' })).toEqual({
      ok: true,
      type: 'delete',
      deleted: false,
      previous: null,
      revision: 4,
    });
    expect(kv.revision).toBe(4);
    run({ type: 'put', key: 'a', value: 'again' });
    const got = kv.get('a');
    expect(got.ok && got.kv).toEqual({ key: 'a', value: 'again', version: 1, createRevision: 5, modRevision: 5 });
  });

  it('counts an empty value as present', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: '' });
    expect(run({ type: 'delete', key: 'a' })).toMatchObject({ deleted: true, previous: '' });
    expect(kv.keyCount).toBe(0);
  });

  it('serves reads through apply without changing the revision, but advances the applied index', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: 'x' });
    const before = kv.revision;
    expect(run({ type: 'get', key: 'a' })).toMatchObject({ ok: true, type: 'get', revision: before });
    expect(run({ type: 'range', prefix: '' })).toMatchObject({ ok: true, type: 'range', more: false });
    expect(kv.revision).toBe(before);
    expect(kv.appliedIndex).toBe(3);
  });

  it('hands out records that later writes do not change', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'a', value: 'x' });
    const first = kv.get('a');
    run({ type: 'put', key: 'a', value: 'y' });
    expect(first.ok && first.kv?.value).toBe('x');
  });

  it('asserts that raft indexes increase, and allows gaps for entries it never sees', () => {
    const kv = newKv();
    kv.apply({ type: 'put', key: 'a', value: 'x' }, 5);
    expect(kv.appliedIndex).toBe(5);
    expect(() => kv.apply({ type: 'get', key: 'a' }, 5)).toThrow(AssertionError);
    expect(() => kv.apply({ type: 'get', key: 'a' }, 4)).toThrow(AssertionError);
    kv.apply({ type: 'get', key: 'a' }, 9);
    expect(kv.appliedIndex).toBe(9);
  });

  it('applies entry data given as JSON, and answers non-JSON data with invalid_command', () => {
    const kv = newKv();
    const put = kv.applyData(JSON.stringify({ type: 'put', key: 'a', value: 'x' }), 1);
    expect(put.result).toMatchObject({ ok: true, revision: 2 });
    const bad = kv.applyData('{not json', 2);
    expect(bad.result).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
    expect(bad.events).toEqual([]);
    expect(kv.revision).toBe(2);
    expect(kv.appliedIndex).toBe(2);
  });

  it('tracks the store size in UTF-8 bytes', () => {
    const { kv, run } = setup();
    run({ type: 'put', key: 'é', value: '€' }); // 2 + 3 bytes
    run({ type: 'put', key: 'k', value: '\u{1F600}' }); // 1 + 4 bytes
    expect(kv.storeBytes).toBe(10);
    run({ type: 'delete', key: 'é' });
    expect(kv.storeBytes).toBe(5);
  });
});
