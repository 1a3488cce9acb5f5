// Goal: a node trusts its LMDB store (noSync: safe through a process kill,
// not through a machine crash) only when it was last used in this boot of
// the machine or closed cleanly; a store left open by a run in an earlier
// boot is removed, so the node rebuilds it from its snapshot and WAL.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { openLmdbKeys } from '../../store/node/lmdb-open.js';
import { entry } from '../kv/keystore.case.js';
import { tempDir } from './lmdb-temp.js';

async function storeWithKey(dir: string): Promise<void> {
  const { keys: ks } = await openLmdbKeys(dir, silentLogger);
  ks.batch(() => ks.set(entry('a', 'x')), () => 7);
  await ks.close();
}

async function keptKeys(dir: string): Promise<number> {
  const { keys: ks } = await openLmdbKeys(dir, silentLogger);
  const size = ks.size;
  await ks.close();
  return size;
}

describe('opening a node\'s LMDB store', () => {
  const cases: [string, (boot: string) => object, number][] = [
    ['closed cleanly in an earlier boot: kept', () => ({ bootId: 'an-earlier-boot', clean: true }), 1],
    ['left open in this boot (a killed process): kept', (boot) => ({ bootId: boot, clean: false }), 1],
    ['left open in an earlier boot (a machine crash): rebuilt', () => ({ bootId: 'an-earlier-boot', clean: false }), 0],
    ['an unreadable marker: rebuilt', () => ({}), 0],
  ];
  for (const [name, marker, expected] of cases) {
    it(name, async () => {
      const dir = join(tempDir(), 'kv');
      await storeWithKey(dir);
      const boot = (JSON.parse(readFileSync(`${dir}.boot`, 'utf8')) as { bootId: string }).bootId;
      writeFileSync(`${dir}.boot`, name.includes('unreadable') ? 'not json' : JSON.stringify(marker(boot)));
      expect(await keptKeys(dir)).toBe(expected);
    });
  }
});
