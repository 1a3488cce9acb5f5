// Goal: utf8ByteLength is the UTF-8 length Buffer computes, on ASCII (the fast
// path), on 2-, 3- and 4-byte characters and on strings mixing them, and -1
// for any lone surrogate, wherever it sits.
import { describe, expect, it } from 'vitest';
import { utf8ByteLength } from '../../store/kv/utf8.js';

describe('utf8ByteLength', () => {
  it('matches Buffer.byteLength on well-formed strings', () => {
    const samples = ['', 'a', 'x'.repeat(512), '\u007f', '\u0080', 'é', '\u07ff', '\u0800', '\uffff', '\u{10000}', '\u{1F600}', 'ascii then é then \u{1F600} then \uffff'];
    for (const s of samples) expect(utf8ByteLength(s), JSON.stringify(s)).toBe(Buffer.byteLength(s, 'utf8'));
  });

  it('matches Buffer.byteLength on random well-formed strings (seed printed on failure)', () => {
    const seed = 20261207;
    let x = seed;
    const next = (n: number): number => {
      x = (x * 1103515245 + 12345) >>> 0;
      return x % n;
    };
    const points = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff];
    for (let i = 0; i < 200; i++) {
      const s = String.fromCodePoint(...Array.from({ length: next(20) }, () => points[next(points.length)] as number));
      expect(utf8ByteLength(s), `seed ${seed}, string ${i}`).toBe(Buffer.byteLength(s, 'utf8'));
    }
  });

  it('is -1 for a lone surrogate, high or low, at the start, middle or end', () => {
    for (const s of ['\ud800', 'a\ud800', '\ud800a', 'x\udc00y', '\udfff', 'ok\u{1F600}\ud83d']) expect(utf8ByteLength(s), JSON.stringify(s)).toBe(-1);
  });
});
