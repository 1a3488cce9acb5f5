/**
 * The knobs of a simulated run, drawn per seed (swarm testing): Raft limits
 * small enough that batching, pipelining windows and refusals all happen, the
 * chances of each fault per step, and the network weather. Some seeds are
 * calm, some are storms; a bug that needs one-entry messages and frequent
 * leader crashes is found by the seeds that draw both.
 */
import type { SeededRandom } from '../../lib/random.js';
import type { RaftConfig } from '../../store/raft/index.js';
import { CALM, type NetworkFaults } from './network.js';

/** Raft limits drawn per seed, small ones included, so batching, pipelining windows and refusals all happen. */
export function randomConfig(r: SeededRandom): Partial<RaftConfig> {
  const electionTicks = 5 + r.int(8);
  return {
    electionTicks,
    heartbeatTicks: r.chance(0.7) ? 1 : 2,
    checkQuorum: r.chance(0.8),
    preVote: r.chance(0.8),
    maxMsgEntries: r.pick([1, 1, 2, 4, 16, 512]),
    maxInflightMsgs: r.pick([1, 2, 4, 256]),
    maxUncommittedEntries: r.pick([4, 16, 100_000]),
    maxPendingReads: r.pick([2, 100]),
    // entryBytes is data length + 24: 40 bytes hands out one entry per Ready.
    maxApplyBytes: r.pick([40, 200, 8 << 20]),
  };
}

/** The chances of each fault per step, drawn per seed so some seeds are calm and some are storms. */
export interface Chaos {
  readonly crash: number;
  readonly crashMidReady: number;
  readonly restart: number;
  readonly partition: number;
  readonly heal: number;
  readonly propose: number;
  readonly read: number;
  readonly transfer: number;
  readonly compact: number;
  readonly campaign: number;
  readonly skipTick: number;
  /**
   * Targeted crashes, at the moments that matter most: a node that just won an
   * election, or a leader whose commit index just advanced, crashes inside its
   * next Ready. This is how Figure 8 of the paper arises: a leader commits and
   * dies before anyone hears of the commit or of its newer entries.
   */
  readonly crashNewLeader: number;
  readonly crashOnCommit: number;
  /** Single-server membership changes: add a fresh node (learner or voter), promote a learner, remove a member. */
  readonly reconfigure: number;
  /** Hold a Ready for a few steps before persisting it, while the node keeps stepping (asynchronous fsync). */
  readonly holdReady: number;
}

export function randomChaos(r: SeededRandom): Chaos {
  return {
    crash: r.pick([0, 0.002, 0.01, 0.03]),
    crashMidReady: r.pick([0, 0.002, 0.01, 0.03]),
    restart: r.pick([0.02, 0.1]),
    partition: r.pick([0.005, 0.02, 0.06]),
    heal: r.pick([0.02, 0.08, 0.2]),
    propose: r.pick([0.1, 0.3, 0.6]),
    read: r.pick([0.02, 0.1, 0.3]),
    transfer: r.pick([0, 0.005, 0.02]),
    compact: r.pick([0.01, 0.05, 0.15]),
    campaign: r.pick([0, 0.002]),
    skipTick: r.pick([0, 0.05]),
    crashNewLeader: r.pick([0, 0.05, 0.2]),
    crashOnCommit: r.pick([0, 0.02, 0.1]),
    reconfigure: r.pick([0, 0, 0.005, 0.02]),
    holdReady: r.pick([0, 0, 0.1, 0.4]),
  };
}

export function randomWeather(r: SeededRandom): NetworkFaults {
  switch (r.int(4)) {
    case 0:
      return CALM;
    case 1:
      return { dropChance: 0.05 + r.float() * 0.25, duplicateChance: 0.02, maxDelaySteps: 3, longDelayChance: 0, longDelaySteps: 0 };
    case 2:
      return { dropChance: 0.1, duplicateChance: 0.1, maxDelaySteps: 6, longDelayChance: 0.05, longDelaySteps: 30 };
    default:
      return { dropChance: 0, duplicateChance: 0.05, maxDelaySteps: 4, longDelayChance: 0.02, longDelaySteps: 15 };
  }
}
