/** A store node's Prometheus metrics: its Raft state and counters, read from the node at each scrape. */
import { MetricsRegistry } from '../../lib/metrics.js';
import type { ApiNode } from './common.js';

export interface StoreMetricsOptions {
  /** Raft messages the peer transport dropped (full or broken queues), as far as it counts them. */
  readonly droppedMessages: () => number;
  /** Add the default process metrics: a node that is its own process does; simulated nodes sharing one process do not. */
  readonly processMetrics: boolean;
  /** Requests this node's API has dispatched. */
  readonly requests: () => number;
}

export function storeMetrics(node: ApiNode, opts: StoreMetricsOptions): MetricsRegistry {
  const r = new MetricsRegistry({ processMetrics: opts.processMetrics });
  const m = node.metrics;
  r.gauge('store_raft_term', 'Current Raft term.', () => node.raftStatus().term);
  r.gauge('store_raft_is_leader', '1 if this node is the leader.', () => (node.raftStatus().role === 'leader' ? 1 : 0));
  r.gauge('store_raft_commit_index', 'Raft commit index.', () => node.raftStatus().commitIndex);
  r.gauge('store_raft_applied_index', 'Index applied to the KV state machine.', () => node.applied);
  r.gauge('store_kv_revision', 'KV store revision.', () => node.kvState.revision);
  r.gauge('store_kv_keys', 'Number of keys.', () => node.kvState.keyCount);
  r.gauge('store_kv_bytes', 'Key and value bytes of all live keys (what the quota limits).', () => node.kvState.storeBytes);
  r.gauge('store_quota_bytes', 'The store quota (--quota-bytes).', () => node.kvState.config.maxStoreBytes);
  r.gauge('store_alarm_nospace', '1 while the NOSPACE alarm is raised.', () => (node.kvState.alarms.length > 0 ? 1 : 0));
  r.counterFrom('store_http_requests_total', 'Requests dispatched to a route of the client API (forwards from followers included, watches once).', opts.requests);
  r.counterFrom('store_proposals_total', 'Writes proposed by this node as leader.', () => m.proposals);
  r.counterFrom('store_proposal_batches_total', 'Proposal batches (one append each).', () => m.proposalBatches);
  r.counterFrom('store_applied_entries_total', 'Log entries applied.', () => m.appliedEntries);
  r.counterFrom('store_ready_loops_total', 'Raft Ready batches the driver loop handled (each persisted with at most one WAL write and fsync); entries per batch is the applied entries over this.', () => m.readyLoops);
  r.counterFrom('store_snapshots_taken_total', 'Snapshots taken.', () => m.snapshotsTaken);
  r.counterFrom('store_snapshots_installed_total', 'Snapshots received from a leader.', () => m.snapshotsInstalled);
  r.counterFrom('store_snapshot_streams_pulled_total', 'Snapshot streams pulled from a leader into the on-disk engine.', () => node.snapshotStreamCounts.pulled);
  r.counterFrom('store_snapshot_stream_failures_total', 'Snapshot stream pulls that failed (the next snapshot message starts again).', () => node.snapshotStreamCounts.failed);
  r.gauge('store_snapshot_offers_open', 'Snapshot streams this node offers as leader, open now.', () => node.snapshotOffers?.size ?? 0);
  r.counterFrom('store_skipped_entries_total', 'Entries delivered again after a restart that the reopened on-disk state already held.', () => m.skippedEntries);
  r.gauge('store_watch_history_events', 'Events kept in the watch history (bounded by its event limit).', () => node.kvState.memoryUse.historyEvents);
  r.gauge('store_watch_history_bytes', 'Key and value bytes kept in the watch history (bounded by its byte limit).', () => node.kvState.memoryUse.historyBytes);
  r.gauge('store_sessions', 'Client sessions kept for exactly-once writes (bounded by their count limit).', () => node.kvState.memoryUse.sessions);
  r.gauge('store_session_bytes', 'Client id and cached result bytes of the sessions (bounded by their byte limit).', () => node.kvState.memoryUse.sessionBytes);
  r.counterFrom('store_leader_changes_total', 'Leader changes seen.', () => m.leaderChanges);
  r.counterFrom('store_transport_dropped_messages_total', 'Raft messages dropped by full or broken peer queues.', opts.droppedMessages);
  return r;
}
