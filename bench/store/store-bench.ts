/**
 * Store benchmark, side by side with etcd:
 *
 *   npm run bench:store [-- --duration-s 5 --clients 1,16,64,256 --json FILE --no-etcd]
 *
 * Starts a 3-node cluster of the built-in store (LocalCluster, temp data dir)
 * and, when Debian's `etcd-server` is installed and --no-etcd is not given, a
 * 3-member etcd on loopback. Runs three closed-loop workloads at each client
 * count for a fixed time: set (PUT), CAS create-if-absent on fresh keys, and
 * linearizable get. Our store is driven through the product's HTTP client
 * (lib/http-client.ts, on undici) pipelining as the store client does (a
 * set is an idempotent PUT; a CAS carries a Request-Id, as the store client
 * sends it), etcd through the `etcd3` npm client, which multiplexes its calls
 * on HTTP/2; both send everything to the leader. Our nodes run the compiled
 * package (built first; --code sources: the sources under tsx). Rows run
 * ours then etcd back to back, so a busy machine skews both alike. Prints a
 * Markdown table (ours, etcd, ratio), each system's CPU per operation over
 * the measured window (its three server processes, and this process, which
 * is its client) and, with --json, the raw numbers. Every process started
 * here is stopped by pid at the end, also on error or Ctrl-C.
 *
 * Other flags: --rounds N (each row N times, the systems' order alternating;
 * the table shows each system's median round and lists every round's
 * ops/s), --warmup-s (per row, default 1), --initial-warmup-s (once per
 * system before the first row, default 10: V8 compiles the hot paths first),
 * --workloads set,cas,get, --value-bytes 64, --base-port 34000 (ours),
 * --etcd-base-port 34200, --keep-data (keep data dirs and logs),
 * --snapshot-every N (our nodes' snapshot interval; default 100000, etcd
 * 3.4's --snapshot-count, instead of the store's 20000), --engine
 * lmdb|memory (our nodes' state machine; default lmdb, the store's), and
 * --endpoints URL,... to benchmark an already running cluster instead of
 * starting one (its servers' CPU is reported when every endpoint is on this
 * machine's loopback: the pids listening on those ports), and --profile
 * DIR (our nodes run under --cpu-prof, profiles in DIR; summarize them with
 * `npx tsx bench/profile-top.ts DIR`).
 *
 * --compare-secure: instead of etcd, a second cluster of ours with TLS on
 * every link and auth on (secure-cluster.ts), beside the plain one in each
 * row: what TLS and auth cost (docs/SECURITY.md).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { etcdVersion, findEtcd } from '../../lib/etcd-binary.js';
import { HttpClient } from '../../lib/http-client.js';
import { ENGINES } from '../../store/node/config.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { cleanupOnSignal } from '../cleanup.js';
import { NODE_CODES, storeNodeProgram, type NodeCode } from '../built.js';
import { EtcdCluster } from '../etcd.js';
import { runPhase, type PhaseResult } from '../loadgen.js';
import { cpuMsOf, pidsListeningOn } from '../proc-cpu.js';
import { etcdTarget, ourTarget, WORKLOADS, type Target, type Workload } from './store-targets.js';
import { planSecureCluster, setUpAuth, type SecureCluster } from './secure-cluster.js';
import { fmt, machine, progress, ratio } from '../output.js';

/** CPU per operation over a row's measured window, in µs: the system's server processes, and this process (its client). */
interface CpuPerOp {
  readonly serverUs: number;
  readonly clientUs: number;
}

/** A system's result in a row; `cpu` when its server processes are known (with --endpoints: all on this machine's loopback). */
interface Measured extends PhaseResult {
  readonly cpu?: CpuPerOp;
}

interface Row {
  readonly workload: Workload;
  readonly clients: number;
  readonly ours: Measured;
  readonly etcd?: Measured;
  /** --compare-secure: our cluster with TLS and auth, in the same row. */
  readonly secure?: Measured;
  /** E.g. "ours: election during the row". */
  readonly notes?: readonly string[];
  /** --rounds N > 1: each round's ops/s per system, in the order of the columns; the row shows each system's median round. */
  readonly rounds?: readonly (readonly number[])[];
}

// ---- reporting -------------------------------------------------------------

/** What the second column set of a row is: etcd's, or (--compare-secure) our secure cluster's. */
type Other = 'etcd' | 'secure';

function otherOf(r: Row, other: Other): Measured | undefined {
  return other === 'etcd' ? r.etcd : r.secure;
}

export function renderTable(rows: readonly Row[], other: Other | undefined): string {
  const out: string[] = [];
  const [a, b] = other === 'secure' ? ['plain', 'TLS+auth'] : ['ours', 'etcd'];
  if (other !== undefined) {
    out.push(`| workload | clients | ${a} ops/s | ${a} p50 ms | ${a} p99 ms | ${b} ops/s | ${b} p50 ms | ${b} p99 ms | ops/s ${a}/${b} | p50 ${a}/${b} | errors ${a}/${b} |`);
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  } else {
    out.push('| workload | clients | ours ops/s | ours p50 ms | ours p99 ms | errors |');
    out.push('|---|---:|---:|---:|---:|---:|');
  }
  for (const r of rows) {
    const base = `| ${r.workload} | ${r.clients} | ${fmt(r.ours.opsPerS, 0)} | ${fmt(r.ours.p50Ms, 2)} | ${fmt(r.ours.p99Ms, 2)}`;
    if (other !== undefined) {
      const e = otherOf(r, other);
      out.push(`${base} | ${fmt(e?.opsPerS, 0)} | ${fmt(e?.p50Ms, 2)} | ${fmt(e?.p99Ms, 2)} | ${ratio(r.ours.opsPerS, e?.opsPerS)} | ${ratio(r.ours.p50Ms, e?.p50Ms)} | ${r.ours.errors}/${e?.errors ?? '-'} |`);
    } else {
      out.push(`${base} | ${r.ours.errors} |`);
    }
  }
  const notes = rows.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.workload} at ${r.clients} clients: ${n}`));
  if (notes.length > 0) out.push('', ...notes);
  const rounds = rows.filter((r) => r.rounds !== undefined).map((r) => `- ${r.workload} at ${r.clients} clients, ops/s per round (${other === undefined ? 'ours' : `${a}/${b}`}): ${(r.rounds ?? []).map(roundText).join(', ')}`);
  if (rounds.length > 0) out.push('', ...rounds);
  const cpu = rows.filter((r) => r.ours.cpu !== undefined).map((r) => `- ${r.workload} at ${r.clients} clients, CPU µs per op, servers + client: ${cpuText(a, r.ours.cpu)}${other === undefined ? '' : `; ${cpuText(b, otherOf(r, other)?.cpu)}`}`);
  if (cpu.length > 0) out.push('', ...cpu);
  return out.join('\n');
}

/** "ours 412 (331 + 81)": one system's CPU per op in a row. */
function cpuText(name: string, cpu: CpuPerOp | undefined): string {
  return cpu === undefined ? `${name} -` : `${name} ${fmt(cpu.serverUs + cpu.clientUs, 0)} (${fmt(cpu.serverUs, 0)} + ${fmt(cpu.clientUs, 0)})`;
}

/** One round's ops/s: "5309/3306 (1.61x)", or "5309" with one system. */
function roundText(ops: readonly number[]): string {
  const [o, e] = ops;
  return e === undefined ? String(o) : `${o}/${e} (${ratio(o ?? 0, e)})`;
}

// ---- main ------------------------------------------------------------------

interface BenchConfig {
  readonly engine: string;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly initialWarmupMs: number;
  readonly clientCounts: readonly number[];
  readonly workloads: readonly Workload[];
  readonly basePort: number;
  readonly etcdBasePort: number;
  readonly valueBytes: number;
  readonly etcdBin: string | undefined;
  /** --endpoints: an already running cluster (e.g. nodes started under --cpu-prof) instead of starting one. */
  readonly external: readonly string[] | undefined;
  readonly snapshotEvery: number;
  readonly keepData: boolean;
  readonly jsonFile: string | undefined;
  /** --compare-secure: our secure cluster instead of etcd, on ports from basePort + 400. */
  readonly compareSecure: boolean;
  /** --profile DIR: our nodes run under --cpu-prof, profiles in DIR (bench/profile-top.ts summarizes them). */
  readonly profileDir: string | undefined;
  /** --rounds N: each row measured N times, systems alternating (default 1). */
  readonly rounds: number;
  /** --code build|sources: our nodes run the compiled package (default) or the sources under tsx. */
  readonly code: NodeCode;
}

function parseConfig(): BenchConfig {
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
    engine: { type: 'string' },
    'compare-secure': { type: 'boolean' },
    profile: { type: 'string' },
    rounds: { type: 'string' },
    code: { type: 'string' },
  });
  const compareSecure = values['compare-secure'] === true;
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
  const noEtcd = values['no-etcd'] === true || compareSecure;
  const etcdBin = noEtcd ? undefined : findEtcd();
  if (!noEtcd && !etcdBin) process.stderr.write('etcd not found (apt-get install etcd-server): running our store only\n');
  const external = stringFlag(values, 'endpoints')?.split(',').filter((e) => e !== '');
  // etcd 3.4 snapshots every 100,000 entries (--snapshot-count); ours every
  // 20,000 by default. The comparison uses etcd's interval unless told otherwise
  // (docs/BENCHMARKS.md shows what a snapshot in the middle of a row costs).
  const snapshotEvery = intFlag(values, 'snapshot-every', 100_000);
  const keepData = values['keep-data'] === true;
  const engine = stringFlag(values, 'engine', 'lmdb') as string;
  if (!(ENGINES as readonly string[]).includes(engine)) throw new Error(`--engine: ${engine} is not one of ${ENGINES.join(', ')}`);
  const rounds = intFlag(values, 'rounds', 1);
  if (rounds < 1 || rounds > 20) throw new Error(`--rounds must be 1 to 20, got ${rounds}`);
  const code = stringFlag(values, 'code', 'build') as NodeCode;
  if (!NODE_CODES.includes(code)) throw new Error(`--code: ${code} is not one of ${NODE_CODES.join(', ')}`);
  return { engine, durationMs, warmupMs, initialWarmupMs, clientCounts, workloads, basePort, etcdBasePort, valueBytes, etcdBin, external, snapshotEvery, keepData, jsonFile: stringFlag(values, 'json'), compareSecure, profileDir: stringFlag(values, 'profile'), rounds, code };
}

/** The systems under test, their temp dir, and the targets driving them (closed by `cleanup`). */
interface Systems {
  readonly tmp: string;
  readonly cluster: LocalCluster | undefined;
  readonly etcd: EtcdCluster | undefined;
  readonly secure: SecureCluster | undefined;
  readonly endpoints: readonly string[];
  /** Status calls to the plain cluster. */
  readonly status: HttpClient;
  readonly targets: Target[];
  /** Each target's server processes (by target name), for CPU per op; with --endpoints, found by port when local. */
  readonly pids: Map<string, () => readonly number[]>;
}

async function planSystems(cfg: BenchConfig): Promise<Systems> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'raft2pc-bench-'));
  const nodeArgs = ['--snapshot-every', String(cfg.snapshotEvery), '--engine', cfg.engine];
  const nodeFlags = cfg.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cfg.profileDir];
  const program = cfg.external ? undefined : storeNodeProgram(cfg.code);
  const launch = { logToFiles: true, extraArgs: nodeArgs, nodeFlags, ...(program === undefined ? {} : { program }) };
  const cluster = cfg.external ? undefined : new LocalCluster({ nodes: 3, basePort: cfg.basePort, dataDir: join(tmp, 'store'), ...launch });
  const endpoints = cfg.external ?? cluster?.endpoints ?? [];
  const etcd = cfg.etcdBin ? new EtcdCluster(cfg.etcdBin, join(tmp, 'etcd'), cfg.etcdBasePort, cfg.etcdBasePort + 100) : undefined;
  const secure = cfg.compareSecure ? await planSecureCluster(join(tmp, 'secure'), cfg.basePort + 400, nodeArgs, program) : undefined;
  const pids = new Map<string, () => readonly number[]>();
  const pidsOf = (c: LocalCluster) => () => c.processes.flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  if (cluster) pids.set('ours', pidsOf(cluster));
  const external = cfg.external === undefined ? [] : localServerPids(cfg.external);
  if (external.length > 0) pids.set('ours', () => external);
  if (secure) pids.set('secure', pidsOf(secure.cluster));
  if (etcd) pids.set('etcd', () => etcd.pids);
  return { tmp, cluster, etcd, secure, endpoints, status: new HttpClient(), targets: [], pids };
}

/**
 * With --endpoints: the pids serving them, when every endpoint is on this
 * machine's loopback and one process listens on each port (else none: a
 * partial sum would understate the servers' CPU).
 */
function localServerPids(endpoints: readonly string[]): readonly number[] {
  const urls = endpoints.map((e) => new URL(e));
  if (!urls.every((u) => ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname))) return [];
  const pids = pidsListeningOn(urls.map((u) => Number(u.port || (u.protocol === 'https:' ? 443 : 80))));
  if (pids.length !== urls.length) return [];
  progress(`  store pids (listening on the endpoints' ports) ${pids.join(', ')}`, true);
  return pids;
}

/** Stops everything started here and removes the data (or says where it is kept). */
async function stopSystems(sys: Systems, keepData: boolean): Promise<void> {
  for (const t of sys.targets) await t.close().catch(() => undefined);
  await Promise.all([sys.cluster?.stop(), sys.etcd?.stop(), sys.secure?.cluster.stop()]);
  sys.status.close();
  sys.secure?.cluster.http.close();
  if (keepData) process.stderr.write(`data and logs kept in ${sys.tmp}\n`);
  else rmSync(sys.tmp, { recursive: true, force: true });
}

/** Starts the clusters, waits until they serve, and prepares a target for each (pushed to sys.targets). */
async function startTargets(sys: Systems, cfg: BenchConfig): Promise<void> {
  const { cluster, etcd } = sys;
  if (cluster) {
    progress(`starting our 3-node store on ports ${cfg.basePort}-${cfg.basePort + 2}...`, true);
    cluster.start();
  }
  etcd?.start();
  if (cluster) {
    await cluster.waitForLeader(20_000);
    progress(`  store pids ${cluster.processes.map((p) => p.pid).join(', ')}`, true);
  }
  if (etcd) {
    progress(`starting etcd ${etcdVersion(etcd.bin)} (3 members) on ports ${cfg.etcdBasePort}-${cfg.etcdBasePort + 2}...`, true);
    await etcd.waitHealthy(20_000);
    progress(`  etcd pids ${etcd.pids.join(', ')}`, true);
  }
  const ours = ourTarget(sys.endpoints, cfg.valueBytes, { name: 'ours', status: sys.status });
  sys.targets.push(ours);
  await ours.prepare();
  if (sys.secure) await startSecure(sys.secure, sys.targets, cfg);
  if (etcd) {
    const e = await etcdTarget(etcd, cfg.valueBytes);
    sys.targets.push(e);
    await e.prepare();
  }
}

/** --compare-secure: the secure cluster, its auth set up, and its target. */
async function startSecure(secure: SecureCluster, targets: Target[], cfg: BenchConfig): Promise<void> {
  progress(`starting our secure 3-node store (TLS, peer mTLS, auth) on ports ${cfg.basePort + 400}-${cfg.basePort + 402}...`, true);
  secure.cluster.start();
  await secure.cluster.waitForLeader(20_000);
  await setUpAuth(secure);
  progress(`  secure store pids ${secure.cluster.processes.map((p) => p.pid).join(', ')}`, true);
  const target = ourTarget(secure.cluster.endpoints, cfg.valueBytes, { name: 'secure', status: secure.cluster.http, security: () => ({ tls: secure.tls, headers: { authorization: `Bearer ${secure.token}` } }) });
  targets.push(target);
  await target.prepare();
}

/** Once per system before the first row, so V8 has compiled our hot paths. */
async function warmUp(targets: readonly Target[], cfg: BenchConfig): Promise<void> {
  if (cfg.initialWarmupMs <= 0) return;
  for (const t of targets) {
    for (const workload of cfg.workloads) {
      progress(`warming up ${t.name} ${workload}...`, false);
      await runPhase(t.op(workload, 16, `${t.name}-warmup-${workload}-${Date.now().toString(36)}`), { concurrency: 16, durationMs: cfg.initialWarmupMs / cfg.workloads.length });
    }
  }
  progress(`warmed up (${cfg.initialWarmupMs / 1000} s per system)`, true);
}

/** CPU so far: the server processes' (ms; undefined when not local) and this process's (µs). */
interface CpuSample {
  readonly serversMs: number | undefined;
  readonly client: NodeJS.CpuUsage;
}

function sampleCpu(pids: readonly number[]): CpuSample {
  return { serversMs: cpuMsOf(pids), client: process.cpuUsage() };
}

function cpuPerOp(a: CpuSample | undefined, z: CpuSample | undefined, ops: number): CpuPerOp | undefined {
  if (a?.serversMs === undefined || z?.serversMs === undefined || ops === 0) return undefined;
  const client = z.client.user + z.client.system - a.client.user - a.client.system;
  return { serverUs: ((z.serversMs - a.serversMs) * 1_000) / ops, clientUs: client / ops };
}

/** One system's run of one row, with its CPU per op; a leader change during it becomes a note. */
async function measureTarget(t: Target, pids: () => readonly number[], workload: Workload, clients: number, cfg: BenchConfig, label: string, notes: string[]): Promise<Measured> {
  await t.beforeRow();
  const tag = `${t.name}-${workload}-${clients}-${Date.now().toString(36)}`;
  const cpuAt: { start?: CpuSample; end?: CpuSample } = {};
  const phase = await runPhase(t.op(workload, clients, tag), {
    concurrency: clients,
    durationMs: cfg.durationMs,
    warmupMs: cfg.warmupMs,
    onProgress: (ms, ops, errs) => progress(`${label} ${(ms / 1000).toFixed(1)}/${(cfg.durationMs / 1000).toFixed(1)} s  ${ops} ops  ${errs} errors`, false),
    onWindow: (edge) => (cpuAt[edge] = sampleCpu(pids())),
  });
  const cpu = cpuPerOp(cpuAt.start, cpuAt.end, phase.ops);
  const result: Measured = cpu === undefined ? phase : { ...phase, cpu };
  const cpuNote = cpu === undefined ? '' : `  CPU/op ${fmt(cpu.serverUs, 0)} + ${fmt(cpu.clientUs, 0)} µs`;
  progress(`${label} ${result.opsPerS.toFixed(0)} ops/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  ${result.errors} errors${cpuNote}${result.errorSamples[0] ? ` (${result.errorSamples[0]})` : ''}`, true);
  const note = await t.afterRow();
  if (note) {
    notes.push(note);
    progress(`  note: ${note}`, true);
  }
  return result;
}

/**
 * Every (workload, clients) row, the systems back to back within a row so a
 * busy machine skews both alike. With --rounds N each row is measured N
 * times, the systems' order alternating from round to round, and each
 * system's median round is shown: this VM's speed drifts by 10 to 20%
 * within minutes (docs/BENCHMARKS.md).
 */
async function runRows(targets: readonly Target[], pids: Systems['pids'], cfg: BenchConfig): Promise<Row[]> {
  const rows: Row[] = [];
  const total = cfg.workloads.length * cfg.clientCounts.length * targets.length * cfg.rounds;
  let n = 0;
  for (const workload of cfg.workloads) {
    for (const clients of cfg.clientCounts) {
      const perTarget: Measured[][] = targets.map(() => []);
      const notes: string[] = [];
      for (let round = 0; round < cfg.rounds; round++) {
        const order = targets.map((_, i) => i);
        if (round % 2 === 1) order.reverse();
        for (const i of order) {
          const t = targets[i] as Target;
          n++;
          const label = `[${n}/${total}] ${t.name.padEnd(4)} ${workload.padEnd(3)} clients=${String(clients).padEnd(3)}`;
          perTarget[i]?.push(await measureTarget(t, pids.get(t.name) ?? (() => []), workload, clients, cfg, label, notes));
        }
      }
      rows.push(rowOf(workload, clients, perTarget, notes, cfg));
    }
  }
  return rows;
}

/** A row from each system's rounds: the median round by ops/s, and every round's ops/s when there were several. */
function rowOf(workload: Workload, clients: number, perTarget: readonly Measured[][], notes: readonly string[], cfg: BenchConfig): Row {
  const median = (rs: readonly Measured[]): Measured => [...rs].sort((a, b) => a.opsPerS - b.opsPerS)[Math.floor((rs.length - 1) / 2)] as Measured;
  const [o, e] = perTarget.map(median) as [Measured, Measured | undefined];
  const base: Row = e === undefined ? { workload, clients, ours: o } : cfg.compareSecure ? { workload, clients, ours: o, secure: e } : { workload, clients, ours: o, etcd: e };
  const rounds = cfg.rounds > 1 ? Array.from({ length: cfg.rounds }, (_, r) => perTarget.map((rs) => Math.round(rs[r]?.opsPerS ?? 0))) : undefined;
  return { ...base, ...(notes.length > 0 ? { notes } : {}), ...(rounds === undefined ? {} : { rounds }) };
}

function printReport(rows: readonly Row[], cfg: BenchConfig, etcd: EtcdCluster | undefined, loadStart: number[]): void {
  const { durationMs, warmupMs, initialWarmupMs, clientCounts, workloads, valueBytes } = cfg;
  const report = {
    command: `npm run bench:store -- ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: { start: loadStart, end: os.loadavg() },
    config: { durationMs, warmupMs, initialWarmupMs, clients: clientCounts, workloads, valueBytes, snapshotEvery: cfg.external ? null : cfg.snapshotEvery, code: cfg.external ? null : cfg.code, etcdVersion: etcd ? etcdVersion(etcd.bin) : null },
    rows,
  };
  console.log('');
  console.log(renderTable(rows, cfg.compareSecure ? 'secure' : etcd !== undefined ? 'etcd' : undefined));
  console.log('');
  console.log(JSON.stringify(report));
  if (cfg.jsonFile) writeFileSync(cfg.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
}

async function main(): Promise<void> {
  const cfg = parseConfig();
  const sys = await planSystems(cfg);
  const stop = cleanupOnSignal(
    () => stopSystems(sys, cfg.keepData),
    () => process.stderr.write('\ninterrupted: stopping the clusters\n'),
  );
  const loadStart = os.loadavg();
  let rows: Row[];
  try {
    await startTargets(sys, cfg);
    await warmUp(sys.targets, cfg);
    rows = await runRows(sys.targets, sys.pids, cfg);
  } finally {
    await stop.run();
    stop.done();
  }
  printReport(rows, cfg, sys.etcd, loadStart);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
