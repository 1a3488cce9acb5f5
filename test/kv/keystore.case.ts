// The KeyStore contract (store/kv/keystore.ts), run against each
// implementation: test/kv/keystore-memory.test.ts (Keyspace) and
// test/engine/keystore-lmdb.test.ts (LmdbKeyStore). Key order is
// compareKeys (code point order), sizes are kept without rescans, a batch is
// all or nothing, and reads inside a batch see its writes.
import { describe, expect, it } from 'vitest';
import type { KeyStore, StoredKey } from '../../store/kv/keystore.js';
import type { KeyValue } from '../../store/kv/types.js';
import { compareKeys, utf8ByteLength } from '../../store/kv/utf8.js';

export type MakeKeyStore = () => KeyStore;

export function entry(key: string, value: string, rev = 2, extra: Partial<KeyValue> = {}): StoredKey {
  const kv: KeyValue = { key, value, version: 1, createRevision: rev, modRevision: rev, ...extra };
  return { kv, keyBytes: utf8ByteLength(key), valueBytes: utf8ByteLength(value) };
}

const keysOf = (r: { kvs: KeyValue[] }): string[] => r.kvs.map((kv) => kv.key);

/** Keys whose code point order differs from JS's UTF-16 `<` order, and prefixes of each other. */
const TRICKY = ['a', 'a\u0000', 'ab', 'b', '\u0001', 'é', '\ue000', '\uffff', '\u{10000}', '\u{1F600}x', 'a/', 'a/b', 'a0'];

export function keyStoreCases(name: string, make: MakeKeyStore): void {
  describe(`KeyStore contract: ${name}`, () => {
    it('gets, replaces and deletes keys, keeping size and total bytes', () => {
      const ks = make();
      expect(ks.size).toBe(0);
      expect(ks.totalBytes).toBe(0);
      expect(ks.get('a')).toBeUndefined();
      ks.set(entry('a', 'xyz'));
      ks.set(entry('é', '\u{1F600}', 3, { lease: 7 }));
      expect(ks.size).toBe(2);
      expect(ks.totalBytes).toBe(1 + 3 + 2 + 4);
      expect(ks.get('é')).toEqual(entry('é', '\u{1F600}', 3, { lease: 7 }));
      ks.set(entry('a', '', 4, { version: 2, createRevision: 2 }));
      expect(ks.get('a')?.kv).toEqual({ key: 'a', value: '', version: 2, createRevision: 2, modRevision: 4 });
      expect(ks.get('a')?.kv.lease).toBeUndefined();
      expect(ks.size).toBe(2);
      expect(ks.totalBytes).toBe(1 + 0 + 2 + 4);
      expect(ks.delete('a')).toEqual(entry('a', '', 4, { version: 2, createRevision: 2 }));
      expect(ks.delete('a')).toBeUndefined();
      expect(ks.size).toBe(1);
      expect(ks.totalBytes).toBe(6);
    });

    it('orders keys by code point (UTF-8 byte order), not UTF-16 units', () => {
      const ks = make();
      for (const k of TRICKY) ks.set(entry(k, 'v'));
      const sorted = [...TRICKY].sort(compareKeys);
      expect([...ks.inOrder()].map((s) => s.kv.key)).toEqual(sorted);
      expect(keysOf(ks.range('', undefined, 100))).toEqual(sorted);
    });

    it('ranges by prefix with an exclusive start and a limit', () => {
      const ks = make();
      for (const k of TRICKY) ks.set(entry(k, 'v'));
      expect(keysOf(ks.range('a', undefined, 100))).toEqual(['a', 'a\u0000', 'a/', 'a/b', 'a0', 'ab']);
      expect(ks.range('a/', undefined, 1)).toEqual({ kvs: [entry('a/', 'v').kv], more: true });
      expect(ks.range('a/', 'a/', 1)).toEqual({ kvs: [entry('a/b', 'v').kv], more: false });
      expect(ks.range('a', 'a/', 2)).toEqual({ kvs: [entry('a/b', 'v').kv, entry('a0', 'v').kv], more: true });
      expect(keysOf(ks.range('a', 'a0', 5))).toEqual(['ab']);
      expect(keysOf(ks.range('a', 'ab', 5))).toEqual([]);
      // `after` before the prefix starts at the prefix; a missing `after` key still bounds the start.
      expect(keysOf(ks.range('b', 'a', 5))).toEqual(['b']);
      expect(keysOf(ks.range('a', 'a/a', 5))).toEqual(['a/b', 'a0', 'ab']);
      expect(ks.range('zz', undefined, 5)).toEqual({ kvs: [], more: false });
      expect(keysOf(ks.range('\u{10000}', undefined, 5))).toEqual(['\u{10000}']);
      expect(ks.range('', undefined, TRICKY.length).more).toBe(false);
      expect(ks.range('', undefined, TRICKY.length - 1).more).toBe(true);
    });

    it('keeps order and sizes through many inserts and deletes', () => {
      const ks = make();
      const live = new Map<string, string>();
      let seed = 12345;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      ks.batch(() => {
        for (let i = 0; i < 3000; i++) {
          const key = `k/${rand(800).toString(36)}`;
          if (rand(3) === 0) {
            expect(ks.delete(key) !== undefined).toBe(live.delete(key));
          } else {
            const value = 'v'.repeat(rand(20));
            ks.set(entry(key, value));
            live.set(key, value);
          }
        }
      }, () => 1);
      const sorted = [...live.keys()].sort(compareKeys);
      expect(ks.size).toBe(live.size);
      expect(ks.totalBytes).toBe([...live].reduce((n, [k, v]) => n + k.length + v.length, 0));
      expect([...ks.inOrder()].map((s) => s.kv.key)).toEqual(sorted);
      const paged: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = ks.range('k/', after, 37);
        paged.push(...keysOf(page));
        if (!page.more) break;
        after = paged[paged.length - 1];
      }
      expect(paged).toEqual(sorted);
    });

    it('records the applied index of a batch; reads inside a batch see its writes', () => {
      const ks = make();
      expect(ks.appliedIndex).toBe(0);
      const seen = ks.batch(() => {
        ks.set(entry('a', '1'));
        ks.set(entry('b', '2'));
        ks.delete('a');
        // A nested batch joins the outer one.
        ks.batch(() => ks.set(entry('c', '3')), () => 99);
        return { a: ks.get('a'), range: keysOf(ks.range('', undefined, 10)), size: ks.size };
      }, () => 7);
      expect(seen).toEqual({ a: undefined, range: ['b', 'c'], size: 2 });
      expect(ks.appliedIndex).toBe(7);
      ks.set(entry('d', '4'));
      expect(ks.appliedIndex).toBe(7);
    });

    it('clears every key and the applied index', () => {
      const ks = make();
      ks.batch(() => {
        for (const k of TRICKY) ks.set(entry(k, 'v'));
      }, () => 5);
      ks.clear();
      expect(ks.size).toBe(0);
      expect(ks.totalBytes).toBe(0);
      expect(ks.appliedIndex).toBe(0);
      expect([...ks.inOrder()]).toEqual([]);
      expect(ks.get('a')).toBeUndefined();
      ks.set(entry('a', 'again'));
      expect(keysOf(ks.range('', undefined, 10))).toEqual(['a']);
    });

    it('takes the longest key the KV config allows (1 KiB of UTF-8)', () => {
      const ks = make();
      const key = '\u{10000}'.repeat(256);
      ks.set(entry(key, 'v'));
      expect(ks.get(key)?.keyBytes).toBe(1024);
      expect(ks.range('\u{10000}', undefined, 2).kvs.length).toBe(1);
    });
  });
}
