/**
 * The LMDB key store of a node's data directory, and when to trust it.
 *
 * Layout: `<data-dir>/kv` is a symbolic link to the live environment's
 * directory `kv.<n>`. A snapshot pulled from the leader is written into
 * `kv.<n+1>` beside it and swapped in by replacing the link (one rename:
 * atomic), so a crash leaves either the old state or the new one, whole.
 * Directories `kv.<m>` the link does not name are leftovers of a pull that
 * did not finish, removed at start.
 *
 * Trust: LMDB runs with noSync (lmdb-keyspace.ts): a commit reaches the OS
 * page cache, so it survives the process being killed (SIGKILL included),
 * but not the machine crashing. So the store is trusted when it was last
 * used in this boot of the machine (Linux's boot_id), or when the process
 * that last used it closed it cleanly (flushed). Otherwise the machine went
 * down under a running node: the environment may be torn, so it is removed
 * and the node rebuilds it (from its snapshot and WAL, or, when its snapshot
 * is the engine's own, it refuses to start: see startup.ts). A marker file
 * `kv.boot`, written with fsync, records the boot and whether the close was
 * clean.
 */
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HttpRequester } from '../../lib/http-client.js';
import type { Logger } from '../../lib/logger.js';
import type { LmdbKeyStore } from '../engine/lmdb-keyspace.js';
import type { KeyStore } from '../kv/keystore.js';
import type { SideKeyStore, SnapshotStreamIo } from './io.js';
import { fsyncDir, replaceFileDurably } from './wal-fs.js';

const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

interface Marker {
  readonly bootId: string;
  readonly clean: boolean;
}

/** The node's key store at `link` (`<data-dir>/kv`), and the side stores snapshot streams pull into. */
export async function openLmdbKeys(link: string, log: Logger, http?: HttpRequester): Promise<{ keys: LmdbKeyStore; streams?: SnapshotStreamIo }> {
  // Loaded only here: a memory-engine node never loads lmdb's native module.
  const { LmdbKeyStore } = await import('../engine/lmdb-keyspace.js');
  const markerPath = `${link}.boot`;
  const bootId = await currentBootId();
  const marker = await readMarker(markerPath);
  if (marker !== undefined && !trusted(marker, bootId)) {
    log('warn', 'the machine restarted since this key store was last used without a clean close: removing it', { dir: link });
    await rm(liveDir(link) ?? link, { recursive: true, force: true });
    await rm(link, { force: true, recursive: true });
  }
  const live = ensureLayout(link);
  await writeMarker(markerPath, { bootId, clean: false });
  let current: KeyStore | undefined;
  // Only the live store's clean close marks the directory clean (not a discarded side store, nor one swapped out).
  const open = (dir: string): LmdbKeyStore => {
    const store: LmdbKeyStore = LmdbKeyStore.open(dir, { onClosed: async () => (store === current ? writeMarker(markerPath, { bootId, clean: true }) : undefined) });
    return store;
  };
  const keys = open(live);
  current = keys;
  if (http === undefined) return { keys };
  const makeLive = (store: KeyStore): void => {
    current = store;
  };
  return { keys, streams: { http, openSide: () => openSide(link, open, makeLive) } };
}

/** Makes `link` a link to a live directory (migrating a plain directory), removes leftovers; returns the live directory. */
function ensureLayout(link: string): string {
  const parent = dirname(link);
  mkdirSync(parent, { recursive: true });
  const kind = lstatOrUndefined(link);
  if (kind !== undefined && !kind.isSymbolicLink()) renameSync(link, `${link}.0`);
  if (kind === undefined || !kind.isSymbolicLink()) {
    mkdirSync(`${link}.0`, { recursive: true });
    symlinkSync(basename(`${link}.0`), link);
  }
  const live = liveDir(link) as string;
  const numbered = new RegExp(`^${escapeRegExp(basename(link))}\\.\\d+$`);
  for (const name of readdirSync(parent)) {
    if (numbered.test(name) && join(parent, name) !== live) rmSync(join(parent, name), { recursive: true, force: true });
  }
  return live;
}

/** The directory `link` names, or undefined when it is not a link. */
function liveDir(link: string): string | undefined {
  const kind = lstatOrUndefined(link);
  return kind?.isSymbolicLink() === true ? join(dirname(link), readlinkSync(link)) : undefined;
}

async function openSide(link: string, open: (dir: string) => LmdbKeyStore, makeLive: (store: KeyStore) => void): Promise<SideKeyStore> {
  const live = liveDir(link) as string;
  const dir = `${link}.${Number(live.slice(live.lastIndexOf('.') + 1)) + 1}`;
  await rm(dir, { recursive: true, force: true });
  const keys = open(dir);
  return {
    keys,
    swapIn(old: KeyStore): void {
      const temp = `${link}.swap`;
      rmSync(temp, { force: true });
      symlinkSync(basename(dir), temp);
      renameSync(temp, link); // atomic: a restart opens the old state or the new one
      makeLive(keys);
      void fsyncDir(dirname(link))
        .then(() => old.close())
        .then(() => rm(live, { recursive: true, force: true }))
        .catch(() => undefined); // a leftover directory is removed at the next start
    },
    async discard(): Promise<void> {
      await keys.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
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
    return undefined; // no marker yet: a new store
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
