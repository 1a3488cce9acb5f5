// The KeyStore contract on LmdbKeyStore, and what only a store on disk has:
// reopening finds the keys, sizes and applied index of the last committed
// batch; an aborted batch leaves nothing behind.
import { describe, expect, it } from 'vitest';
import { entry, keyStoreCases } from '../kv/keystore.case.js';
import { closeTempStore, openTempStore, tempDir } from './lmdb-temp.js';

keyStoreCases('LmdbKeyStore', () => openTempStore());

describe('LmdbKeyStore on disk', () => {
  it('reopens with the keys, sizes and applied index of the last batch', async () => {
    const dir = tempDir();
    const first = openTempStore(dir);
    first.batch(() => {
      first.set(entry('a', 'x'));
      first.set(entry('b/é', 'yy', 3, { lease: 4 }));
      first.set(entry('c', 'z'));
      first.delete('c');
    }, () => 42);
    await first.flush();
    await closeTempStore(first);
    const again = openTempStore(dir);
    expect(again.appliedIndex).toBe(42);
    expect(again.size).toBe(2);
    expect(again.totalBytes).toBe(1 + 1 + 4 + 2);
    expect([...again.inOrder()]).toEqual([entry('a', 'x'), entry('b/é', 'yy', 3, { lease: 4 })]);
  });

  it('reads inside a batch see its own writes (through its memo of rows)', () => {
    const ks = openTempStore();
    ks.batch(() => ks.set(entry('a', 'x')), () => 1);
    ks.batch(() => {
      expect(ks.get('a')).toEqual(entry('a', 'x'));
      ks.set(entry('a', 'xyz', 2));
      expect(ks.get('a')).toEqual(entry('a', 'xyz', 2));
      expect(ks.totalBytes).toBe(1 + 3);
      expect(ks.delete('a')).toEqual(entry('a', 'xyz', 2));
      expect(ks.get('a')).toBeUndefined();
      expect(ks.delete('a')).toBeUndefined();
      ks.set(entry('a', 'w', 3));
      expect(ks.size).toBe(1);
    }, () => 2);
    expect(ks.get('a')).toEqual(entry('a', 'w', 3));
    expect(ks.totalBytes).toBe(2);
  });

  it('rolls back a batch that throws: keys, sizes and applied index stay as committed', async () => {
    const dir = tempDir();
    const ks = openTempStore(dir);
    ks.batch(() => ks.set(entry('a', 'x')), () => 1);
    expect(() =>
      ks.batch(() => {
        ks.set(entry('b', 'y'));
        ks.delete('a');
        throw new Error('boom');
      }, () => 2),
    ).toThrow('boom');
    expect(ks.appliedIndex).toBe(1);
    expect(ks.size).toBe(1);
    expect(ks.totalBytes).toBe(2);
    expect(ks.get('a')).toEqual(entry('a', 'x'));
    expect(ks.get('b')).toBeUndefined();
    // Inside the next batch too: what the aborted one read and wrote is not remembered.
    ks.batch(() => {
      expect(ks.get('a')).toEqual(entry('a', 'x'));
      expect(ks.get('b')).toBeUndefined();
    }, () => 1);
    await closeTempStore(ks);
    const again = openTempStore(dir);
    expect([...again.inOrder()]).toEqual([entry('a', 'x')]);
    expect(again.appliedIndex).toBe(1);
  });
});
