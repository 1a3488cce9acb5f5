/**
 * The snapshot image a node writes and installs: the KV state machine's JSON
 * and the cluster members' addresses, in one document.
 */
import type { KvConfig } from '../kv/index.js';
import type { MemberAddress, NodeConfig } from './config.js';

export interface SnapshotImage {
  readonly kv: string;
  readonly members: readonly MemberAddress[];
}

/** The KV snapshot is JSON already: embed it as is rather than escape megabytes into a string. */
export function encodeImage(kvJson: string, members: readonly MemberAddress[]): string {
  return `{"members":${JSON.stringify(members)},"kv":${kvJson}}`;
}

export function decodeImage(data: string): SnapshotImage {
  const raw = JSON.parse(data) as { kv: unknown; members: MemberAddress[] };
  return { members: raw.members, kv: typeof raw.kv === 'string' ? raw.kv : JSON.stringify(raw.kv) };
}

/**
 * The KV limits from the node config. Every replica, and every restore from a
 * snapshot, must use the same ones (store/kv/config.ts): a restore with the
 * defaults would silently change limits and the watch history's size.
 */
export function kvConfigOf(cfg: NodeConfig): Partial<KvConfig> {
  const base = { maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes, ...(cfg.quotaBytes === undefined ? {} : { maxStoreBytes: cfg.quotaBytes }) };
  return cfg.watchHistoryEvents === undefined ? base : { ...base, watchHistoryEvents: cfg.watchHistoryEvents };
}
