/**
 * Network fault injection for chaos runs: `PUT /v1/admin/faults` with
 * `{"blockedPeers": ["n2"]}` makes this node drop every Raft message to and
 * from those peers (both directions, in its transport), which is how the chaos
 * runner partitions a cluster on one loopback interface. `DELETE` heals.
 *
 * The routes exist only when the process was started with RAFT2PC_FAULTS=1
 * (lib/faults.ts): a production node never exposes a switch that cuts it off
 * its peers.
 */
import { AppError } from '../../lib/errors.js';
import type { JsonReply, Router } from '../../lib/http.js';
import type { NodeId } from '../raft/index.js';
import type { FaultFilter } from '../node/transport.js';
import { checkBody, faultsBody } from './schemas.js';

/** Where a transport takes its fault filter (the TCP transport's `fault` field). */
export interface FaultSlot {
  fault: FaultFilter | undefined;
}

/** Drops messages whose sender or receiver is in the set. */
export class PeerBlocklist implements FaultFilter {
  private peers = new Set<NodeId>();

  set(peers: readonly NodeId[]): void {
    this.peers = new Set(peers);
  }

  list(): NodeId[] {
    return [...this.peers].sort();
  }

  blocked(from: NodeId, to: NodeId): boolean {
    return this.peers.has(from) || this.peers.has(to);
  }
}

export function addFaultRoutes(r: Router, selfId: NodeId, slot: FaultSlot): void {
  const blocklist = new PeerBlocklist();
  slot.fault = blocklist;
  const state = (): JsonReply => ({ status: 200, body: { id: selfId, blockedPeers: blocklist.list() } });

  r.on('GET', '/v1/admin/faults', state);
  r.on(
    'PUT',
    '/v1/admin/faults',
    (req) => {
      const body = checkBody<{ blockedPeers: string[] }>(faultsBody, req.body);
      if (body.blockedPeers.includes(selfId)) throw new AppError('invalid_request', 400, 'a node cannot block itself');
      blocklist.set(body.blockedPeers);
      return state();
    },
    { body: true },
  );
  r.on('DELETE', '/v1/admin/faults', () => {
    blocklist.set([]);
    return state();
  });
}
