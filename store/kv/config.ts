/**
 * Named limits of the KV state machine, each with its unit in its name.
 *
 * The config is part of the replicated behaviour: history trimming, session
 * eviction and the store quota decide what a command does, so every replica
 * (and every restore from a snapshot) must use the same values.
 */
import { assert } from '../../lib/assert.js';

export interface KvConfig {
  /** Longest key, in UTF-8 bytes (etcd's default request limit keeps keys small too). */
  readonly maxKeyBytes: number;
  /** Longest value, in UTF-8 bytes. */
  readonly maxValueBytes: number;
  /** Most compares, and most ops in each txn branch (etcd's --max-txn-ops). */
  readonly maxTxnOps: number;
  /** Most keys one range returns. */
  readonly maxRangeLimit: number;
  /**
   * Quota on the sum of key and value UTF-8 bytes of all live keys (etcd's
   * quota-backend-bytes; the node's --quota-bytes). A write applied past it
   * fails and raises the NOSPACE alarm (alarm.ts), which then refuses every
   * write that could grow the store until it is disarmed. Between
   * MIN_QUOTA_BYTES and MAX_QUOTA_BYTES.
   */
  readonly maxStoreBytes: number;
  /** Most live leases. */
  readonly maxLeases: number;
  /** Most events kept for watchers to resume from. */
  readonly watchHistoryEvents: number;
  /** Most key, value and previous value UTF-8 bytes kept in the watch history. */
  readonly watchHistoryBytes: number;
  /** Most client sessions kept; the least recently used is evicted first. */
  readonly maxSessions: number;
  /** A session unused for longer than this (by the commands' nowMs) expires. */
  readonly sessionIdleMs: number;
  /** Longest session client id, in UTF-8 bytes. */
  readonly maxClientIdBytes: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;

/**
 * Default and ceiling of the quota while a snapshot is one JSON document:
 * 134 MB of keys and values made a 219 MB snapshot (measured, issue 15), and
 * the file format wraps it in a second JSON string, so a much larger state
 * would pass V8's string limit (about 512 MiB) and the node could no longer
 * snapshot. Both become etcd's (2 GiB default, 8 GiB ceiling) once snapshots
 * are streamed from the on-disk engine.
 */
export const DEFAULT_QUOTA_BYTES = 128 * MIB;
/** Small enough that a test fills a store in seconds; big enough for the 2PC layout to start. */
export const MIN_QUOTA_BYTES = 1 * MIB;
export const MAX_QUOTA_BYTES = DEFAULT_QUOTA_BYTES;

export const DEFAULT_KV_CONFIG: KvConfig = Object.freeze({
  maxKeyBytes: 1 * KIB,
  maxValueBytes: 1 * MIB,
  maxTxnOps: 128,
  maxRangeLimit: 10_000,
  maxStoreBytes: DEFAULT_QUOTA_BYTES,
  maxLeases: 100_000,
  watchHistoryEvents: 100_000,
  watchHistoryBytes: 64 * MIB,
  maxSessions: 10_000,
  sessionIdleMs: 10 * 60 * 1000,
  maxClientIdBytes: 128,
});

/** Defaults overridden by `overrides`; asserts every limit is a positive safe integer. */
export function resolveKvConfig(overrides: Partial<KvConfig> = {}): KvConfig {
  const config: KvConfig = { ...DEFAULT_KV_CONFIG, ...overrides };
  for (const [name, value] of Object.entries(config)) {
    assert(
      Number.isSafeInteger(value) && (value as number) > 0,
      `KvConfig.${name} must be a positive safe integer, got ${String(value)}`,
    );
  }
  return Object.freeze(config);
}
