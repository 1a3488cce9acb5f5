// LMDB key stores in temporary directories for tests, closed and removed after the file's tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { LmdbKeyStore } from '../../store/engine/lmdb-keyspace.js';

const opened: LmdbKeyStore[] = [];
const dirs: string[] = [];

/** A new directory, removed after the file's tests. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'raft2pc-lmdb-'));
  dirs.push(dir);
  return dir;
}

/** Opens a store in `dir` (default: a new temporary one); closed after the file's tests unless closed before. */
export function openTempStore(dir: string = tempDir()): LmdbKeyStore {
  const store = LmdbKeyStore.open(dir);
  opened.push(store);
  return store;
}

/** Closes a store opened by openTempStore before the file ends (e.g. to reopen its directory). */
export async function closeTempStore(store: LmdbKeyStore): Promise<void> {
  opened.splice(opened.indexOf(store), 1);
  await store.close();
}

/** Forgets a store something else closed (a node's stop() closes its NodeIo.keys). */
export function forgetTempStore(store: LmdbKeyStore): void {
  opened.splice(opened.indexOf(store), 1);
}

afterAll(async () => {
  for (const store of opened.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
