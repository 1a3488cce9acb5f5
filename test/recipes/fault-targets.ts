/**
 * What the nemesis does faults to: a store cluster as a few operations on
 * its members by id. One adapter for the built-in cluster (StoreCluster, with
 * partitions through the RAFT2PC_FAULTS=1 routes), one for the recipes'
 * etcd cluster (no partition switch: etcd has none).
 *
 * Only members on odd ports are killed. The test ports (28500-28999) lie
 * below Linux's default ephemeral range (32768 or 40000 up), but where a
 * machine's range covers them, Linux gives connect() even ports first: a peer
 * reconnecting to a dead member's even port could be handed that very port
 * as its source (a TCP self-connect), which then holds it, and the member
 * could never start again.
 */
import type { StoreCluster } from '../support/store-cluster.js';
import type { RecipesEtcd } from './etcd-cluster.js';

export interface FaultTarget {
  readonly ids: readonly string[];
  pid(id: string): number | undefined;
  /** Whether `kill` may be used on it (odd ports only). */
  killable(id: string): boolean;
  kill(id: string): Promise<void>;
  /** Starts it again and waits until it answers. */
  restart(id: string): Promise<void>;
  /** Cuts it from its peers until `heal`; undefined when the store has no such switch. */
  readonly partition?: (id: string) => Promise<void>;
  readonly heal?: (id: string) => Promise<void>;
  /** Resolves once the cluster is whole: every member up and one leader. */
  whole(): Promise<void>;
}

const HEAL_TIMEOUT_MS = 30_000;

function odd(...ports: (string | number | undefined)[]): boolean {
  return ports.every((p) => Number(p) % 2 === 1);
}

async function faultsRoute(cluster: StoreCluster, id: string, method: 'PUT' | 'DELETE', body?: unknown): Promise<void> {
  const res = await fetch(`${cluster.url(id)}/v1/admin/faults`, {
    method,
    signal: AbortSignal.timeout(5_000),
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${id} refused ${method} /v1/admin/faults: ${res.status}`);
}

export function builtinTarget(cluster: StoreCluster): FaultTarget {
  return {
    ids: cluster.ids,
    pid: (id) => cluster.pid(id),
    killable: (id) => odd(new URL(cluster.proc(id).member.clientUrl).port, cluster.proc(id).member.peerAddress.split(':')[1]),
    kill: (id) => cluster.kill9(id),
    restart: (id) => cluster.restart(id, HEAL_TIMEOUT_MS),
    partition: (id) => faultsRoute(cluster, id, 'PUT', { blockedPeers: cluster.ids.filter((x) => x !== id) }),
    heal: (id) => faultsRoute(cluster, id, 'DELETE'),
    whole: async () => void (await cluster.waitLeader(cluster.ids, HEAL_TIMEOUT_MS)),
  };
}

export function etcdTarget(etcd: RecipesEtcd): FaultTarget {
  const member = (id: string) => {
    const m = etcd.members.find((x) => x.name === id);
    if (m === undefined) throw new Error(`no etcd member ${id}`);
    return m;
  };
  return {
    ids: etcd.members.map((m) => m.name),
    pid: (id) => member(id).pid,
    killable: (id) => odd(new URL(member(id).clientUrl).port, new URL(member(id).peerUrl).port),
    kill: (id) => member(id).kill9(),
    restart: async (id) => {
      member(id).start();
      await etcd.waitHealthy(HEAL_TIMEOUT_MS);
    },
    whole: () => etcd.waitHealthy(HEAL_TIMEOUT_MS),
  };
}
