/** Configuration of one Raft peer, validated once at start with explicit limits. */
import type { NodeId } from './types.js';

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks a follower waits without hearing from a leader before it campaigns; randomized in [t, 2t). */
  readonly electionTicks: number;
  /** Ticks between leader heartbeats; must be well below electionTicks. */
  readonly heartbeatTicks: number;
  /** Leader steps down if it has not heard from a majority within an election timeout. */
  readonly checkQuorum: boolean;
  /** Run a pre-election that does not bump terms, so a rejoining node cannot disrupt (§9.6). */
  readonly preVote: boolean;
  /** Cap on the byte size of entries in one append message (one entry always fits). */
  readonly maxMsgBytes: number;
  /** Cap on the number of entries in one append message. */
  readonly maxMsgEntries: number;
  /** Cap on append messages in flight to one follower (pipelining window). */
  readonly maxInflightMsgs: number;
  /**
   * Cap on entry bytes in flight to one follower (etcd's MaxInflightBytes).
   * A follower far behind would otherwise be sent maxInflightMsgs full
   * messages at once (256 MiB), which the single-threaded leader encodes in
   * one turn, long enough to miss its heartbeats.
   */
  readonly maxInflightBytes: number;
  /** Proposals are refused with `busy` past this many uncommitted entries. */
  readonly maxUncommittedEntries: number;
  /** ReadIndex requests waiting for confirmation, past which reads are refused with `busy`. */
  readonly maxPendingReads: number;
  /** Cap on the byte size of committed entries handed out in one Ready. */
  readonly maxApplyBytes: number;
}

export const defaultRaftConfig: Omit<RaftConfig, 'id'> = {
  electionTicks: 10,
  heartbeatTicks: 1,
  checkQuorum: true,
  preVote: true,
  maxMsgBytes: 1 << 20,
  maxMsgEntries: 512,
  maxInflightMsgs: 256,
  maxInflightBytes: 8 << 20,
  maxUncommittedEntries: 100_000,
  maxPendingReads: 10_000,
  maxApplyBytes: 8 << 20,
};

export class RaftConfigError extends Error {
  readonly code = 'raft_config_invalid';
}

export function validateRaftConfig(cfg: RaftConfig): RaftConfig {
  const positive: (keyof RaftConfig)[] = [
    'electionTicks',
    'heartbeatTicks',
    'maxMsgBytes',
    'maxMsgEntries',
    'maxInflightMsgs',
    'maxInflightBytes',
    'maxUncommittedEntries',
    'maxPendingReads',
    'maxApplyBytes',
  ];
  for (const key of positive) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new RaftConfigError(`${key} must be a positive integer, got ${String(v)}`);
    }
  }
  if (cfg.id === '') throw new RaftConfigError('id must not be empty');
  if (cfg.electionTicks <= cfg.heartbeatTicks) {
    throw new RaftConfigError('electionTicks must be greater than heartbeatTicks');
  }
  return cfg;
}
