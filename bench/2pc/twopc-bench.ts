/**
 * The 2PC benchmark:
 *
 *   npm run bench:2pc [-- --clients 1,16,64 --duration 10 | --txs N] [--store builtin|etcd|SPEC ...] [--start-etcd]
 *                     [--secure | --compare-secure]
 *
 * For each store backend it starts the whole product as separate processes,
 * as it runs in production: a 3-node store (the built-in one, or etcd), one
 * coordinator (coordinator/service/service.ts with its default configuration) and two
 * participants (the ParticipantNode library with its fsync'd log, trivial
 * work). Closed-loop clients each run one transaction at a time: begin, give
 * both participants their work while enlisting them, commit
 * (workload.ts). Per row it reports committed transactions per second, commit
 * latency and begin-to-outcome latency (p50, p99), the latency of one store
 * CAS measured beside the load, store calls per transaction (counted by
 * wrapping each process's TxStore) and store revisions per transaction (the
 * store's own count), and CPU time per transaction by process (/proc).
 *
 * Backends (`--store`, repeatable; default builtin):
 *   builtin              start a 3-node built-in store (ports --base-port..+2)
 *   etcd                 start a 3-member etcd from /usr/bin/etcd (--etcd-base-port), like --start-etcd
 *   http://h:p,...       an already running built-in store
 *   etcd://h:p,...       an already running etcd cluster
 * The etcd backend needs the etcd adapter of TxStore (coordinator/txstore/etcd/etcd-store.ts).
 * With two backends, rows run back to back for each client count (a burst of
 * someone else's load hits both) and a side-by-side table follows.
 *
 * `--secure` runs the built-in store and the processes with TLS on every
 * link (client certificates, peer mTLS) and store auth, each process on its
 * own store user (bench/2pc/secure.ts, the demo's secure composition);
 * `--compare-secure` runs plain and secure back to back at each client
 * count (the secure store on --base-port+10) and prints them side by side:
 * what TLS and auth cost.
 *
 * Output: progress on stderr; Markdown tables and one JSON line on stdout;
 * the JSON also to .artifacts/bench-2pc.json (or --json FILE). Every process
 * started here is stopped by pid at the end, also on error or Ctrl-C.
 *
 * Other flags: --warmup S (per row, default 2), --initial-warmup S (per
 * backend before the first row, default 5: V8 compiles the hot paths),
 * --timeout-ms (transaction timeout, default 10000), --snapshot-every (our
 * store, default 100000 as in bench:store), --keep-data, --profile DIR (the
 * store nodes, coordinator and participants run under --cpu-prof, profiles in DIR;
 * summarize them with bench/profile-top.ts),
 * --enlist (begin names no participant and two enlist calls add them: two
 * store writes and two requests more per transaction; by default begin names
 * both, as the client SDK does when it knows them).
 *
 * Ports: --base-port (our store, default 30000, peers at +100),
 * --etcd-base-port (default 30200, peers at +100), --app-base-port (the
 * coordinator, then the participants at +2 and +4; default 30401, a second
 * backend's at +20). 30000-30499 lies below Linux's ephemeral ports and
 * outside the test suites' ranges, so the benchmark can run beside them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanupOnSignal } from '../cleanup.js';
import { machine, progress } from '../output.js';
import { startBackend, storeStarter, type Backend, type BackendOptions } from './backends.js';
import { measureRow } from './measure.js';
import { renderComparison, renderCpu, renderRows, type BenchRow } from './report.js';
import { runRow } from './workload.js';
import { prepareBenchSecure } from './secure.js';

interface Flags {
  readonly clients: readonly number[];
  readonly durationMs: number | undefined;
  readonly txs: number | undefined;
  readonly warmupMs: number;
  readonly initialWarmupMs: number;
  readonly stores: readonly string[];
  readonly timeoutMs: number;
  readonly basePort: number;
  readonly etcdBasePort: number;
  readonly appBasePort: number;
  readonly snapshotEvery: number;
  readonly json: string;
  readonly keepData: boolean;
  readonly profileDir: string | undefined;
  readonly participantsInBegin: boolean;
  readonly secure: boolean;
  readonly compareSecure: boolean;
}

function parseFlagValues(): Flags {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      clients: { type: 'string' },
      duration: { type: 'string' },
      txs: { type: 'string' },
      warmup: { type: 'string' },
      'initial-warmup': { type: 'string' },
      store: { type: 'string', multiple: true },
      'start-etcd': { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      'base-port': { type: 'string' },
      'etcd-base-port': { type: 'string' },
      'app-base-port': { type: 'string' },
      'snapshot-every': { type: 'string' },
      json: { type: 'string' },
      'keep-data': { type: 'boolean' },
      profile: { type: 'string' },
      enlist: { type: 'boolean' },
      secure: { type: 'boolean' },
      'compare-secure': { type: 'boolean' },
    },
  });
  const num = (name: string, text: string | undefined, fallback: number, min: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${text}`);
    return n;
  };
  const clients = (values.clients ?? '1,16,64').split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 4_096) throw new Error(`--clients: bad count ${s}`);
    return n;
  });
  if (values.duration !== undefined && values.txs !== undefined) throw new Error('give --duration or --txs, not both');
  const txs = values.txs === undefined ? undefined : num('txs', values.txs, 0, 1);
  const stores = [...(values.store ?? [])];
  if (values['start-etcd'] === true && !stores.includes('etcd')) stores.push('etcd');
  if (values['compare-secure'] === true && (stores.length > 0 || values.secure === true)) throw new Error('--compare-secure runs the built-in store plain and secure: give no --store and no --secure');
  if (stores.length === 0) stores.push('builtin');
  return {
    clients,
    durationMs: txs === undefined ? num('duration', values.duration, 10, 0.1) * 1_000 : undefined,
    txs: txs === undefined ? undefined : Math.floor(txs),
    warmupMs: num('warmup', values.warmup, 2, 0) * 1_000,
    initialWarmupMs: num('initial-warmup', values['initial-warmup'], 5, 0) * 1_000,
    stores,
    timeoutMs: num('timeout-ms', values['timeout-ms'], 10_000, 100),
    basePort: num('base-port', values['base-port'], 30_000, 1_024),
    etcdBasePort: num('etcd-base-port', values['etcd-base-port'], 30_200, 1_024),
    appBasePort: num('app-base-port', values['app-base-port'], 30_401, 1_024),
    snapshotEvery: num('snapshot-every', values['snapshot-every'], 100_000, 1),
    json: values.json ?? '.artifacts/bench-2pc.json',
    keepData: values['keep-data'] === true,
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
    participantsInBegin: values.enlist !== true,
    secure: values.secure === true,
    compareSecure: values['compare-secure'] === true,
  };
}


function backendOptionsOf(flags: Flags): BackendOptions {
  return {
    basePort: flags.basePort,
    etcdBasePort: flags.etcdBasePort,
    appBasePort: flags.appBasePort,
    snapshotEvery: flags.snapshotEvery,
    profileDir: flags.profileDir,
    maxClients: Math.max(...flags.clients),
    timeoutMs: flags.timeoutMs,
    participantsInBegin: flags.participantsInBegin,
  };
}

/** Stops every backend started here and removes the data (or says where it is kept). */
async function stopBackends(backends: readonly Backend[], dir: string, keepData: boolean): Promise<void> {
  await Promise.all(backends.map((b) => b.close().catch((e: unknown) => progress(`stopping ${b.label}: ${String(e)}`, true))));
  if (keepData) progress(`data and logs kept in ${dir}`, true);
  else rmSync(dir, { recursive: true, force: true });
}

/** Per backend before the first row, so V8 has compiled the hot paths. */
async function warmUp(backends: readonly Backend[], initialWarmupMs: number): Promise<void> {
  for (const b of backends) {
    if (initialWarmupMs <= 0) continue;
    await runRow(b.targets, {
      clients: 16,
      warmupMs: 0,
      durationMs: initialWarmupMs,
      onProgress: (ms, done) => progress(`warming up ${b.label}: ${(ms / 1_000).toFixed(1)} s, ${done} committed`, false),
    });
    progress(`warmed up ${b.label} (${initialWarmupMs / 1_000} s at 16 clients)`, true);
  }
}

function reportRow(label: string, row: BenchRow): void {
  const r = row.result;
  progress(
    `${label} ${r.txPerS.toFixed(0)} tx/s  commit p50 ${r.commit.p50Ms.toFixed(1)} p99 ${r.commit.p99Ms.toFixed(1)} ms  total p50 ${r.total.p50Ms.toFixed(1)} p99 ${r.total.p99Ms.toFixed(1)} ms  store CAS p50 ${row.storeCas.p50Ms.toFixed(1)} ms  ${(row.cost.coordinatorWrites + row.cost.participantWrites).toFixed(2)} writes/tx  ${r.errors} errors${r.errorSamples[0] === undefined ? '' : ` (${r.errorSamples[0]})`}`,
    true,
  );
  progress(`  steps p50: begin ${r.begin.p50Ms.toFixed(1)} ms, work + enlist ${r.enlist.p50Ms.toFixed(1)} ms, commit ${r.commit.p50Ms.toFixed(1)} ms; CPU pressure ${row.machineLoad.cpuPressurePct ?? '?'}%`, true);
  for (const n of row.notes) progress(`  note: ${n}`, true);
}

/** Every client count, the backends back to back for each, so a burst of someone else's load hits both. */
async function runRows(backends: readonly Backend[], flags: Flags): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const total = flags.clients.length * backends.length;
  let k = 0;
  for (const clients of flags.clients) {
    for (const b of backends) {
      k++;
      const label = `[${k}/${total}] ${b.label.padEnd(7)} clients=${String(clients).padEnd(4)}`;
      const plan = { clients, warmupMs: flags.warmupMs, durationMs: flags.durationMs, txs: flags.txs };
      const row = await measureRow(b, plan, label, `${b.label}-${clients}-${Date.now().toString(36)}`);
      reportRow(label, row);
      rows.push(row);
    }
  }
  return rows;
}

function printReport(rows: readonly BenchRow[], backends: readonly Backend[], flags: Flags, loadStart: number[]): void {
  const report = {
    command: `npm run bench:2pc -- ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: { start: loadStart, end: os.loadavg() },
    config: { ...flags, backends: backends.map((b) => ({ label: b.label, kind: b.spec.kind, endpoints: b.spec.endpoints, version: b.version })) },
    rows,
  };
  console.log('');
  console.log(`load average (1, 5, 15 min): ${loadStart.map((l) => l.toFixed(2)).join(', ')} at the start, ${report.loadAverage.end.map((l) => l.toFixed(2)).join(', ')} at the end`);
  console.log('');
  console.log(renderRows(rows));
  console.log('');
  console.log(renderCpu(rows));
  const [first, second] = backends;
  if (first !== undefined && second !== undefined) {
    console.log('');
    console.log(renderComparison(rows, first.label, second.label));
  }
  console.log('');
  console.log(JSON.stringify(report));
  mkdirSync(dirname(resolve(flags.json)), { recursive: true });
  writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
  progress(`JSON written to ${flags.json}`, true);
}

async function main(): Promise<void> {
  const flags = parseFlagValues();
  const dir = mkdtempSync(join(os.tmpdir(), 'raft2pc-bench-2pc-'));
  const backendOptions = backendOptionsOf(flags);
  const secure = flags.secure || flags.compareSecure ? await prepareBenchSecure(dir) : undefined;
  const starters = flags.compareSecure ? [storeStarter('builtin', backendOptions, dir), storeStarter('builtin', backendOptions, dir, secure)] : flags.stores.map((s) => storeStarter(s, backendOptions, dir, secure));
  const labels = starters.map((s) => s.label);
  if (new Set(labels).size !== labels.length) throw new Error(`--store names the same backend twice (${labels.join(', ')})`);
  const backends: Backend[] = [];
  const stop = cleanupOnSignal(
    () => stopBackends(backends, dir, flags.keepData),
    () => progress('interrupted: stopping every process started here', true),
  );
  const loadStart = os.loadavg();
  let rows: BenchRow[];
  try {
    for (const [i, s] of starters.entries()) backends.push(await startBackend(s, backendOptions, dir, 20 * i));
    await warmUp(backends, flags.initialWarmupMs);
    rows = await runRows(backends, flags);
  } finally {
    await stop.run();
    stop.done();
  }
  printReport(rows, backends, flags, loadStart);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
