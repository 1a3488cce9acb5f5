// Goal: range scans return keys under a prefix in UTF-8 byte order (etcd's
// order), honour limit and the exclusive `after` cursor, say correctly whether
// more keys remain, and refuse limits above maxRangeLimit.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { type KvStateMachine, compareKeys } from '../../store/kv/index.js';
import type { KeyValue } from '../../store/kv/index.js';
import { newKv } from './kv-factory.js';

function store(keys: readonly string[], config = {}): KvStateMachine {
  const kv = newKv(config);
  keys.forEach((key, i) => kv.apply({ type: 'put', key, value: `v-${key}` }, i + 1));
  return kv;
}

function keysOf(result: ReturnType<KvStateMachine['range']>): string[] {
  if (!result.ok) throw new Error(`range failed: ${result.error.code}`);
  return result.kvs.map((kv: KeyValue) => kv.key);
}

const KEYS = ['b/2', 'a', 'b/1', 'b', 'c', 'b/10', 'ba', 'b/3'];

describe('range', () => {
  it('returns keys under a prefix in order', () => {
    const kv = store(KEYS);
    expect(keysOf(kv.range({ prefix: 'b/' }))).toEqual(['b/1', 'b/10', 'b/2', 'b/3']);
    expect(keysOf(kv.range({ prefix: 'b' }))).toEqual(['b', 'b/1', 'b/10', 'b/2', 'b/3', 'ba']);
    expect(keysOf(kv.range({ prefix: '' }))).toEqual(['a', 'b', 'b/1', 'b/10', 'b/2', 'b/3', 'ba', 'c']);
    expect(keysOf(kv.range({ prefix: 'zz' }))).toEqual([]);
  });

  it('returns full records at the current revision', () => {
    const kv = store(['a']);
    expect(kv.range({ prefix: 'a' })).toEqual({
      ok: true,
      type: 'range',
      kvs: [{ key: 'a', value: 'v-a', version: 1, createRevision: 2, modRevision: 2 }],
      more: false,
      revision: 2,
    });
  });

  it('stops at limit and says whether more keys match', () => {
    const kv = store(KEYS);
    const page = kv.range({ prefix: 'b/', limit: 2 });
    expect(keysOf(page)).toEqual(['b/1', 'b/10']);
    expect(page.ok && page.more).toBe(true);
    const exact = kv.range({ prefix: 'b/', limit: 4 });
    expect(exact.ok && exact.more).toBe(false); // 'ba' follows but does not match
  });

  it('pages with an exclusive after cursor through every key exactly once', () => {
    const kv = store(KEYS);
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = kv.range(after === undefined ? { prefix: 'b', limit: 2 } : { prefix: 'b', limit: 2, after });
      seen.push(...keysOf(page));
      if (!page.ok || !page.more) break;
      after = seen[seen.length - 1];
    }
    expect(seen).toEqual(['b', 'b/1', 'b/10', 'b/2', 'b/3', 'ba']);
  });

  it('treats after below the prefix as no cursor and after past the prefix as the end', () => {
    const kv = store(KEYS);
    expect(keysOf(kv.range({ prefix: 'b/', after: 'a' }))).toEqual(['b/1', 'b/10', 'b/2', 'b/3']);
    expect(keysOf(kv.range({ prefix: 'b/', after: 'b/2' }))).toEqual(['b/3']);
    expect(keysOf(kv.range({ prefix: 'b/', after: 'b/25' }))).toEqual(['b/3']);
    expect(keysOf(kv.range({ prefix: 'b/', after: 'c' }))).toEqual([]);
    expect(keysOf(kv.range({ prefix: 'b/', after: 'b/' }))).toEqual(['b/1', 'b/10', 'b/2', 'b/3']);
  });

  it('orders keys by UTF-8 bytes, not UTF-16 code units', () => {
    const keys = ['a\u{1F600}', 'a\uE000', 'a\uFFFF', 'a\u00E9', 'a~', 'a\u{10000}'];
    const kv = store(keys);
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(keysOf(kv.range({ prefix: 'a' }))).toEqual(byBytes);
    expect(byBytes).not.toEqual([...keys].sort()); // the plain sort would get this wrong
    for (const x of keys) {
      for (const y of keys) {
        expect(Math.sign(compareKeys(x, y))).toBe(Math.sign(Buffer.compare(Buffer.from(x), Buffer.from(y))));
      }
    }
  });

  it('defaults limit to maxRangeLimit and refuses more', () => {
    const kv = store(['a', 'b', 'c'], { maxRangeLimit: 2 });
    const page = kv.range({ prefix: '' });
    expect(keysOf(page)).toEqual(['a', 'b']);
    expect(page.ok && page.more).toBe(true);
    expect(kv.range({ prefix: '', limit: 3 })).toMatchObject({
      ok: false,
      error: { code: 'limit_too_large', maxRangeLimit: 2 },
    });
    expect(kv.range({ prefix: '', limit: 0 })).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
    expect(kv.range({ prefix: '', limit: 1.5 })).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
  });

  it('keeps order through inserts and deletes', () => {
    const kv = store([]);
    let index = 0;
    for (const key of ['m', 'c', 'x', 'a', 'q']) kv.apply({ type: 'put', key, value: '' }, ++index);
    kv.apply({ type: 'delete', key: 'c' }, ++index);
    kv.apply({ type: 'delete', key: 'x' }, ++index);
    kv.apply({ type: 'put', key: 'b', value: '' }, ++index);
    expect(keysOf(kv.range({ prefix: '' }))).toEqual(['a', 'b', 'm', 'q']);
  });

  it('stays ordered across block splits and merges with thousands of keys', () => {
    const seed = 77;
    const random = new SeededRandom(seed);
    const kv = newKv();
    const live = new Set<string>();
    let index = 0;
    for (let step = 0; step < 6000; step++) {
      const key = `${random.pick(['a', 'b', 'c'])}/${random.int(3000)}`;
      if (random.chance(0.3)) {
        kv.apply({ type: 'delete', key }, ++index);
        live.delete(key);
      } else {
        kv.apply({ type: 'put', key, value: '' }, ++index);
        live.add(key);
      }
    }
    const expected = [...live].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(kv.keyCount, `seed ${seed}`).toBe(live.size);
    for (const prefix of ['', 'a/', 'b/1', 'c/29']) {
      const want = expected.filter((k) => k.startsWith(prefix));
      const got: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = kv.range(after === undefined ? { prefix, limit: 700 } : { prefix, limit: 700, after });
        got.push(...keysOf(page));
        if (!page.ok || !page.more) break;
        after = got[got.length - 1];
      }
      expect(got, `seed ${seed} prefix ${prefix}`).toEqual(want);
    }
    // Deleting everything empties every block.
    for (const key of live) kv.apply({ type: 'delete', key }, ++index);
    expect(keysOf(kv.range({ prefix: '' }))).toEqual([]);
  });
});
