/**
 * What bench/store/large-state.ts reads from the processes it started (their
 * memory comes from ../proc-memory.ts): our nodes' /v1/status and /metrics,
 * and etcd's status per member.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keepAliveTimers } from '../../lib/timers.js';

export interface NodeStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly storeBytes?: number;
  readonly quotaBytes?: number;
}

export async function getJson<T>(url: string, timeoutMs = 2_000): Promise<{ status: number; body: T | undefined }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: T | undefined;
    try {
      body = JSON.parse(text) as T;
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } catch {
    return { status: 0, body: undefined };
  }
}

export async function nodeStatus(url: string): Promise<NodeStatus | undefined> {
  const r = await getJson<NodeStatus>(`${url}/v1/status`);
  return r.status === 200 ? r.body : undefined;
}

/** Every sample of a Prometheus metric in one node's /metrics, summed over its labels; undefined when absent or unreachable. */
export async function metric(url: string, name: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3_000) });
    const text = await res.text();
    let sum: number | undefined;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm'))) sum = (sum ?? 0) + Number(m[1]);
    return sum;
  } catch {
    return undefined;
  }
}

/** The leader as it reports itself (its URL and status), polling until one answers. */
export async function ourLeader(endpoints: readonly string[], timeoutMs = 30_000): Promise<{ url: string; status: NodeStatus }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const url of endpoints) {
      const st = await nodeStatus(url);
      if (st?.role === 'leader') return { url, status: st };
    }
    await keepAliveTimers.sleep(100);
  }
  throw new Error(`no leader among ${endpoints.join(', ')} within ${timeoutMs} ms`);
}

/** Leader changes as seen by our nodes: the term (each election raises it) and store_leader_changes_total per node. */
export interface OurLeadership {
  readonly term: number;
  readonly leaderId: string | null;
  /** store_leader_changes_total by endpoint. */
  readonly changes: Record<string, number | undefined>;
}

export async function ourLeadership(endpoints: readonly string[]): Promise<OurLeadership> {
  const { status } = await ourLeader(endpoints);
  const changes: Record<string, number | undefined> = {};
  for (const url of endpoints) changes[url] = await metric(url, 'store_leader_changes_total');
  return { term: status.term, leaderId: status.leaderId, changes };
}

/** Elections between two readings: the term's rise, and the largest rise of any node's leader-change counter (a change to "no leader" counts there too). */
export function ourLeaderChanges(a: OurLeadership, b: OurLeadership): { termDelta: number; maxMetricDelta: number } {
  let maxMetricDelta = 0;
  for (const [url, after] of Object.entries(b.changes)) {
    const before = a.changes[url];
    if (after !== undefined && before !== undefined) maxMetricDelta = Math.max(maxMetricDelta, after - before);
  }
  return { termDelta: b.term - a.term, maxMetricDelta };
}

/**
 * etcd keeps every revision until compacted; ours keeps the watch history's
 * last 100,000 events (store/kv/config.ts watchHistoryEvents). etcd's
 * revision-mode auto-compaction keeps the same number, so ten minutes of
 * overwrites do not fill its quota with history ours never holds.
 */
export const ETCD_COMPACTION_FLAGS = ['--auto-compaction-mode=revision', '--auto-compaction-retention=100000'] as const;

/**
 * bench/etcd.ts starts members with fixed flags; this wrapper adds the quota
 * (etcd's default, 2 GiB, is below 4 million keys of 512 bytes) and
 * ETCD_COMPACTION_FLAGS. It execs, so the pid EtcdCluster holds is etcd's own.
 */
export function etcdWrapper(dir: string, etcdBin: string, quotaBytes: number): string {
  const path = join(dir, 'etcd-with-quota.sh');
  writeFileSync(path, `#!/bin/sh\nexec ${etcdBin} "$@" --quota-backend-bytes=${quotaBytes} ${ETCD_COMPACTION_FLAGS.join(' ')}\n`);
  chmodSync(path, 0o755);
  return path;
}
