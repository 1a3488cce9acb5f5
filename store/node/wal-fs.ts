/**
 * Small file-system helpers shared by the WAL and the snapshot files: the two
 * places where the node promises that data is on stable storage.
 */
import { dirname } from 'node:path';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/**
 * fsync a directory, so that files created, renamed or deleted in it survive
 * a power loss (a file's own fsync does not persist its directory entry).
 */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces the file at `path` with `bytes` durably: written to a temp file,
 * fsynced, renamed into place, then the directory fsynced, so a crash leaves
 * either the old file or the new one, whole.
 */
export async function replaceFileDurably(path: string, bytes: Uint8Array, tempSuffix = '.tmp'): Promise<void> {
  const temp = path + tempSuffix;
  const handle = await open(temp, 'w');
  try {
    await writeFully(handle, bytes, 0);
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(temp, { force: true });
    throw e;
  }
  await handle.close();
  await rename(temp, path);
  await fsyncDir(dirname(path));
}

/** Write all of `bytes` at `position`, looping over short writes. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write: wrote ${bytesWritten} bytes at ${position + done}`);
    done += bytesWritten;
  }
}

/** Error code of a Node system error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}
