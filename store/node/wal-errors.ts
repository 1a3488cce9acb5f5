/**
 * The WAL's typed errors. Each has a literal code; all are fatal for the node
 * (status 500): the right reaction is to stop with the message, not retry.
 */
import { AppError } from '../../lib/errors.js';

/**
 * The WAL holds damage that is not a torn tail: the node must stop rather than
 * serve a log that may have lost acknowledged entries.
 */
export class WalCorruptError extends AppError {
  override readonly code = 'wal_corrupt' as const;
  constructor(
    readonly path: string,
    readonly offset: number,
    reason: string,
  ) {
    super('wal_corrupt', 500, `WAL corrupt: ${path} at byte offset ${offset}: ${reason}`, { path, offset });
    this.name = 'WalCorruptError';
  }
}

/**
 * The WAL no longer holds the entries right after the snapshot the caller
 * loaded (they were released after a newer snapshot, which is missing or
 * damaged). The node cannot rebuild its log and must not start.
 */
export class WalGapError extends AppError {
  override readonly code = 'wal_gap' as const;
  constructor(dir: string, snapshotIndex: number, firstIndex: number) {
    super(
      'wal_gap',
      500,
      `WAL ${dir} has no entries between snapshot index ${snapshotIndex} and index ${firstIndex}: ` +
        'load a newer snapshot (the WAL released the entries before its last snapshot marker)',
      { dir, snapshotIndex, firstIndex },
    );
    this.name = 'WalGapError';
  }
}

/** The WAL was closed; nothing more can be written. */
export class WalClosedError extends AppError {
  override readonly code = 'wal_closed' as const;
  constructor(dir: string) {
    super('wal_closed', 500, `WAL ${dir} is closed`, { dir });
    this.name = 'WalClosedError';
  }
}

/**
 * A write or fsync failed. The WAL refuses all further writes: after a failed
 * fsync the kernel may have dropped the dirty pages, so what is on disk is
 * unknown and only a restart (replay from disk) is safe.
 */
export class WalFailedError extends AppError {
  override readonly code = 'wal_failed' as const;
  constructor(dir: string, cause: unknown) {
    super('wal_failed', 500, `WAL ${dir} failed and accepts no more writes: ${String(cause)}`, { dir }, { cause });
    this.name = 'WalFailedError';
  }
}
