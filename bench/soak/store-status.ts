/**
 * What the soak asks the store, beside the load: its term and leader (every
 * second, to count elections) and its size (at the end of each interval).
 *
 * The built-in store: each node's GET /v1/status (term, leaderId); the
 * leader's /metrics for the key count (store_kv_keys) and, where the node
 * exports one, the key and value bytes (STORE_BYTES_METRICS); the node's data
 * folder (WAL and snapshots) summed on disk.
 * etcd: each member's POST /v3/maintenance/status (raftTerm, leader, dbSize:
 * its bbolt file), a count-only range over every key.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseMetrics } from '../../lib/metrics.js';

export interface StoreStatus {
  /** The highest term any member reported; null when none answered. */
  readonly term: number | null;
  /** The leader as the members at that term name it. */
  readonly leader: string | null;
  /** Members that answered. */
  readonly reachable: number;
}

export interface StoreSize {
  readonly keys: number | null;
  /** Key and value bytes as the store counts them; null where it does not say. */
  readonly bytes: number | null;
  /** On disk: the built-in node's data folder, etcd's database file. */
  readonly diskBytes: number | null;
}

export interface StoreObserver {
  status(): Promise<StoreStatus>;
  size(): Promise<StoreSize>;
}

/** Metric names a node may export its key and value bytes under; the first found is used. */
export const STORE_BYTES_METRICS = ['store_kv_bytes', 'store_kv_size_bytes', 'store_db_size_bytes'];

const TIMEOUT_MS = 2_000;

async function getJson(url: string, body?: unknown): Promise<unknown> {
  const init: RequestInit = body === undefined ? {} : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** Bytes of every file under `dir`, recursively; null when it cannot be read. */
export function diskUsage(dir: string): number | null {
  try {
    let total = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) total += diskUsage(p) ?? 0;
      else if (e.isFile()) total += statSync(p).size;
    }
    return total;
  } catch {
    return null;
  }
}

interface MemberStatus {
  readonly id: string;
  readonly term: number;
  readonly leader: string | null;
}

function combine(all: readonly (MemberStatus | undefined)[]): StoreStatus {
  const answered = all.filter((s): s is MemberStatus => s !== undefined);
  const term = answered.reduce<number | null>((m, s) => (m === null || s.term > m ? s.term : m), null);
  const leader = answered.find((s) => s.term === term && s.leader !== null)?.leader ?? null;
  return { term, leader, reachable: answered.length };
}

/** The built-in store's nodes at `endpoints`, their data folders under `dataDir` (one folder per node id). */
export function builtinObserver(endpoints: readonly string[], dataDir: string | undefined): StoreObserver {
  let last: { leader: string | null; byId: Map<string, string> } = { leader: null, byId: new Map() };
  return {
    async status() {
      const all = await Promise.all(
        endpoints.map(async (url) => {
          try {
            const s = (await getJson(`${url}/v1/status`)) as { id: string; term: number; leaderId: string | null };
            last.byId.set(s.id, url);
            return { id: s.id, term: s.term, leader: s.leaderId };
          } catch {
            return undefined;
          }
        }),
      );
      const st = combine(all);
      last = { ...last, leader: st.leader };
      return st;
    },
    async size() {
      const leader = last.leader ?? undefined;
      const url = (leader === undefined ? undefined : last.byId.get(leader)) ?? endpoints[0];
      let keys: number | null = null;
      let bytes: number | null = null;
      try {
        const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
        const m = parseMetrics(await res.text());
        keys = m.get('store_kv_keys') ?? null;
        bytes = STORE_BYTES_METRICS.map((n) => m.get(n)).find((v) => v !== undefined) ?? null;
      } catch {
        // unanswered: the row shows '-'
      }
      const diskBytes = dataDir === undefined || leader === undefined ? null : diskUsage(join(dataDir, leader));
      return { keys, bytes, diskBytes };
    },
  };
}

const ALL_KEYS = Buffer.from([0]).toString('base64');

/** An etcd cluster at `endpoints`, through its JSON gateway (v3 API); members are named `names` (e1, e2, ...) in the same order. */
export function etcdObserver(endpoints: readonly string[], names: readonly string[] = endpoints.map((_, i) => `e${i + 1}`)): StoreObserver {
  // etcd names members by 64-bit ids: learn each member's from its own answer.
  const nameOf = new Map<string, string>();
  const memberStatus = async (url: string, i: number): Promise<(MemberStatus & { dbSize: number }) | undefined> => {
    try {
      const s = (await getJson(`${url}/v3/maintenance/status`, {})) as { header?: { member_id?: string }; leader?: string; raftTerm?: string; dbSize?: string };
      const id = s.header?.member_id ?? url;
      nameOf.set(id, names[i] ?? id);
      const leader = s.leader === undefined || s.leader === '0' ? null : (nameOf.get(s.leader) ?? s.leader);
      return { id: nameOf.get(id) ?? id, term: Number(s.raftTerm ?? Number.NaN), leader, dbSize: Number(s.dbSize ?? Number.NaN) };
    } catch {
      return undefined;
    }
  };
  return {
    async status() {
      return combine(await Promise.all(endpoints.map(memberStatus)));
    },
    async size() {
      const all = (await Promise.all(endpoints.map(memberStatus))).filter((s) => s !== undefined);
      const leaderSize = all.find((s) => s.id === s.leader)?.dbSize ?? all[0]?.dbSize;
      let keys: number | null = null;
      for (const url of endpoints) {
        try {
          const r = (await getJson(`${url}/v3/kv/range`, { key: ALL_KEYS, range_end: ALL_KEYS, count_only: true })) as { count?: string };
          keys = Number(r.count ?? 0);
          break;
        } catch {
          // the next member
        }
      }
      return { keys, bytes: null, diskBytes: leaderSize === undefined || Number.isNaN(leaderSize) ? null : leaderSize };
    },
  };
}

/**
 * Counts elections from the highest term seen: every term after the first
 * one observed began with an election, whether or not it was seen in a poll.
 */
export class ElectionCounter {
  private firstTerm: number | null = null;
  private highest: number | null = null;
  private counted = 0;

  observe(term: number | null): void {
    if (term === null || Number.isNaN(term)) return;
    if (this.firstTerm === null) this.firstTerm = term;
    if (this.highest === null || term > this.highest) this.highest = term;
  }

  get term(): number | null {
    return this.highest;
  }

  /** Elections since the last call. */
  take(): number {
    const total = this.highest === null || this.firstTerm === null ? 0 : this.highest - this.firstTerm;
    const n = total - this.counted;
    this.counted = total;
    return n;
  }
}
