/**
 * What bench:store drives (store-bench.ts): our cluster through the
 * product's HTTP client (lib/http-client.ts) and etcd through the `etcd3` client,
 * each behind the same Target interface: prepare, one operation per
 * workload, the leader followed between rows.
 */
import { PIPELINED, type HttpRequester } from '../../lib/http-client.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { etcdLeaderStatus, type EtcdCluster } from '../etcd.js';
import { LeanHttp, type LeanHttpSecurity, type Op } from '../loadgen.js';
import { progress } from '../output.js';

export type Workload = 'set' | 'cas' | 'get';
export const WORKLOADS: readonly Workload[] = ['set', 'cas', 'get'];
const GET_KEYS = 1000;

export interface Target {
  readonly name: string;
  /** Builds the operation for one phase; called once per row. */
  op(workload: Workload, clients: number, tag: string): Op;
  prepare(): Promise<void>;
  /** Before each row: send to the current leader (it may have moved). */
  beforeRow(): Promise<void>;
  /** After each row: a note when the leader changed during it (an election). */
  afterRow(): Promise<string | undefined>;
  close(): Promise<void>;
}

// ---- our store -----------------------------------------------------------

/** The leader's client URL, asking each endpoint's /v1/status until one names a leader (bounded). */
async function findLeader(status: HttpRequester, endpoints: readonly string[], timeoutMs = 20_000): Promise<{ url: string; term: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const ep of endpoints) {
      try {
        const res = await status.request({ method: 'GET', url: `${ep}/v1/status`, timeoutMs: 1_000 });
        const st = JSON.parse(res.text) as { role?: string; term?: number; leaderId?: string | null; members?: { id: string; clientUrl: string }[] };
        if (st.role === 'leader') return { url: ep, term: st.term ?? 0 };
      } catch {
        // next endpoint
      }
    }
    await keepAliveTimers.sleep(100);
  }
  throw new Error(`no leader among ${endpoints.join(', ')} within ${timeoutMs} ms`);
}

/** How a target of ours reaches its cluster: its name in the report, the status client, and TLS and token for the load. */
export interface OurAccess {
  readonly name: string;
  readonly status: HttpRequester;
  readonly security?: () => LeanHttpSecurity;
}

/**
 * The load's client for `clients` concurrent callers, with TLS and token when
 * the cluster is secure, pipelining as the store client does (PIPELINED): a
 * connection per 16 callers, as etcd's client multiplexes its calls on one
 * HTTP/2 connection.
 */
function loadClient(url: string, access: OurAccess, clients: number): LeanHttp {
  return new LeanHttp(url, Math.ceil(clients / PIPELINED.pipelining), access.security?.(), PIPELINED.pipelining);
}

/**
 * Worker `w`'s Request-Id for its `i`th CAS of a row: as the store client
 * does, each worker is a lane (one write in flight) of the row's client id.
 * A CAS sent twice would answer `succeeded: false` the second time; with a
 * Request-Id the store applies it at most once, so it may be pipelined. The
 * session each lane keeps is the store's real cost of that. A set is a PUT,
 * idempotent as it is.
 */
function requestIdOf(tag: string, w: number, i: number): string {
  return `${tag}.${w}:${i + 1}`;
}

export function ourTarget(endpoints: readonly string[], valueBytes: number, access: OurAccess): Target {
  let http: LeanHttp | undefined;
  let url = '';
  let term = 0;
  const value = 'v'.repeat(valueBytes);
  const putBody = JSON.stringify({ value });
  const casBody = JSON.stringify({ expected: null, value });
  const client = (): LeanHttp => {
    if (!http) throw new Error('not prepared');
    return http;
  };
  return {
    name: access.name,
    async prepare() {
      const leader = await findLeader(access.status, endpoints);
      url = leader.url;
      term = leader.term;
      http = loadClient(url, access, 50);
      const c = client();
      for (let i = 0; i < GET_KEYS; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => c.request('PUT', `/v1/kv/bench/get/${i + j}`, putBody)));
      }
    },
    async beforeRow() {
      const leader = await findLeader(access.status, endpoints);
      term = leader.term;
      if (leader.url !== url) {
        progress(`  ${access.name}: the leader is now ${leader.url}`, true);
        url = leader.url;
      }
    },
    async afterRow() {
      const leader = await findLeader(access.status, endpoints);
      return leader.term !== term ? `${access.name}: leader election during the row (term ${term} -> ${leader.term})` : undefined;
    },
    op(workload, clients, tag) {
      // Each row its own client, sized to its callers, on the leader beforeRow found.
      http?.close();
      http = loadClient(url, access, clients);
      const c = http;
      switch (workload) {
        case 'set':
          return async (w, i) => void (await c.request('PUT', `/v1/kv/bench/set/${w}-${i & 63}`, putBody));
        case 'cas':
          return async (w, i) => {
            const res = (await c.request('POST', `/v1/kv/bench/cas/${tag}/${w}/${i}/cas`, casBody, { requestId: requestIdOf(tag, w, i) })) as { succeeded?: boolean };
            if (res.succeeded !== true) throw new Error('cas on a fresh key did not succeed');
          };
        case 'get':
          return async (w, i) => void (await c.request('GET', `/v1/kv/bench/get/${(w * 7919 + i) % GET_KEYS}`));
      }
    },
    async close() {
      http?.close();
    },
  };
}

// ---- etcd ----------------------------------------------------------------

export async function etcdTarget(cluster: EtcdCluster, valueBytes: number): Promise<Target> {
  const { Etcd3 } = await import('etcd3');
  type Client = InstanceType<typeof Etcd3>;
  /** The leader: the member whose own id equals the leader id it reports. */
  const findEtcdLeader = (): Promise<{ url: string; term: number }> => etcdLeaderStatus(cluster.endpoints, 20_000);
  let leader = await findEtcdLeader();
  let client: Client = new Etcd3({ hosts: leader.url });
  const value = 'v'.repeat(valueBytes);
  return {
    name: 'etcd',
    async prepare() {
      for (let i = 0; i < GET_KEYS; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => client.put(`bench/get/${i + j}`).value(value).exec()));
      }
    },
    async beforeRow() {
      const now = await findEtcdLeader();
      if (now.url !== leader.url) {
        progress(`  the etcd leader is now ${now.url}`, true);
        client.close();
        client = new Etcd3({ hosts: now.url });
      }
      leader = now;
    },
    async afterRow() {
      const now = await findEtcdLeader();
      return now.term !== leader.term ? `etcd: leader election during the row (term ${leader.term} -> ${now.term})` : undefined;
    },
    op(workload, _clients, tag) {
      const c = client;
      switch (workload) {
        case 'set':
          return async (w, i) => void (await c.put(`bench/set/${w}-${i & 63}`).value(value).exec());
        case 'cas':
          return async (w, i) => {
            const key = `bench/cas/${tag}/${w}/${i}`;
            const res = await c.if(key, 'Create', '==', 0).then(c.put(key).value(value)).commit();
            if (!res.succeeded) throw new Error('etcd txn on a fresh key did not succeed');
          };
        case 'get':
          return async (w, i) => {
            const v = await c.get(`bench/get/${(w * 7919 + i) % GET_KEYS}`).string();
            if (v === null) throw new Error('etcd get: key missing');
          };
      }
    },
    async close() {
      client.close();
    },
  };
}
