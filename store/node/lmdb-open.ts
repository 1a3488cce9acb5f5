/**
 * Opening the LMDB key store of a node's data directory (`<data-dir>/kv`),
 * and when to trust what it holds.
 *
 * LMDB runs with noSync (lmdb-keyspace.ts): a commit reaches the OS page
 * cache, so it survives the process being killed (SIGKILL included), but
 * not the machine crashing. So the store is trusted when it was last used
 * in this boot of the machine (Linux's boot_id), or when the process that
 * last used it closed it cleanly (flushed). Otherwise the machine went down
 * under a running node: the environment may be torn, so it is removed and
 * the node rebuilds it from its snapshot and WAL. A marker file beside the
 * environment, written with fsync, records the boot and whether the close
 * was clean.
 */
import { readFile, rm } from 'node:fs/promises';
import type { Logger } from '../../lib/logger.js';
import type { LmdbKeyStore } from '../engine/lmdb-keyspace.js';
import { replaceFileDurably } from './wal-fs.js';

const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

interface Marker {
  readonly bootId: string;
  readonly clean: boolean;
}

export async function openLmdbKeys(dir: string, log: Logger): Promise<LmdbKeyStore> {
  // Loaded only here: a memory-engine node never loads lmdb's native module.
  const { LmdbKeyStore } = await import('../engine/lmdb-keyspace.js');
  const markerPath = `${dir}.boot`;
  const bootId = await currentBootId();
  const marker = await readMarker(markerPath);
  if (marker !== undefined && !trusted(marker, bootId)) {
    log('warn', 'the machine restarted since this key store was last used without a clean close: rebuilding it from the snapshot and WAL', { dir });
    await rm(dir, { recursive: true, force: true });
  }
  await writeMarker(markerPath, { bootId, clean: false });
  return LmdbKeyStore.open(dir, { onClosed: () => writeMarker(markerPath, { bootId, clean: true }) });
}

function trusted(marker: Marker, bootId: string): boolean {
  return marker.clean || (bootId !== '' && marker.bootId === bootId);
}

/** This boot's id; '' where the system has none (then only a clean close is trusted). */
async function currentBootId(): Promise<string> {
  try {
    return (await readFile(BOOT_ID_PATH, 'utf8')).trim();
  } catch {
    return '';
  }
}

async function readMarker(path: string): Promise<Marker | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined; // no marker: a store from before markers, or none yet; an absent store is rebuilt anyway
  }
  try {
    const m = JSON.parse(text) as Partial<Marker>;
    return { bootId: typeof m.bootId === 'string' ? m.bootId : '', clean: m.clean === true };
  } catch {
    return { bootId: '', clean: false }; // unreadable: distrust
  }
}

function writeMarker(path: string, marker: Marker): Promise<void> {
  return replaceFileDurably(path, Buffer.from(JSON.stringify(marker)));
}
