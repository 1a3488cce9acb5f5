/**
 * The knobs of one run, drawn per seed (swarm testing, as test/sim/chaos.ts
 * does for Raft): some seeds are calm, some storms, and each arms a few crash
 * points at a few rates. Also every actor's timing, scaled down from the real
 * defaults so a run is a few simulated seconds, keeping the ratios that
 * matter (hint timeout < deadline < recovery interval < liveness bound).
 * And the bugs `--mutation` plants, each at a seam the real runtimes are
 * built on, never in a copy of their logic.
 */
import type { SeededRandom } from '../../lib/random.js';
import { FAILPOINT_NAMES, type FailpointName } from '../../lib/failpoints.js';
import { parseKey } from '../../coordinator/protocol/index.js';
import type { CoordinatorConfig } from '../../coordinator/runtime/index.js';
import type { TxCasResult, TxGuard, TxStore, TxWrite, WriteOptions } from '../../coordinator/txstore/index.js';
import type { ParticipantConfig } from '../../participant/config.js';
import { defaultNodeConfig, type NodeConfig } from '../../store/node/config.js';
import { randomConfig } from '../sim/chaos.js';

/** One seed's knobs (fault rates per simulated second, restart delays, latencies, sizes). */
export type Knobs = ReturnType<typeof drawKnobs>;

export function drawKnobs(r: SeededRandom) {
  const failpoints: Partial<Record<FailpointName, number>> = {};
  for (const name of FAILPOINT_NAMES) if (r.chance(0.35)) failpoints[name] = r.pick([0.03, 0.15, 0.5]);
  const minTxTimeoutMs = r.pick([150, 400, 800]);
  const raft = randomConfig(r);
  return {
    // One entry per message with one message in flight replicates a few hundred entries a second:
    // less than this workload writes, so every seed would end in a retry storm. Keep batches of 4+.
    raft: { ...raft, maxMsgEntries: Math.max(4, raft.maxMsgEntries ?? 4), maxInflightMsgs: Math.max(4, raft.maxInflightMsgs ?? 4) },
    /** Kept watch history: small values make watchers resynchronize after `compacted`. */
    watchHistoryEvents: r.pick([25, 100, 2_000, 2_000]),
    /** Automatic snapshots, scaled down so restarts replay a short log and followers install snapshots. */
    snapshotEveryEntries: r.pick([200, 500, 2_000]),
    snapshotKeepEntries: r.pick([0, 10, 100]),
    storeCrashPerSec: r.pick([0, 0.2, 0.6, 1.5]),
    /** Chance that a store node dies inside an fsync. */
    storeCrashMidReady: r.pick([0, 0, 0.001, 0.005]),
    transferPerSec: r.pick([0, 0.2, 1]),
    partitionPerSec: r.pick([0, 0.3, 1, 2]),
    healPerSec: r.pick([0.5, 2, 5]),
    procCrashPerSec: r.pick([0, 0.05, 0.2, 0.5]),
    storeRestartMs: r.pick([50, 300, 1_000]),
    procRestartMs: r.pick([20, 200, 800]),
    /** Chance, per hit, that each armed failpoint kills its process. */
    failpoints: failpoints as Readonly<Partial<Record<FailpointName, number>>>,
    maxFsyncMs: r.pick([1, 4, 15]),
    maxServiceMs: r.pick([0, 2, 8]),
    /**
     * Most a restarted participant's store reads wait before they go, until it
     * is ready (a store slow to answer its recovery): decisions the watch
     * brings then reach in-doubt transactions before recovery does
     * (docs/CHAOS.md, finding 6).
     */
    maxRecoveryReadDelayMs: r.pick([0, 0, 60, 300]),
    txPerSec: r.pick([4, 8, 15]),
    minTxTimeoutMs,
    maxTxTimeoutMs: minTxTimeoutMs + r.pick([200, 1_000]),
    emptyTxChance: r.pick([0, 0.05, 0.15]),
    watchPrepareDelayMs: r.pick([0, 40, 150]),
    /** Short retention: the participant log compacts (and rewrites its file) during the run. */
    logRetentionMs: r.pick([500, 600_000]),
    logRewriteFloorBytes: r.pick([1_024, 1 << 20]),
    /** A small budget: compaction drops acknowledged records by bytes, not only by age. */
    logMaxRetainedBytes: r.pick([2_048, 8 << 20]),
    /** Few live transactions per coordinator: eviction and reloading happen. */
    maxLiveTxs: r.pick([4, 64, 4_096]),
    /** Group commit of each process's store writes (coordinator/txstore/batching.ts): off, or this many batches in flight. */
    storeBatchInflight: r.pick([0, 1, 2]),
    /** Prepare calls in flight per participant: 0 leaves every prepare to the participants' watches. */
    maxPrepareHintsPerParticipant: r.pick([0, 1, 2, 512]),
  };
}

/** Milliseconds per Raft tick. */
export const tickMs = 10;

export const timing = {
  store: { requestTimeoutMs: 300, deadlineMs: 2_000, maxAttempts: 10 },
  clientCallTimeoutMs: 400,
  clientMaxCallAttempts: 6,
} as const;

/** Store write retries of coordinators and participants, scaled down alike. */
const storeRetries = { storeWriteMaxAttempts: 6, storeBackoffBaseMs: 10, storeBackoffMaxMs: 300 } as const;

/** The coordinators' configuration: coordinator/runtime/config.ts's, scaled down. */
export function coordinatorConfig(k: Knobs): Omit<Partial<CoordinatorConfig>, 'id'> {
  return {
    minTimeoutMs: 100,
    ...storeRetries,
    hintTimeoutMs: 200,
    prepareHintAttempts: 2,
    requestTimeoutMs: 1_500,
    commitGraceMs: 1_000,
    recoveryIntervalMs: 400,
    decisionHintDelayMs: 150,
    ackWaitMs: 1_000,
    maxLiveTxs: k.maxLiveTxs,
    maxPrepareHintsPerParticipant: k.maxPrepareHintsPerParticipant,
  };
}

/** The participants' configuration: participant/config.ts's, scaled down. */
export function participantConfig(k: Knobs): Partial<ParticipantConfig> {
  return {
    requestTimeoutMs: 1_500,
    ...storeRetries,
    helpGraceMs: 150,
    helpRetryIntervalMs: 100,
    watchPrepareDelayMs: k.watchPrepareDelayMs,
    logRetentionMs: k.logRetentionMs,
    logCompactIntervalMs: 500,
    workCheckMs: 300,
    logRewriteFloorBytes: k.logRewriteFloorBytes,
    logMaxRetainedBytes: k.logMaxRetainedBytes,
  };
}

/** One store node's configuration: store/node/config.ts's, with the seed's Raft limits and 10 ms ticks. */
export function nodeConfig(id: string, ids: readonly string[], k: Knobs): NodeConfig {
  const { electionTicks, heartbeatTicks, ...raftTuning } = k.raft;
  return {
    ...defaultNodeConfig,
    id,
    dataDir: `/sim/${id}`,
    clientPort: 0,
    peerPort: 0,
    initialCluster: ids.map((m) => ({ id: m, clientUrl: `http://${m}`, peerAddress: m })),
    tickMs,
    electionTicks: electionTicks ?? 10,
    heartbeatTicks: heartbeatTicks ?? 1,
    snapshotEveryEntries: k.snapshotEveryEntries,
    snapshotKeepEntries: k.snapshotKeepEntries,
    requestTimeoutMs: 1_000,
    leaseCheckMs: 50,
    watchHistoryEvents: k.watchHistoryEvents,
    raftTuning,
  };
}

/** Blind puts of decision keys (under coordinators) or of vote keys (everywhere); fsyncs that answer before the data is durable (disk.ts). */
export const MUTATIONS = ['decision-without-cas', 'vote-overwrites', 'fsync-lies'] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** A TxStore whose creates of one kind of 2PC key are blind puts; every other call goes through. */
function blindPutStore(inner: TxStore, kind: 'decision' | 'vote'): TxStore {
  const blind = (key: string): boolean => parseKey(key)?.kind === kind;
  const overrides: Partial<TxStore> = {
    casCreate: async (key: string, value: string, opts?: WriteOptions): Promise<TxCasResult> => {
      if (!blind(key)) return inner.casCreate(key, value, opts);
      const r = await inner.put(key, value, opts);
      return { succeeded: true, previous: r.previous, revision: r.revision };
    },
    // Every guard dropped: the write lands whatever the store holds.
    txn: (guards: readonly TxGuard[], writes: readonly TxWrite[]) => inner.txn(writes.some((w) => w.type === 'put' && blind(w.key)) ? [] : guards, writes),
  };
  return new Proxy(inner, {
    get: (target, prop, receiver): unknown => {
      const own = overrides[prop as keyof TxStore];
      if (own !== undefined) return own;
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The store a process of `role` is given under `mutation`. */
export function mutatedStore(store: TxStore, role: 'coordinator' | 'participant', mutation: Mutation | undefined): TxStore {
  if (mutation === 'decision-without-cas' && role === 'coordinator') return blindPutStore(store, 'decision');
  if (mutation === 'vote-overwrites') return blindPutStore(store, 'vote');
  return store;
}
