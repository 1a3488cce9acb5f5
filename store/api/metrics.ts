/** Prometheus text exposition of a node's counters and Raft state. */
import type { ApiNode } from './common.js';

/** `droppedMessages`: Raft messages the peer transport dropped (full or broken queues), as far as it counts them. */
export function renderMetrics(node: ApiNode, droppedMessages: number): string {
  const st = node.raftStatus();
  const m = node.metrics;
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number, type = 'gauge'): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  };
  gauge('store_raft_term', 'Current Raft term.', st.term);
  gauge('store_raft_is_leader', '1 if this node is the leader.', st.role === 'leader' ? 1 : 0);
  gauge('store_raft_commit_index', 'Raft commit index.', st.commitIndex);
  gauge('store_raft_applied_index', 'Index applied to the KV state machine.', node.applied);
  gauge('store_kv_revision', 'KV store revision.', node.kvState.revision);
  gauge('store_kv_keys', 'Number of keys.', node.kvState.keyCount);
  gauge('store_proposals_total', 'Writes proposed by this node as leader.', m.proposals, 'counter');
  gauge('store_proposal_batches_total', 'Proposal batches (one append each).', m.proposalBatches, 'counter');
  gauge('store_applied_entries_total', 'Log entries applied.', m.appliedEntries, 'counter');
  gauge('store_snapshots_taken_total', 'Snapshots taken.', m.snapshotsTaken, 'counter');
  gauge('store_snapshots_installed_total', 'Snapshots received from a leader.', m.snapshotsInstalled, 'counter');
  gauge('store_leader_changes_total', 'Leader changes seen.', m.leaderChanges, 'counter');
  gauge('store_transport_dropped_messages_total', 'Raft messages dropped by full or broken peer queues.', droppedMessages, 'counter');
  return lines.join('\n') + '\n';
}
