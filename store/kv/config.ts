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
  /** Most client id and cached result bytes (as JSON) kept in sessions; the least recently used is evicted first. */
  readonly maxSessionBytes: number;
  /** A session unused for longer than this (by the commands' nowMs) expires. */
  readonly sessionIdleMs: number;
  /** Longest session client id, in UTF-8 bytes. */
  readonly maxClientIdBytes: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;

const GIB = 1024 * MIB;

/** The store's default quota on an on-disk engine: etcd's default (--quota-backend-bytes). */
export const DEFAULT_QUOTA_BYTES = 2 * GIB;
/** The largest quota: etcd's suggested maximum. */
export const MAX_QUOTA_BYTES = 8 * GIB;
/**
 * Default and ceiling of the quota on the in-memory engine: its snapshots
 * are one JSON document, and 134 MB of keys and values made a 219 MB one
 * (measured, issue 15); much more would pass V8's string limit (about
 * 512 MiB). The on-disk engine streams its snapshots and has no such limit.
 */
export const MEMORY_ENGINE_MAX_QUOTA_BYTES = 128 * MIB;
/** Small enough that a test fills a store in seconds; big enough for the 2PC layout to start. */
export const MIN_QUOTA_BYTES = 1 * MIB;

export const DEFAULT_KV_CONFIG: KvConfig = Object.freeze({
  maxKeyBytes: 1 * KIB,
  maxValueBytes: 1 * MIB,
  maxTxnOps: 128,
  maxRangeLimit: 10_000,
  maxStoreBytes: MEMORY_ENGINE_MAX_QUOTA_BYTES,
  maxLeases: 100_000,
  watchHistoryEvents: 100_000,
  watchHistoryBytes: 64 * MIB,
  maxSessions: 10_000,
  maxSessionBytes: 64 * MIB,
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
