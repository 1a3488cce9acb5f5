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
import { readJson, type JsonReply, type Router } from '../../lib/http.js';
import type { NodeId } from '../raft/index.js';
import type { FaultFilter } from '../node/transport.js';
import type { StoreNode } from '../node/node.js';
import { checkBody, faultsBody } from './schemas.js';

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

export function addFaultRoutes(r: Router, node: StoreNode): void {
  const blocklist = new PeerBlocklist();
  node.transport.fault = blocklist;
  const state = (): JsonReply => ({ status: 200, body: { id: node.cfg.id, blockedPeers: blocklist.list() } });

  r.on('GET', '/v1/admin/faults', state);
  r.on('PUT', '/v1/admin/faults', async (ctx) => {
    const body = checkBody<{ blockedPeers: string[] }>(faultsBody, await readJson(ctx.req, node.cfg.maxBodyBytes));
    if (body.blockedPeers.includes(node.cfg.id)) throw new AppError('invalid_request', 400, 'a node cannot block itself');
    blocklist.set(body.blockedPeers);
    return state();
  });
  r.on('DELETE', '/v1/admin/faults', () => {
    blocklist.set([]);
    return state();
  });
}
