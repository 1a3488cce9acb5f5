/**
 * What a store node is built from at start and on a snapshot install: the
 * Raft storage (bootstrapped when empty) and the KV state machine on its key
 * store (io.ts `NodeIo.keys`), reopened from an on-disk store when it can be.
 */
import { KvStateMachine } from '../kv/index.js';
import type { KeyStore } from '../kv/keystore.js';
import { bootstrapStorage, type StorageState } from '../raft/index.js';
import type { MemberAddress, NodeConfig } from './config.js';
import { kvConfigOf, type SnapshotImage } from './image.js';
import { assert } from '../../lib/assert.js';
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

/** Where a node's KV state machine comes from at start. */
export interface StartingKv {
  readonly kv: KvStateMachine;
  /** The members as the on-disk store recorded them, when the machine was reopened from it. */
  readonly members?: readonly MemberAddress[];
}

/**
 * At start: the state machine an on-disk key store holds, when it reaches at
 * least the snapshot's index (the node then skips the log entries it already
 * applied); otherwise the one the snapshot's KV JSON describes (or an empty one).
 */
export function startingKv(image: SnapshotImage | undefined, snapshotIndex: number, cfg: NodeConfig, keys: KeyStore | undefined): StartingKv {
  const reopened = keys === undefined ? undefined : KvStateMachine.reopen(kvConfigOf(cfg), keys);
  if (reopened === undefined || reopened.appliedIndex < snapshotIndex) {
    // The snapshot holds no KV state (it is the engine's) and the engine is behind it: lost, not rebuildable here.
    assert(image?.kv !== undefined || image === undefined, `the on-disk state is behind snapshot ${snapshotIndex} and the snapshot does not hold it: remove this member, delete its data directory and add it again (docs/API.md, "The store's engine")`);
    return { kv: buildKv(image?.kv, cfg, keys) };
  }
  const members = reopened.reopenedAux[MEMBERS_AUX];
  return members === undefined ? { kv: reopened } : { kv: reopened, members: JSON.parse(members) as MemberAddress[] };
}

/** The aux entry (KvStateMachine.setAux) where a node keeps its members with the state. */
export const MEMBERS_AUX = 'members';

/**
 * The KV state machine of a snapshot's KV JSON, or an empty one. With an
 * on-disk key store, whatever it held is cleared first, in the restore's
 * batch (a snapshot install replaces the whole state).
 */
export function buildKv(kvJson: string | undefined, cfg: NodeConfig, keys: KeyStore | undefined): KvStateMachine {
  if (kvJson !== undefined) return KvStateMachine.restore(kvJson, kvConfigOf(cfg), keys);
  keys?.clear();
  return new KvStateMachine(kvConfigOf(cfg), keys);
}
