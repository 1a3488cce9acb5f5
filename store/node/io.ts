/**
 * What a store node does to the outside world, as interfaces handed to
 * `StoreNode.create` (hashicorp/raft's log store, snapshot store and
 * transport): the real process composes the fsync'd WAL (wal.ts), snapshot
 * files (snapshot-file.ts) and the TCP transport (transport.ts); the
 * deterministic simulation (test/sim2pc) composes simulated disks and a
 * simulated network, and runs the same driver. memory-io.ts holds in-memory
 * log and snapshot stores with the WAL's contract, for tests and simulations.
 */
import type { HttpRequester } from '../../lib/http-client.js';
import type { Logger } from '../../lib/logger.js';
import type { Timers } from '../../lib/timers.js';
import type { Random } from '../../lib/random.js';
import type { KeyStore } from '../kv/keystore.js';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../raft/index.js';
import type { SnapshotMarker } from './wal-format.js';

/** The Raft log and hard state on stable storage. Every promise resolves only once the data is durable. */
export interface RaftLogStore {
  save(entries: readonly Entry[], hardState?: HardState): Promise<void>;
  /** Records that a snapshot at `meta` is durable; the log may then start after it. */
  markSnapshot(meta: SnapshotMarker): Promise<void>;
  /** Drops entries at or below `index` (a durable snapshot covers them); resolves with what it dropped. */
  releaseTo(index: number): Promise<number>;
  close(): Promise<void>;
}

/** Snapshots on stable storage: `save` resolves once the snapshot is durable. */
export interface SnapshotStore {
  save(snapshot: Snapshot): Promise<void>;
}

/**
 * Raft messages to peers: fire and forget (Raft tolerates loss, duplicates and
 * reordering). Only the outbound half: whoever receives a peer's messages hands
 * them to `StoreNode.receive`, and reports a peer it cannot reach to
 * `StoreNode.reportUnreachable`.
 */
export interface PeerTransport {
  send(messages: readonly Message[]): void;
  /** `peerAddress` is the member's `MemberAddress.peerAddress`, as the cluster configuration names it. */
  setPeer(id: NodeId, peerAddress: string): void;
  removePeer(id: NodeId): void;
  close(): Promise<void>;
}

/** A fresh on-disk key store beside the live one, that a snapshot stream is pulled into. */
export interface SideKeyStore {
  readonly keys: KeyStore;
  /**
   * Makes it the live store, synchronously (a restart opens it from now on);
   * `old`, the live store until now, is closed and removed in the background.
   */
  swapIn(old: KeyStore): void;
  /** Closes and removes it (a failed or unneeded pull). */
  discard(): Promise<void>;
}

export interface SnapshotStreamIo {
  /** Pulls offers from the leader's client URL. */
  readonly http: HttpRequester;
  openSide(): Promise<SideKeyStore>;
}

/**
 * Everything a StoreNode's driver touches outside its own memory. `T` is the
 * transport's concrete type, kept so the process's composition can still reach
 * its TCP transport's fault filter and counters through the node.
 */
export interface NodeIo<T extends PeerTransport = PeerTransport> {
  readonly log: RaftLogStore;
  readonly snapshots: SnapshotStore;
  readonly transport: T;
  readonly timers: Timers;
  readonly random: Random;
  /**
   * Where the KV state machine keeps its live keys (an on-disk KeyStore);
   * when absent, each state machine gets a fresh in-memory Keyspace. The
   * node clears it at start and on every snapshot install and refills it
   * from the snapshot and the log, then closes it in stop().
   */
  readonly keys?: KeyStore;
  /**
   * Snapshot streams (snapshot-offers.ts, snapshot-pull.ts) for an on-disk
   * key store: without them a node sends and installs whole JSON snapshots.
   */
  readonly streams?: SnapshotStreamIo;
  /** Where the node reports what an operator may want to know (a snapshot pulled); default: nowhere. */
  readonly logger?: Logger;
  /**
   * A failed fsync or a corrupt state: this replica can no longer be trusted
   * (a process exits; a simulated one crashes). The node has already stopped
   * itself, as StoreNode.crash does, before this is called.
   */
  fatal(error: unknown): void;
}
