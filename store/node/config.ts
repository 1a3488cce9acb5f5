/** Configuration of one store node process, with named limits and their units. */
import { DEFAULT_QUOTA_BYTES, MAX_QUOTA_BYTES, MEMORY_ENGINE_MAX_QUOTA_BYTES } from '../kv/index.js';
import type { ServerTlsFiles } from '../../lib/tls.js';
import type { NodeId, RaftConfig } from '../raft/index.js';

/** Where a node keeps its state machine (the node's --engine). */
export const ENGINES = ['memory', 'lmdb'] as const;
export type Engine = (typeof ENGINES)[number];

/** The quota a node runs with: `requested`, or the engine's default; an error (why) when the engine cannot hold that much. */
export function quotaBytesFor(engine: Engine, requested: number | undefined): { bytes: number } | { error: string } {
  const max = engine === 'memory' ? MEMORY_ENGINE_MAX_QUOTA_BYTES : MAX_QUOTA_BYTES;
  const bytes = requested ?? (engine === 'memory' ? MEMORY_ENGINE_MAX_QUOTA_BYTES : DEFAULT_QUOTA_BYTES);
  if (bytes > max) return { error: `is at most ${max} bytes with --engine ${engine}${engine === 'memory' ? ' (its snapshots are one JSON document; use --engine lmdb)' : ''}` };
  return { bytes };
}

export interface MemberAddress {
  readonly id: NodeId;
  /** Where clients reach this member's HTTP API, e.g. http://127.0.0.1:2379. */
  readonly clientUrl: string;
  /** Where peers reach its Raft transport, as host:port. */
  readonly peerAddress: string;
}

export interface NodeConfig {
  readonly id: NodeId;
  readonly dataDir: string;
  readonly host: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** The founding members, used only when the data directory is empty. */
  readonly initialCluster: readonly MemberAddress[];
  /** Join an existing cluster instead of founding one (start empty, wait for the leader). */
  readonly join: boolean;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Take a snapshot and compact the log after this many applied entries. */
  readonly snapshotEveryEntries: number;
  /** Entries kept in memory behind a snapshot for followers slightly behind. */
  readonly snapshotKeepEntries: number;
  /**
   * With an on-disk engine (a snapshot there copies nothing): also snapshot
   * after this many bytes of applied entries, and keep at most this many
   * bytes of entries behind a snapshot, so the log in memory and the WAL a
   * restart reads stay bounded in bytes, not only in entries.
   */
  readonly snapshotEveryBytes: number;
  /** How long a write or linearizable read may wait for Raft before answering 504. */
  readonly requestTimeoutMs: number;
  /** Proposals waiting to be batched into the log, past which writes get 503 busy. */
  readonly maxPendingProposals: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxBodyBytes: number;
  readonly walSegmentSizeBytes: number;
  /** How often the leader checks lease deadlines; keys outlive their TTL by at most two of these (a new lease's clock starts at the first check). */
  readonly leaseCheckMs: number;
  /**
   * The store quota on key and value bytes (KvConfig.maxStoreBytes, etcd's
   * --quota-backend-bytes): past it the NOSPACE alarm refuses growing
   * writes. The same on every member, like every KV limit. See quotaBytesFor.
   */
  readonly quotaBytes?: number;
  /**
   * Where the KV state machine is kept: 'lmdb' (store/engine/, on disk in
   * `<dataDir>/kv` with its applied index; the process's default) or
   * 'memory' (the JS heap, rebuilt from the snapshot and WAL at each start;
   * the default of a node built on injected I/O, as the simulation's).
   */
  readonly engine?: Engine;
  /** Most events kept for watchers to resume from (KvConfig.watchHistoryEvents); the KV default when absent. */
  readonly watchHistoryEvents?: number;
  /**
   * TLS on the peer transport (--peer-cert-file, --peer-key-file,
   * --peer-trusted-ca-file, --peer-client-cert-auth); undefined: plain TCP.
   */
  readonly peerTls?: ServerTlsFiles;
  /** Raft's own limits (entries per message, in-flight window, uncommitted entries, pending reads, pre-vote, check quorum); store/raft's defaults when absent. */
  readonly raftTuning?: Partial<Omit<RaftConfig, 'id' | 'electionTicks' | 'heartbeatTicks'>>;
}

export const defaultNodeConfig = {
  host: '127.0.0.1',
  join: false,
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 2,
  snapshotEveryEntries: 20_000,
  snapshotKeepEntries: 5_000,
  snapshotEveryBytes: 64 << 20,
  requestTimeoutMs: 5_000,
  maxPendingProposals: 20_000,
  maxKeyBytes: 1024,
  maxValueBytes: 1 << 20,
  maxBodyBytes: 2 << 20,
  walSegmentSizeBytes: 64 << 20,
  leaseCheckMs: 100,
} as const;

/** Parses `n1=127.0.0.1:2379:2380,n2=...` (id=host:clientPort:peerPort). */
export function parseClusterSpec(spec: string): MemberAddress[] {
  return spec
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((item) => {
      const m = /^([A-Za-z0-9_.-]+)=([^:]+):(\d+):(\d+)$/.exec(item.trim());
      if (!m) throw new Error(`bad cluster member "${item}": want id=host:clientPort:peerPort`);
      const [, id, host, client, peer] = m as unknown as [string, string, string, string, string];
      return { id, clientUrl: `http://${host}:${client}`, peerAddress: `${host}:${peer}` };
    });
}

export function formatClusterSpec(members: readonly MemberAddress[]): string {
  return members
    .map((m) => {
      const client = new URL(m.clientUrl);
      const peerPort = m.peerAddress.split(':')[1];
      return `${m.id}=${client.hostname}:${client.port}:${peerPort}`;
    })
    .join(',');
}
