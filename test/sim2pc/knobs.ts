/**
 * The knobs of one simulated 2PC run, drawn per seed (swarm testing, as
 * test/sim/chaos.ts does for Raft): some seeds are calm, some are storms;
 * each seed arms a few crash points with a few chances, so over many seeds
 * every crash point fires at every rate, alone and together.
 *
 * Also the timing of every actor, scaled down from the real defaults
 * (coordinator/runtime/config.ts, participant.ts) so a run is a few simulated
 * seconds: the ratios that matter (hint timeout < deadline < recovery
 * interval < liveness bound) are kept.
 */
import type { SeededRandom } from '../../lib/random.js';
import type { RaftConfig } from '../../store/raft/index.js';
import { randomConfig } from '../sim/chaos.js';

export const MUTATIONS = ['vote-before-durable', 'decision-without-cas'] as const;
export type Mutation = (typeof MUTATIONS)[number];

/**
 * Bugs this simulation found in the runtimes (docs/SIM2PC.md, "Found"), all
 * fixed there since. The simulation's drivers do what the fixed runtimes do;
 * `--known-bug NAME` switches one fix off, behaving as the runtime did
 * before, to replay the bug.
 *
 *   stale-tx-event          coordinator: a watched `tx/{id}` older than the record the machine
 *                           adopted from its own CAS trips "frozen record changed" (runtime.ts)
 *   orphan-event            coordinator: a vote or decision recreated after GC by a late CAS
 *                           trips "vote changed" / "decision changed" (runtime.ts)
 *   prepare-before-restore  participant: after a restart the watch prepares new transactions
 *                           before recovery restored the in-doubt locks (participant.ts)
 *   stale-recovery-record   participant: recovery judges "excluded" by the log record read at start;
 *                           a "yes" voted meanwhile through the watch is missed, so a commit looks
 *                           like a commit without us: local abort possible, and no ack (recovery.ts)
 *   write-after-gc          coordinator (and finish.ts): a machine that has not seen the GC yet
 *                           fills "no" votes and an abort decision into the deleted keys of a
 *                           committed transaction (CAS create-if-absent succeeds on absent keys);
 *                           the workaround guards those writes by the record's presence
 *   unacked-abort           participant: a hinted abort of a transaction it has no record of
 *                           (frozen in while it was down; its vote filled "no") is ignored, so
 *                           the transaction is never acknowledged nor collected
 */
export const KNOWN_BUGS = ['stale-tx-event', 'orphan-event', 'prepare-before-restore', 'stale-recovery-record', 'write-after-gc', 'unacked-abort'] as const;
export type KnownBug = (typeof KNOWN_BUGS)[number];

/** The runtimes' failpoints (lib/failpoints.ts), each a place a process can die. */
export const FAILPOINTS = [
  'coordinator.afterBegin',
  'coordinator.afterFreeze',
  'coordinator.afterSomePrepares',
  'coordinator.afterSomeVotes',
  'coordinator.afterVotes',
  'coordinator.afterDecision',
  'participant.afterWork',
  'participant.afterPrepareDurable',
  'participant.afterVote',
  'participant.beforeApply',
  'participant.afterApply',
] as const;

export interface Knobs {
  readonly raft: Partial<RaftConfig>;
  /** Kept watch history: small values make watchers resynchronize after `compacted`. */
  readonly watchHistoryEvents: number;
  /** Automatic snapshots (store/node/node.ts), scaled down so restarts replay a short log. */
  readonly snapshotEveryEntries: number;
  readonly snapshotKeepEntries: number;
  /** Fault rates, per simulated second. */
  readonly storeCrashPerSec: number;
  readonly storeCrashMidReady: number;
  readonly compactPerSec: number;
  readonly transferPerSec: number;
  readonly partitionPerSec: number;
  readonly healPerSec: number;
  readonly procCrashPerSec: number;
  /** Restart delays. */
  readonly storeRestartMs: number;
  readonly procRestartMs: number;
  /** Chance, per hit, that each failpoint kills its process. */
  readonly failpoints: Readonly<Record<string, number>>;
  /** Upper bounds of the participants' fsync and service latencies. */
  readonly maxFsyncMs: number;
  readonly maxServiceMs: number;
  /** Transactions started per simulated second, and their timeouts. */
  readonly txPerSec: number;
  readonly minTxTimeoutMs: number;
  readonly maxTxTimeoutMs: number;
  readonly emptyTxChance: number;
  /** participant/watch.ts delays a watch-triggered prepare (0: the behaviour before that change). */
  readonly watchPrepareDelayMs: number;
}

export function drawKnobs(r: SeededRandom): Knobs {
  const failpoints: Record<string, number> = {};
  for (const name of FAILPOINTS) if (r.chance(0.35)) failpoints[name] = r.pick([0.03, 0.15, 0.5]);
  const minTxTimeoutMs = r.pick([150, 400, 800]);
  const raft = randomConfig(r);
  return {
    // One entry per message with one message in flight replicates a few hundred entries a second:
    // less than this workload writes, so every seed would end in a retry storm. Keep batches of 4+.
    raft: { ...raft, maxMsgEntries: Math.max(4, raft.maxMsgEntries ?? 4), maxInflightMsgs: Math.max(4, raft.maxInflightMsgs ?? 4) },
    watchHistoryEvents: r.pick([25, 100, 2_000, 2_000]),
    snapshotEveryEntries: r.pick([200, 500, 2_000]),
    snapshotKeepEntries: r.pick([0, 10, 100]),
    storeCrashPerSec: r.pick([0, 0.2, 0.6, 1.5]),
    storeCrashMidReady: r.pick([0, 0, 0.001, 0.005]),
    compactPerSec: r.pick([0.2, 1, 3]),
    transferPerSec: r.pick([0, 0.2, 1]),
    partitionPerSec: r.pick([0, 0.3, 1, 2]),
    healPerSec: r.pick([0.5, 2, 5]),
    procCrashPerSec: r.pick([0, 0.05, 0.2, 0.5]),
    storeRestartMs: r.pick([50, 300, 1_000]),
    procRestartMs: r.pick([20, 200, 800]),
    failpoints,
    maxFsyncMs: r.pick([1, 4, 15]),
    maxServiceMs: r.pick([0, 2, 8]),
    txPerSec: r.pick([4, 8, 15]),
    minTxTimeoutMs,
    maxTxTimeoutMs: minTxTimeoutMs + r.pick([200, 1_000]),
    emptyTxChance: r.pick([0, 0.05, 0.15]),
    watchPrepareDelayMs: r.pick([0, 40, 150]),
  };
}

/** Milliseconds per Raft tick. */
export const tickMs = 10;

export const timing = {
  store: { requestTimeoutMs: 300, deadlineMs: 2_000, maxAttempts: 10 },
  storeRetry: { maxAttempts: 6, baseMs: 10, maxMs: 300 },
  participantRetry: { maxAttempts: 6, baseMs: 10, maxMs: 300 },
  hintTimeoutMs: 200,
  prepareHintAttempts: 2,
  /** coordinator/runtime/effects.ts DECISION_HINT_DELAY_MS (1 s against a 10 s default deadline), scaled. */
  decisionHintDelayMs: 150,
  requestTimeoutMs: 1_500,
  commitGraceMs: 1_000,
  recoveryIntervalMs: 400,
  ackWaitMs: 1_000,
  pollMs: 40,
  participantRequestTimeoutMs: 1_500,
  helpGraceMs: 150,
  helpRetryMs: 100,
  clientCallTimeoutMs: 400,
  clientMaxCallAttempts: 6,
} as const;
