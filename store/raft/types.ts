/**
 * The Raft core's public data types. Everything here is plain data (JSON-safe)
 * so the node can persist it and send it over any transport unchanged.
 */

export type NodeId = string;

/** "No node": no leader known, no vote cast. */
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /**
   * Application data for `normal` entries (the empty string is the leader's
   * no-op, which applications must skip); a JSON `ConfChange` for `conf`.
   */
  readonly data: string;
}

export type ConfChangeOp = 'addVoter' | 'addLearner' | 'remove';

export interface ConfChange {
  readonly op: ConfChangeOp;
  readonly id: NodeId;
  /** Opaque to Raft; the store keeps the member's URL here. */
  readonly context?: string;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** State that must be on stable storage before any message that depends on it is sent (Figure 2). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** Membership as of `index`. */
  readonly conf: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's state machine image at `meta.index`. */
  readonly data: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';
