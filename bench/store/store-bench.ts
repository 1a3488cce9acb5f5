/**
 * Store benchmark, side by side with etcd:
 *
 *   npm run bench:store [-- --duration-s 5 --clients 1,16,64,256 --json FILE --no-etcd]
 *
 * Starts a 3-node cluster of the built-in store (LocalCluster, temp data dir)
 * and, when Debian's `etcd-server` is installed and --no-etcd is not given, a
 * 3-member etcd on loopback. Runs three closed-loop workloads at each client
 * count for a fixed time: set (PUT), CAS create-if-absent on fresh keys, and
 * linearizable get. Our store is driven over node:http with a keep-alive
 * agent, etcd through the `etcd3` npm client; both send everything to the
 * leader. Rows run ours then etcd back to back, so a busy machine skews both
 * alike. Prints a Markdown table (ours, etcd, ratio) and, with --json, the
 * raw numbers. Every process started here is stopped by pid at the end, also
 * on error or Ctrl-C.
 *
 * Other flags: --warmup-s (per row, default 1), --initial-warmup-s (once per
 * system before the first row, default 10: V8 compiles the hot paths first),
 * --workloads set,cas,get, --value-bytes 64, --base-port 34000 (ours),
 * --etcd-base-port 34200, --keep-data (keep data dirs and logs),
 * --snapshot-every N (our nodes' snapshot interval; default 100000, etcd
 * 3.4's --snapshot-count, instead of the store's 20000), and
 * --endpoints URL,... to benchmark an already running cluster instead of
 * starting one (e.g. nodes started under `node --cpu-prof`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { EtcdCluster, etcdVersion, findEtcd } from '../etcd.js';
import { LeanHttp, runPhase, type Op, type PhaseResult } from '../loadgen.js';

type Workload = 'set' | 'cas' | 'get';
const WORKLOADS: readonly Workload[] = ['set', 'cas', 'get'];
const GET_KEYS = 1000;

interface Target {
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

interface Row {
  readonly workload: Workload;
  readonly clients: number;
  readonly ours: PhaseResult;
  readonly etcd?: PhaseResult;
  /** E.g. "ours: election during the row". */
  readonly notes?: readonly string[];
}

function progress(line: string, done: boolean): void {
  if (process.stderr.isTTY) {
    process.stderr.write(`\r\x1b[K${line}${done ? '\n' : ''}`);
  } else if (done) {
    process.stderr.write(`${line}\n`);
  }
}

// ---- our store -----------------------------------------------------------

/** The leader's client URL, asking each endpoint's /v1/status until one names a leader (bounded). */
async function findLeader(endpoints: readonly string[], timeoutMs = 20_000): Promise<{ url: string; term: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const ep of endpoints) {
      try {
        const res = await fetch(`${ep}/v1/status`, { signal: AbortSignal.timeout(1_000) });
        const st = (await res.json()) as { role?: string; term?: number; leaderId?: string | null; members?: { id: string; clientUrl: string }[] };
        if (st.role === 'leader') return { url: ep, term: st.term ?? 0 };
      } catch {
        // next endpoint
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no leader among ${endpoints.join(', ')} within ${timeoutMs} ms`);
}

function ourTarget(endpoints: readonly string[], valueBytes: number): Target {
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
    name: 'ours',
    async prepare() {
      const leader = await findLeader(endpoints);
      url = leader.url;
      term = leader.term;
      http = new LeanHttp(url, 512);
      const c = client();
      for (let i = 0; i < GET_KEYS; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => c.request('PUT', `/v1/kv/bench/get/${i + j}`, putBody)));
      }
    },
    async beforeRow() {
      const leader = await findLeader(endpoints);
      term = leader.term;
      if (leader.url !== url) {
        progress(`  our leader is now ${leader.url}`, true);
        http?.close();
        url = leader.url;
        http = new LeanHttp(url, 512);
      }
    },
    async afterRow() {
      const leader = await findLeader(endpoints);
      return leader.term !== term ? `ours: leader election during the row (term ${term} -> ${leader.term})` : undefined;
    },
    op(workload, _clients, tag) {
      const c = client();
      switch (workload) {
        case 'set':
          return async (w, i) => void (await c.request('PUT', `/v1/kv/bench/set/${w}-${i & 63}`, putBody));
        case 'cas':
          return async (w, i) => {
            const res = (await c.request('POST', `/v1/kv/bench/cas/${tag}/${w}/${i}/cas`, casBody)) as { succeeded?: boolean };
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

async function etcdTarget(cluster: EtcdCluster, valueBytes: number): Promise<Target> {
  const { Etcd3 } = await import('etcd3');
  type Client = InstanceType<typeof Etcd3>;
  /** The leader: the member whose own id equals the leader id it reports. */
  const findEtcdLeader = async (): Promise<{ url: string; term: string }> => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      for (const ep of cluster.endpoints) {
        const probe = new Etcd3({ hosts: ep, dialTimeout: 2_000 });
        try {
          const st = await probe.maintenance.status();
          if (st.leader === st.header.member_id) return { url: ep, term: st.raftTerm };
        } catch {
          // not ready yet
        } finally {
          probe.close();
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('etcd has no leader');
  };
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

// ---- reporting -------------------------------------------------------------

function fmt(n: number | undefined, digits: number): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 || Number.isNaN(a) || Number.isNaN(b) ? '-' : `${(a / b).toFixed(2)}x`;
}

export function renderTable(rows: readonly Row[], withEtcd: boolean): string {
  const out: string[] = [];
  if (withEtcd) {
    out.push('| workload | clients | ours ops/s | ours p50 ms | ours p99 ms | etcd ops/s | etcd p50 ms | etcd p99 ms | ops/s ours/etcd | p50 ours/etcd | errors ours/etcd |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  } else {
    out.push('| workload | clients | ours ops/s | ours p50 ms | ours p99 ms | errors |');
    out.push('|---|---:|---:|---:|---:|---:|');
  }
  for (const r of rows) {
    const base = `| ${r.workload} | ${r.clients} | ${fmt(r.ours.opsPerS, 0)} | ${fmt(r.ours.p50Ms, 2)} | ${fmt(r.ours.p99Ms, 2)}`;
    if (withEtcd) {
      const e = r.etcd;
      out.push(`${base} | ${fmt(e?.opsPerS, 0)} | ${fmt(e?.p50Ms, 2)} | ${fmt(e?.p99Ms, 2)} | ${ratio(r.ours.opsPerS, e?.opsPerS)} | ${ratio(r.ours.p50Ms, e?.p50Ms)} | ${r.ours.errors}/${e?.errors ?? '-'} |`);
    } else {
      out.push(`${base} | ${r.ours.errors} |`);
    }
  }
  const notes = rows.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.workload} at ${r.clients} clients: ${n}`));
  if (notes.length > 0) out.push('', ...notes);
  return out.join('\n');
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

// ---- main ------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseFlags({
    'duration-s': { type: 'string' },
    'warmup-s': { type: 'string' },
    'initial-warmup-s': { type: 'string' },
    clients: { type: 'string' },
    workloads: { type: 'string' },
    json: { type: 'string' },
    'no-etcd': { type: 'boolean' },
    'base-port': { type: 'string' },
    'etcd-base-port': { type: 'string' },
    'value-bytes': { type: 'string' },
    'keep-data': { type: 'boolean' },
    endpoints: { type: 'string' },
    'snapshot-every': { type: 'string' },
  });
  const durationMs = Number(stringFlag(values, 'duration-s', '5')) * 1000;
  const warmupMs = Number(stringFlag(values, 'warmup-s', '1')) * 1000;
  // Our nodes run on V8: the first seconds are spent compiling hot paths. etcd is Go.
  const initialWarmupMs = Number(stringFlag(values, 'initial-warmup-s', '10')) * 1000;
  if (!(durationMs > 0) || !(warmupMs >= 0)) throw new Error('--duration-s must be > 0 and --warmup-s >= 0');
  const clientCounts = (stringFlag(values, 'clients', '1,16,64,256') as string).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--clients: bad count ${s}`);
    return n;
  });
  const workloads = (stringFlag(values, 'workloads', WORKLOADS.join(',')) as string).split(',').map((s) => {
    if (!(WORKLOADS as readonly string[]).includes(s)) throw new Error(`--workloads: unknown ${s} (set, cas, get)`);
    return s as Workload;
  });
  const basePort = intFlag(values, 'base-port', 34000);
  const etcdBasePort = intFlag(values, 'etcd-base-port', 34200);
  const valueBytes = intFlag(values, 'value-bytes', 64);
  const etcdBin = values['no-etcd'] === true ? undefined : findEtcd();
  if (values['no-etcd'] !== true && !etcdBin) process.stderr.write('etcd not found (apt-get install etcd-server): running our store only\n');

  const tmp = mkdtempSync(join(os.tmpdir(), 'raft2pc-bench-'));
  // --endpoints: benchmark an already running cluster (e.g. nodes started under --cpu-prof).
  const external = stringFlag(values, 'endpoints')?.split(',').filter((e) => e !== '');
  // etcd 3.4 snapshots every 100,000 entries (--snapshot-count); ours every
  // 20,000 by default. The comparison uses etcd's interval unless told otherwise
  // (docs/BENCHMARKS.md shows what a snapshot in the middle of a row costs).
  const snapshotEvery = intFlag(values, 'snapshot-every', 100_000);
  const cluster = external
    ? undefined
    : new LocalCluster({ nodes: 3, basePort, dataDir: join(tmp, 'store'), logToFiles: true, extraArgs: ['--snapshot-every', String(snapshotEvery)] });
  const endpoints = external ?? cluster?.endpoints ?? [];
  const etcd = etcdBin ? new EtcdCluster(etcdBin, join(tmp, 'etcd'), etcdBasePort, etcdBasePort + 100) : undefined;
  const targets: Target[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const t of targets) await t.close().catch(() => undefined);
    await Promise.all([cluster?.stop(), etcd?.stop()]);
    if (values['keep-data'] === true) process.stderr.write(`data and logs kept in ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    process.stderr.write('\ninterrupted: stopping the clusters\n');
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const loadStart = os.loadavg();
  const rows: Row[] = [];
  try {
    if (cluster) {
      progress(`starting our 3-node store on ports ${basePort}-${basePort + 2}...`, true);
      cluster.start();
    }
    etcd?.start();
    if (cluster) {
      await cluster.waitForLeader(20_000);
      progress(`  store pids ${cluster.processes.map((p) => p.pid).join(', ')}`, true);
    }
    if (etcd) {
      progress(`starting etcd ${etcdVersion(etcd.bin)} (3 members) on ports ${etcdBasePort}-${etcdBasePort + 2}...`, true);
      await etcd.waitHealthy(20_000);
      progress(`  etcd pids ${etcd.pids.join(', ')}`, true);
    }
    const ours = ourTarget(endpoints, valueBytes);
    targets.push(ours);
    await ours.prepare();
    if (etcd) {
      const e = await etcdTarget(etcd, valueBytes);
      targets.push(e);
      await e.prepare();
    }
    if (initialWarmupMs > 0) {
      for (const t of targets) {
        for (const workload of workloads) {
          progress(`warming up ${t.name} ${workload}...`, false);
          await runPhase(t.op(workload, 16, `${t.name}-warmup-${workload}-${Date.now().toString(36)}`), { concurrency: 16, durationMs: initialWarmupMs / workloads.length });
        }
      }
      progress(`warmed up (${initialWarmupMs / 1000} s per system)`, true);
    }
    const total = workloads.length * clientCounts.length * targets.length;
    let n = 0;
    for (const workload of workloads) {
      for (const clients of clientCounts) {
        const results: PhaseResult[] = [];
        const notes: string[] = [];
        for (const t of targets) {
          n++;
          await t.beforeRow();
          const label = `[${n}/${total}] ${t.name.padEnd(4)} ${workload.padEnd(3)} clients=${String(clients).padEnd(3)}`;
          const tag = `${t.name}-${workload}-${clients}-${Date.now().toString(36)}`;
          const result = await runPhase(t.op(workload, clients, tag), {
            concurrency: clients,
            durationMs,
            warmupMs,
            onProgress: (ms, ops, errs) => progress(`${label} ${(ms / 1000).toFixed(1)}/${(durationMs / 1000).toFixed(1)} s  ${ops} ops  ${errs} errors`, false),
          });
          progress(`${label} ${result.opsPerS.toFixed(0)} ops/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  ${result.errors} errors${result.errorSamples[0] ? ` (${result.errorSamples[0]})` : ''}`, true);
          results.push(result);
          const note = await t.afterRow();
          if (note) {
            notes.push(note);
            progress(`  note: ${note}`, true);
          }
        }
        const [o, e] = results as [PhaseResult, PhaseResult | undefined];
        const row: Row = e ? { workload, clients, ours: o, etcd: e } : { workload, clients, ours: o };
        rows.push(notes.length > 0 ? { ...row, notes } : row);
      }
    }
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  const report = {
    command: `npm run bench:store -- ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: { start: loadStart, end: os.loadavg() },
    config: { durationMs, warmupMs, initialWarmupMs, clients: clientCounts, workloads, valueBytes, snapshotEvery: external ? null : snapshotEvery, etcdVersion: etcd ? etcdVersion(etcd.bin) : null },
    rows,
  };
  console.log('');
  console.log(renderTable(rows, etcd !== undefined));
  console.log('');
  console.log(JSON.stringify(report));
  const jsonFile = stringFlag(values, 'json');
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
