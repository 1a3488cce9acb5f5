/**
 * The real I/O of a store node process, composed behind the seams of io.ts:
 * the fsync'd WAL (wal.ts), snapshot files with pruning (snapshot-file.ts),
 * the TCP transport listening on cfg.host:cfg.peerPort (transport.ts; TLS
 * with cfg.peerTls), the
 * system's timers and randomness, and a fatal path that ends the process.
 * `startProcessNode` runs a node on it; the deterministic simulation
 * composes its own.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { systemRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import type { Message, NodeId, Snapshot, StorageState } from '../raft/index.js';
import { stderrLogger, type Logger } from '../../lib/logger.js';
import type { NodeConfig } from './config.js';
import type { NodeIo, SnapshotStore } from './io.js';
import { openLmdbKeys } from './lmdb-open.js';
import { tlsHttpClient } from '../../lib/tls.js';
import { loadNewestSnapshot, saveSnapshot } from './snapshot-file.js';
import { defaultTransportLimits, Transport, type TransportHandlers } from './transport.js';
import { WriteAheadLog } from './wal.js';
import { StoreNode } from './node.js';

/** Exit status after a fatal storage error (EX_SOFTWARE, sysexits.h): a supervisor should not blindly restart. */
export const FATAL_EXIT_CODE = 70;

export interface ProcessIo {
  readonly io: NodeIo<Transport>;
  /** What the data directory held: the newest intact snapshot and the WAL after it. */
  readonly stored: StorageState;
}

/**
 * Opens the data directory (snapshot first: the WAL replays only what follows
 * it) and starts listening for peers. `inbound` receives peers' messages; it
 * may drop them until the node exists (Raft tolerates loss).
 */
export async function openProcessIo(cfg: NodeConfig, inbound: TransportHandlers, log: Logger): Promise<ProcessIo> {
  const snapDir = join(cfg.dataDir, 'snap');
  await mkdir(snapDir, { recursive: true });
  const snapshot = await loadNewestSnapshot(snapDir);
  const { wal, state } = await WriteAheadLog.open(join(cfg.dataDir, 'wal'), {
    snapshotIndex: snapshot?.meta.index ?? 0,
    segmentSizeBytes: cfg.walSegmentSizeBytes,
  });
  if (state.repairedTail) {
    const t = state.repairedTail;
    log('warn', 'WAL: truncated a torn tail', { path: t.path, offset: t.offset, reason: t.reason });
  }
  // Snapshot pages are bounded by the leader (snapshot-offers.ts); the response limit leaves room for JSON escaping.
  const engine = cfg.engine === 'lmdb' ? await openLmdbKeys(join(cfg.dataDir, 'kv'), log, tlsHttpClient({ requestTimeoutMs: 30_000, maxResponseBytes: 64 << 20 })) : undefined;
  const keys = engine?.keys;
  let transport: Transport | undefined;
  try {
    // Reads the peer certificate files: an unreadable one fails here, with the storage closed again.
    transport = new Transport(cfg.id, inbound, defaultTransportLimits, { ...(cfg.peerTls === undefined ? {} : { tls: cfg.peerTls }), log });
    await transport.listen(cfg.host, cfg.peerPort);
  } catch (e) {
    await transport?.close();
    await wal.close();
    await keys?.close();
    throw e;
  }
  const io: NodeIo<Transport> = {
    log: wal,
    snapshots: snapshotFiles(snapDir),
    transport,
    timers: systemTimers,
    random: systemRandom,
    ...(keys === undefined ? {} : { keys }),
    ...(engine?.streams === undefined ? {} : { streams: engine.streams }),
    logger: log,
    fatal: (e) => exitFatal(log, e),
  };
  return { io, stored: { hardState: state.hardState, snapshot, entries: state.entries } };
}

/** Snapshot files in `dir`; each save prunes all but the newest few (DEFAULT_SNAPSHOT_RETAIN_COUNT). */
export function snapshotFiles(dir: string): SnapshotStore {
  return {
    async save(snapshot: Snapshot): Promise<void> {
      await saveSnapshot(dir, snapshot);
    },
  };
}

/** A failed fsync or a corrupt state: the replica can no longer be trusted, so the process ends now. */
function exitFatal(log: Logger, error: unknown): never {
  log('error', 'fatal: the replica can no longer be trusted; exiting', { error });
  process.exit(FATAL_EXIT_CODE);
}

/** A node on the process's real I/O: the data directory, the TCP transport, the system clock. */
export async function startProcessNode(cfg: NodeConfig, log: Logger = stderrLogger('store')): Promise<StoreNode> {
  let node: StoreNode | undefined;
  const inbound = { onMessages: (msgs: Message[]) => node?.receive(msgs), onUnreachable: (peer: NodeId) => node?.reportUnreachable(peer) };
  const startedMs = performance.now();
  const { io, stored } = await openProcessIo(cfg, inbound, log);
  const openedMs = performance.now();
  try {
    node = await StoreNode.create(cfg, io, stored);
    // What a restart cost, for operators (and the restart target of issue 15).
    log('info', 'storage opened', { walEntries: stored.entries.length, snapshotIndex: stored.snapshot?.meta.index ?? 0, stateAppliedIndex: node.kvState.appliedIndex, keys: node.kvState.keyCount, openMs: Math.round(openedMs - startedMs), stateMs: Math.round(performance.now() - openedMs) });
  } catch (e) {
    await io.transport.close();
    await io.log.close();
    await io.keys?.close();
    throw e;
  }
  return node;
}
