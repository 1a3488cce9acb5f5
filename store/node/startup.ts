/**
 * What a store node is built from at start and on a snapshot install: the
 * Raft storage (bootstrapped when empty) and the KV state machine on its key
 * store (io.ts `NodeIo.keys`).
 */
import { KvStateMachine } from '../kv/index.js';
import type { KeyStore } from '../kv/keystore.js';
import { bootstrapStorage, type StorageState } from '../raft/index.js';
import type { NodeConfig } from './config.js';
import { kvConfigOf } from './image.js';
import type { RaftLogStore } from './io.js';

/**
 * The storage a node starts from: what is stored, or, when nothing is and
 * this node founds the cluster, the founding configuration, made durable
 * before Raft sees it (every founder writes the same entries at term 1).
 */
export async function bootstrapIfEmpty(cfg: NodeConfig, log: RaftLogStore, stored: StorageState): Promise<StorageState> {
  const empty = stored.snapshot === undefined && stored.entries.length === 0 && stored.hardState.term === 0;
  if (!empty || cfg.join) return stored;
  const founding = bootstrapStorage(cfg.initialCluster.map((m) => ({ id: m.id, context: JSON.stringify(m) })));
  await log.save(founding.entries, founding.hardState);
  return founding;
}

/**
 * The KV state machine of a snapshot's KV JSON, or an empty one. With an
 * on-disk key store, whatever it held is cleared first (in the restore's
 * batch): this first step rebuilds the keys from the snapshot and the log
 * replayed after it at every start and install, exactly as the in-memory
 * store does, rather than trusting the store's own applied index.
 */
export function buildKv(kvJson: string | undefined, cfg: NodeConfig, keys: KeyStore | undefined): KvStateMachine {
  if (kvJson !== undefined) return KvStateMachine.restore(kvJson, kvConfigOf(cfg), keys);
  keys?.clear();
  return new KvStateMachine(kvConfigOf(cfg), keys);
}
