/**
 * The snapshot image a node writes and installs: the cluster members'
 * addresses and either the KV state machine's JSON (the in-memory engine) or
 * nothing of the KV state (`external`: an on-disk engine holds it, and a
 * follower is sent it as a stream, named by `stream`).
 */
import type { KvConfig } from '../kv/index.js';
import type { MemberAddress, NodeConfig } from './config.js';
import type { StreamDescriptor } from './snapshot-offers.js';

export interface SnapshotImage {
  /** The KV JSON; undefined when the state is external. */
  readonly kv: string | undefined;
  readonly members: readonly MemberAddress[];
  /** In a snapshot message of an on-disk leader: where to pull the state from. */
  readonly stream?: StreamDescriptor;
}

/** An image whose KV state is in the on-disk engine, not in the snapshot. */
export function encodeExternalImage(members: readonly MemberAddress[], stream?: StreamDescriptor): string {
  return JSON.stringify({ members, external: true, ...(stream === undefined ? {} : { stream }) });
}

/** The KV snapshot is JSON already: embed it as is rather than escape megabytes into a string. */
export function encodeImage(kvJson: string, members: readonly MemberAddress[]): string {
  return `{"members":${JSON.stringify(members)},"kv":${kvJson}}`;
}

export function decodeImage(data: string): SnapshotImage {
  const raw = JSON.parse(data) as { kv?: unknown; members: MemberAddress[]; external?: boolean; stream?: StreamDescriptor };
  if (raw.external === true) return raw.stream === undefined ? { members: raw.members, kv: undefined } : { members: raw.members, kv: undefined, stream: raw.stream };
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
