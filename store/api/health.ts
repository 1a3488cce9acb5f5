/**
 * Liveness and readiness of a store node.
 *
 * `/healthz`: the process answers (says nothing of a leader).
 * `/readyz`: the node can serve a linearizable read now, etcd's criterion
 * for its own health check: it knows a leader, and a ReadIndex round
 * (§6.4) confirms that leader with a quorum and finds this node has applied
 * everything committed before the read. A node that just restarted and is
 * replaying, or that sits in a minority partition, is not ready.
 */
import type { Router } from '../../lib/http.js';
import { errorText, notReady, READINESS_PROBE_TIMEOUT_MS, readinessStatus, ready, withinMs, type Readiness } from '../../lib/readiness.js';
import type { Timers } from '../../lib/timers.js';
import { ok, type ApiNode } from './common.js';

export function addHealthRoutes(r: Router, node: ApiNode, timers: Timers): void {
  r.on('GET', '/healthz', () => ok({ ok: true, id: node.cfg.id }));
  r.on('GET', '/readyz', async () => {
    const readiness = await storeReadiness(node, timers);
    return { status: readinessStatus(readiness), body: readiness };
  });
}

export async function storeReadiness(node: ApiNode, timers: Pick<Timers, 'after'>): Promise<Readiness> {
  const indexes = (): Record<string, unknown> => {
    const st = node.raftStatus();
    return { id: node.cfg.id, leaderId: st.leaderId === '' ? null : st.leaderId, commitIndex: st.commitIndex, appliedIndex: node.applied };
  };
  if (node.raftStatus().leaderId === '') return notReady('no leader known', indexes());
  try {
    await withinMs(timers, READINESS_PROBE_TIMEOUT_MS, node.linearizableBarrier());
  } catch (e) {
    return notReady(`a linearizable read is not possible yet: ${errorText(e)}`, indexes());
  }
  return ready(indexes());
}
