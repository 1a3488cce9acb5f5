/**
 * The store with a large state on the on-disk engine, side by side with etcd
 * (issue 15, "Targets"):
 *
 *   npm run bench:large [-- --keys 4000000 --value-bytes 512 --duration-s 600 --json FILE --no-etcd]
 *
 * Runs a 3-node cluster of ours (LocalCluster, `--engine lmdb`,
 * `--quota-bytes`), stops it, then a 3-member etcd (Debian's /usr/bin/etcd,
 * bench/etcd.ts, with the same quota and revision-mode auto-compaction that
 * keeps as many revisions as our watch history holds events). One system at a
 * time: at 4M keys etcd's members hold several GB of heap each, which would
 * otherwise take the page cache our engine reads from. Each system runs the
 * phases below, each printing progress every ~5 s and a Markdown row with
 * the 1-minute load average:
 *   1. load: --keys keys of --value-bytes through txns of --batch puts at
 *      --load-clients requests in flight; keys/s and the store's size.
 *   2. memory: every node's RssAnon and Pss (/proc by pid) and their ratio to
 *      the data. LMDB and bbolt map their file: VmRSS counts the OS cache's
 *      pages of it, so memory is judged on RssAnon and Pss, not Rss.
 *   3. overwrite: --clients closed-loop clients overwriting random keys for
 *      --duration-s; ops/s, p50/p99/p999/max, errors, leader changes.
 *   4. restart (ours): SIGKILL a follower, start it again; seconds to
 *      /readyz 200 and to the leader's applied index at the kill.
 *   5. catch-up (ours): a new member with an empty data dir, added as a
 *      learner; seconds to the leader's applied index, snapshot streams pulled.
 * (Memory is read after the load and again after the overwrites.)
 * Ends with one table (ours | etcd | target) and, with --json, every number.
 *
 * Other flags: --batch 128, --quota-bytes 3221225472 (lowered to the node's
 * maximum, with a warning, when it is above), --snapshot-every 100000 (etcd's
 * --snapshot-count), --data-dir DIR (kept; default a temp dir, removed unless
 * --keep-data), --base-port 34400 (ours: clients base+i, peers base+100+i),
 * --etcd-base-port 34600 (clients; peers at +50), --progress-s 5,
 * --restart-timeout-s 300, --catchup-timeout-s 600, --profile DIR (our nodes
 * run under --cpu-prof, profiles in DIR; summarize them with
 * bench/profile-top.ts). Every process started
 * here is stopped by pid at the end, also on error or Ctrl-C.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { etcdVersion, findEtcd } from '../../lib/etcd-binary.js';
import { MAX_QUOTA_BYTES } from '../../store/kv/index.js';
import { LocalCluster, type StoreProcess } from '../../store/node/launcher.js';
import { cleanupOnSignal } from '../cleanup.js';
import { EtcdCluster, etcdLeaderStatus } from '../etcd.js';
import { fmt, machine, progress } from '../output.js';
import { dataBytes, etcdDriver, loadKeys, ourDriver, overwrite, type KvDriver, type LoadResult, type OverwriteResult } from './large-state-load.js';
import { catchUpNewMember, restartFollower, type CatchUpResult, type RestartResult } from './large-state-members.js';
import { procMemory, type ProcMemory } from '../proc-memory.js';
import { ETCD_COMPACTION_FLAGS, etcdWrapper, metric, ourLeader, ourLeaderChanges, ourLeadership, type OurLeadership } from './large-state-probe.js';

const MB = 2 ** 20;
const load1 = (): number => os.loadavg()[0] ?? Number.NaN;

interface Config {
  readonly keys: number;
  readonly valueBytes: number;
  readonly batch: number;
  readonly loadClients: number;
  readonly clients: number;
  readonly durationMs: number;
  readonly quotaBytes: number;
  readonly requestedQuotaBytes: number;
  readonly snapshotEvery: number;
  readonly dataDir: string | undefined;
  readonly keepData: boolean;
  readonly basePort: number;
  readonly etcdBasePort: number;
  readonly etcdBin: string | undefined;
  readonly everyMs: number;
  readonly restartTimeoutMs: number;
  readonly catchUpTimeoutMs: number;
  readonly jsonFile: string | undefined;
  readonly profileDir: string | undefined;
}

function parseConfig(): Config {
  const { values } = parseFlags({
    keys: { type: 'string' }, 'value-bytes': { type: 'string' }, batch: { type: 'string' }, 'load-clients': { type: 'string' }, clients: { type: 'string' },
    'duration-s': { type: 'string' }, 'quota-bytes': { type: 'string' }, 'snapshot-every': { type: 'string' }, 'data-dir': { type: 'string' },
    'keep-data': { type: 'boolean' }, 'base-port': { type: 'string' }, 'etcd-base-port': { type: 'string' }, 'no-etcd': { type: 'boolean' },
    'progress-s': { type: 'string' }, 'restart-timeout-s': { type: 'string' }, 'catchup-timeout-s': { type: 'string' }, json: { type: 'string' }, profile: { type: 'string' },
  });
  const positive = (name: string, fallback: number): number => {
    const n = intFlag(values, name, fallback);
    if (n < 1) throw new Error(`--${name} must be at least 1`);
    return n;
  };
  const requestedQuotaBytes = positive('quota-bytes', 3 * 2 ** 30);
  const quotaBytes = Math.min(requestedQuotaBytes, MAX_QUOTA_BYTES);
  if (quotaBytes < requestedQuotaBytes) process.stderr.write(`warning: the node accepts --quota-bytes up to ${MAX_QUOTA_BYTES} (${(MAX_QUOTA_BYTES / MB).toFixed(0)} MiB), not ${requestedQuotaBytes}: using ${quotaBytes}\n`);
  const etcdBin = values['no-etcd'] === true ? undefined : findEtcd();
  if (values['no-etcd'] !== true && !etcdBin) process.stderr.write('etcd not found (apt-get install etcd-server): running our store only\n');
  const batch = positive('batch', 128);
  if (batch > 128) throw new Error('--batch: at most 128 (our maxTxnOps and etcd --max-txn-ops)');
  return {
    keys: positive('keys', 4_000_000), valueBytes: positive('value-bytes', 512), batch, loadClients: positive('load-clients', 16), clients: positive('clients', 64),
    durationMs: positive('duration-s', 600) * 1000, quotaBytes, requestedQuotaBytes, snapshotEvery: positive('snapshot-every', 100_000),
    dataDir: stringFlag(values, 'data-dir'), keepData: values['keep-data'] === true, basePort: positive('base-port', 34400), etcdBasePort: positive('etcd-base-port', 34600),
    etcdBin, everyMs: positive('progress-s', 5) * 1000, restartTimeoutMs: positive('restart-timeout-s', 300) * 1000, catchUpTimeoutMs: positive('catchup-timeout-s', 600) * 1000, jsonFile: stringFlag(values, 'json'), profileDir: stringFlag(values, 'profile'),
  };
}

interface Systems {
  readonly dir: string;
  readonly cluster: LocalCluster;
  readonly etcd: EtcdCluster | undefined;
  /** Processes started beside the cluster (the catch-up member). */
  readonly extra: StoreProcess[];
  readonly drivers: KvDriver[];
}

function planSystems(cfg: Config): Systems {
  const dir = cfg.dataDir ?? mkdtempSync(join(os.tmpdir(), 'raft2pc-large-'));
  mkdirSync(dir, { recursive: true });
  const extraArgs = ['--engine', 'lmdb', '--quota-bytes', String(cfg.quotaBytes), '--snapshot-every', String(cfg.snapshotEvery)];
  const nodeFlags = cfg.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cfg.profileDir];
  const cluster = new LocalCluster({ nodes: 3, basePort: cfg.basePort, dataDir: join(dir, 'store'), logToFiles: true, extraArgs, nodeFlags });
  const etcd = cfg.etcdBin ? new EtcdCluster(etcdWrapper(dir, cfg.etcdBin, cfg.quotaBytes), join(dir, 'etcd'), cfg.etcdBasePort, cfg.etcdBasePort + 50) : undefined;
  return { dir, cluster, etcd, extra: [], drivers: [] };
}

async function stopSystems(sys: Systems, cfg: Config): Promise<void> {
  for (const d of sys.drivers) d.close();
  await Promise.all([sys.cluster.stop(), sys.etcd?.stop(), ...sys.extra.map((p) => p.stop())]);
  if (cfg.keepData || cfg.dataDir) process.stderr.write(`data and logs kept in ${sys.dir}\n`);
  else rmSync(sys.dir, { recursive: true, force: true });
}

/** etcd's leader (member id, term, URL) and db size, from every member's status. */
function etcdStatus(etcd: EtcdCluster): ReturnType<typeof etcdLeaderStatus> {
  return etcdLeaderStatus(etcd.endpoints, 30_000);
}

interface SystemReport {
  load?: LoadResult & { storeBytes: number | undefined; loadAvg: number };
  memory?: { afterLoad: MemoryRow[]; afterOverwrite?: MemoryRow[] };
  overwrite?: OverwriteResult & { leaderChanges: number; termBefore: number; termAfter: number; leaderChangesMetricMax?: number; loadAvg: number };
  restart?: RestartResult & { leaderChanges: number; termBefore: number; termAfter: number };
  catchUp?: CatchUpResult & { leaderChanges: number; termBefore: number; termAfter: number };
}

type MemoryRow = ProcMemory & { node: string; dataBytes: number; rssAnonRatio: number | null; pssRatio: number | null; loadAvg: number };

function memoryRows(procs: { node: string; pid: number | undefined }[], bytes: number): MemoryRow[] {
  return procs.flatMap(({ node, pid }) => {
    if (pid === undefined) return [];
    const m = procMemory(pid, { pss: true });
    const r = (v: number | null): number | null => (v === null ? null : (v * MB) / bytes);
    return [{ ...m, node, dataBytes: bytes, rssAnonRatio: r(m.rssAnonMb), pssRatio: r(m.pssMb), loadAvg: load1() }];
  });
}

const row = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
const table = (head: readonly string[]): void => {
  console.log(`\n${row(head)}`);
  console.log(row(head.map((_, i) => (i === 0 ? '---' : '---:'))));
};

/** One system as the phases see it: ours (LocalCluster) or etcd, started and stopped in turn. */
interface System {
  readonly name: 'ours' | 'etcd';
  /** A driver to the current leader. */
  driver(clients: number): Promise<KvDriver>;
  /** The store's size after the load, and what that figure is. */
  size(): Promise<{ bytes: number | undefined; label: string }>;
  /** The bytes memory is compared with. */
  readonly memoryBase: (out: SystemReport) => number;
  processes(): { node: string; pid: number | undefined }[];
  /** Who leads now; `since` counts the elections from an earlier reading of the same system. */
  leadership(): Promise<Leadership>;
}

interface Leadership {
  readonly term: number;
  /** Ours: every node's store_leader_changes_total. */
  readonly ours?: OurLeadership;
  since(before: Leadership): { termDelta: number; metricDelta?: number };
}

function ourSystem(sys: Systems, cfg: Config): System {
  return {
    name: 'ours',
    driver: async (clients) => ourDriver((await ourLeader(sys.cluster.endpoints)).url, clients, cfg.valueBytes),
    size: async () => ({ bytes: await metric((await ourLeader(sys.cluster.endpoints)).url, 'store_kv_bytes'), label: 'store_kv_bytes' }),
    memoryBase: (o) => o.load?.storeBytes ?? dataBytes(cfg.keys, cfg.valueBytes),
    processes: () => sys.cluster.processes.map((p) => ({ node: p.member.id, pid: p.pid })),
    leadership: async () => {
      const a = await ourLeadership(sys.cluster.endpoints);
      return {
        term: a.term,
        ours: a,
        since: (b) => {
          const ch = ourLeaderChanges(b.ours ?? a, a);
          return { termDelta: ch.termDelta, metricDelta: ch.maxMetricDelta };
        },
      };
    },
  };
}

function etcdSystem(etcd: EtcdCluster, cfg: Config): System {
  return {
    name: 'etcd',
    driver: async () => etcdDriver((await etcdStatus(etcd)).url, cfg.valueBytes),
    size: async () => ({ bytes: (await etcdStatus(etcd)).dbSizeBytes, label: 'db size' }),
    memoryBase: () => dataBytes(cfg.keys, cfg.valueBytes),
    processes: () => etcd.pids.map((pid, i) => ({ node: `e${i + 1}`, pid })),
    leadership: async () => {
      const { term } = await etcdStatus(etcd);
      return { term, since: (b) => ({ termDelta: term - b.term }) };
    },
  };
}

async function withDriver<T>(s: System, clients: number, sys: Systems, f: (d: KvDriver) => Promise<T>): Promise<T> {
  const d = await s.driver(clients);
  sys.drivers.push(d);
  try {
    return await f(d);
  } finally {
    d.close();
    sys.drivers.splice(sys.drivers.indexOf(d), 1);
  }
}

async function phaseLoad(s: System, sys: Systems, cfg: Config, rep: SystemReport): Promise<void> {
  progress(`${s.name}, phase 1, load: ${cfg.keys} keys of ${cfg.valueBytes} bytes, txns of ${cfg.batch} puts, ${cfg.loadClients} in flight`, true);
  const r = await withDriver(s, cfg.loadClients, sys, (d) => loadKeys(d, cfg.keys, cfg.batch, cfg.loadClients, cfg.everyMs));
  const size = await s.size();
  rep.load = { ...r, storeBytes: size.bytes, loadAvg: load1() };
  table(['system', 'keys', 'seconds', 'keys/s', 'store size MB', 'errors (retried)', 'load avg']);
  console.log(row([s.name, r.keys, fmt(r.seconds, 1), fmt(r.keysPerS, 0), `${fmt((size.bytes ?? NaN) / MB, 1)} (${size.label})`, r.errors, fmt(load1(), 1)]));
  if (r.errorSamples[0]) progress(`  ${s.name}: first error ${r.errorSamples[0]}`, true);
}

function phaseMemory(s: System, rep: SystemReport, when: 'afterLoad' | 'afterOverwrite'): void {
  progress(`${s.name}, phase 2, memory (${when}): judged on RssAnon and Pss, not Rss (LMDB and bbolt map their file: Rss counts its cached pages)`, true);
  const rows = memoryRows(s.processes(), s.memoryBase(rep));
  if (when === 'afterLoad') rep.memory = { afterLoad: rows };
  else if (rep.memory) rep.memory.afterOverwrite = rows;
  table(['system', 'node', 'pid', 'RssAnon MB', 'Pss MB', 'Rss MB (not judged)', 'data MB', 'RssAnon/data', 'Pss/data', 'load avg']);
  for (const m of rows) console.log(row([s.name, m.node, m.pid, fmt(m.rssAnonMb, 0), fmt(m.pssMb, 0), fmt(m.rssMb, 0), fmt(m.dataBytes / MB, 0), `${fmt(m.rssAnonRatio, 2)}x`, `${fmt(m.pssRatio, 2)}x`, fmt(m.loadAvg, 1)]));
}

async function phaseOverwrite(s: System, sys: Systems, cfg: Config, rep: SystemReport): Promise<void> {
  progress(`${s.name}, phase 3, overwrite: ${cfg.clients} clients, random existing keys, ${cfg.durationMs / 1000} s`, true);
  const before = await s.leadership();
  const r = await withDriver(s, cfg.clients, sys, (d) => overwrite(d, cfg.keys, cfg.valueBytes, cfg.clients, cfg.durationMs, cfg.everyMs));
  const after = await s.leadership();
  const { termDelta: changes, metricDelta } = after.since(before);
  rep.overwrite = { ...r, leaderChanges: changes, termBefore: before.term, termAfter: after.term, ...(metricDelta === undefined ? {} : { leaderChangesMetricMax: metricDelta }), loadAvg: load1() };
  const note = `term ${before.term}->${after.term}${metricDelta === undefined ? '' : `; store_leader_changes_total +${metricDelta}`}`;
  table(['system', 'ops/s', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms', 'errors', 'leader changes', 'load avg']);
  console.log(row([s.name, fmt(r.opsPerS, 0), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.p999Ms, 2), fmt(r.maxMs, 1), String(r.errors), `${changes} (${note})`, fmt(load1(), 1)]));
  if (r.errorSamples[0]) progress(`  ${s.name}: first error ${r.errorSamples[0]}`, true);
}

/** Ours: load, memory, overwrite, memory, restart, catch-up; then the cluster stops. */
async function runOurs(sys: Systems, cfg: Config, rep: SystemReport): Promise<void> {
  progress(`starting our 3-node store (lmdb, quota ${cfg.quotaBytes}) on ports ${cfg.basePort}-${cfg.basePort + 2}, data in ${sys.dir}...`, true);
  sys.cluster.start();
  try {
    await sys.cluster.waitForLeader(60_000);
  } catch (e) {
    const dead = sys.cluster.processes.filter((p) => !p.running).map((p) => p.member.id);
    throw new Error(`${e instanceof Error ? e.message : String(e)}${dead.length ? `; exited: ${dead.join(', ')} (see ${sys.cluster.opts.dataDir}/<id>.log)` : ''}`);
  }
  const effective = (await ourLeader(sys.cluster.endpoints)).status.quotaBytes;
  if (effective !== undefined && effective !== cfg.quotaBytes) process.stderr.write(`warning: the nodes report a quota of ${effective} bytes, not the ${cfg.quotaBytes} asked for\n`);
  progress(`  store pids ${sys.cluster.processes.map((p) => p.pid).join(', ')}; quota ${effective ?? '?'} bytes`, true);
  const s = ourSystem(sys, cfg);
  await phaseLoad(s, sys, cfg, rep);
  phaseMemory(s, rep, 'afterLoad');
  await phaseOverwrite(s, sys, cfg, rep);
  phaseMemory(s, rep, 'afterOverwrite');
  await phaseRestartAndCatchUp(sys, cfg, rep);
  progress('stopping our store (etcd runs next, alone on the machine)', true);
  await Promise.all([sys.cluster.stop(), ...sys.extra.map((p) => p.stop())]);
}

async function phaseRestartAndCatchUp(sys: Systems, cfg: Config, rep: SystemReport): Promise<void> {
  progress('ours, phase 4, restart: SIGKILL a follower and start it again', true);
  let before = await ourLeadership(sys.cluster.endpoints);
  const rs = { ...(await restartFollower(sys.cluster, cfg.restartTimeoutMs, cfg.everyMs)), ...(await termsSince(sys, before)) };
  rep.restart = rs;
  table(['node', 'leader applied at kill', 's to /healthz 200', 's to /readyz 200', 's to applied index', 'leader changes', 'load avg']);
  console.log(row([rs.node, rs.leaderAppliedAtKill, fmt(rs.healthzSeconds, 2), fmt(rs.readySeconds, 2), fmt(rs.caughtUpSeconds, 2), `${rs.leaderChanges} (term ${rs.termBefore}->${rs.termAfter})`, fmt(rs.loadAvg, 1)]));
  progress('ours, phase 5, catch-up: a new member with an empty data dir, added as a learner', true);
  before = await ourLeadership(sys.cluster.endpoints);
  const cu = { ...(await catchUpNewMember(sys.cluster, sys.extra, cfg.catchUpTimeoutMs, cfg.everyMs)), ...(await termsSince(sys, before)) };
  rep.catchUp = cu;
  table(['node', 's to start', 'leader applied', 's to applied index', 'snapshot streams pulled', 'stream failures', 'snapshots installed', 'leader changes', 'load avg']);
  console.log(row([cu.node, fmt(cu.startSeconds, 1), cu.leaderApplied, fmt(cu.catchUpSeconds, 2), cu.streamsPulled ?? '-', cu.streamFailures ?? '-', cu.snapshotsInstalled ?? '-', `${cu.leaderChanges} (term ${cu.termBefore}->${cu.termAfter})`, fmt(cu.loadAvg, 1)]));
  if ((cu.streamsPulled ?? 0) === 0) console.log(`\nnote: ${cu.node} caught up from the log (no snapshot stream): the leader still had the whole log it needed (a snapshot every ${cfg.snapshotEvery} entries, and the node keeps 5,000 entries behind each: a stream needs more than snapshot-every + 5,000 applied entries; lower --snapshot-every to see one).`);
}

/** etcd alone: load, memory, overwrite, memory; then it stops. */
async function runEtcd(etcd: EtcdCluster, sys: Systems, cfg: Config, rep: SystemReport): Promise<void> {
  progress(`starting etcd ${etcdVersion(cfg.etcdBin ?? etcd.bin)} (3 members, --quota-backend-bytes ${cfg.quotaBytes} ${ETCD_COMPACTION_FLAGS.join(' ')}) on ports ${cfg.etcdBasePort}-${cfg.etcdBasePort + 2}...`, true);
  etcd.start();
  await etcd.waitHealthy(30_000);
  progress(`  etcd pids ${etcd.pids.join(', ')}`, true);
  const s = etcdSystem(etcd, cfg);
  await phaseLoad(s, sys, cfg, rep);
  phaseMemory(s, rep, 'afterLoad');
  await phaseOverwrite(s, sys, cfg, rep);
  phaseMemory(s, rep, 'afterOverwrite');
  await etcd.stop();
}

/** Elections since `before` (the term's rise). */
async function termsSince(sys: Systems, before: OurLeadership): Promise<{ leaderChanges: number; termBefore: number; termAfter: number }> {
  const after = await ourLeadership(sys.cluster.endpoints);
  return { leaderChanges: after.term - before.term, termBefore: before.term, termAfter: after.term };
}

type Check = 'met' | 'not met' | '-';
const check = (ok: boolean | undefined): Check => (ok === undefined ? '-' : ok ? 'met' : 'not met');
const maxOf = (rows: MemoryRow[] | undefined, k: 'rssAnonRatio' | 'pssRatio' | 'rssAnonMb' | 'pssMb'): number | undefined => {
  const vs = (rows ?? []).map((r) => r[k]).filter((v): v is number => v !== null);
  return vs.length ? Math.max(...vs) : undefined;
};

function summary(out: Record<string, SystemReport>): string[] {
  const o = out['ours'] ?? {};
  const e = out['etcd'];
  const worst = (r: SystemReport | undefined, k: 'rssAnonRatio' | 'pssRatio'): number | undefined => {
    const v = [maxOf(r?.memory?.afterLoad, k), maxOf(r?.memory?.afterOverwrite, k)].filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v) : undefined;
  };
  const lines = [row(['measure', 'ours', 'etcd', 'target', 'ours vs target']), row(['---', '---:', '---:', '---', '---'])];
  const add = (name: string, ours: string, etcd: string, target: string, ok: Check): number => lines.push(row([name, ours, etcd, target, ok]));
  const ratioCell = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(2)}x`);
  add('load keys/s', fmt(o.load?.keysPerS, 0), fmt(e?.load?.keysPerS, 0), '-', '-');
  add('store size MB (ours store_kv_bytes, etcd db size)', fmt((o.load?.storeBytes ?? NaN) / MB, 1), fmt((e?.load?.storeBytes ?? NaN) / MB, 1), '-', '-');
  const anon = worst(o, 'rssAnonRatio');
  const pss = worst(o, 'pssRatio');
  add('worst node RssAnon / data', ratioCell(anon), ratioCell(worst(e, 'rssAnonRatio')), '<= 1.5x', check(anon === undefined ? undefined : anon <= 1.5));
  add('worst node Pss / data', ratioCell(pss), ratioCell(worst(e, 'pssRatio')), '<= 1.5x', check(pss === undefined ? undefined : pss <= 1.5));
  const ow = o.overwrite;
  const ew = e?.overwrite;
  add('overwrite ops/s', fmt(ow?.opsPerS, 0), fmt(ew?.opsPerS, 0), ">= etcd's", check(ow && ew ? ow.opsPerS >= ew.opsPerS : undefined));
  add('overwrite p50 / p99 ms', `${fmt(ow?.p50Ms, 2)} / ${fmt(ow?.p99Ms, 2)}`, `${fmt(ew?.p50Ms, 2)} / ${fmt(ew?.p99Ms, 2)}`, '-', '-');
  add('overwrite p999 ms', fmt(ow?.p999Ms, 2), fmt(ew?.p999Ms, 2), '<= 100 ms', check(ow ? ow.p999Ms <= 100 : undefined));
  add('overwrite max ms', fmt(ow?.maxMs, 1), fmt(ew?.maxMs, 1), '-', '-');
  add('overwrite errors', String(ow?.errors ?? '-'), String(ew?.errors ?? '-'), '-', '-');
  add('leader changes (overwrite)', String(ow?.leaderChanges ?? '-'), String(ew?.leaderChanges ?? '-'), '0', check(ow ? ow.leaderChanges === 0 : undefined));
  add('restart: s to /readyz 200', fmt(o.restart?.readySeconds, 1), '-', '<= 10 s', check(o.restart ? o.restart.readySeconds <= 10 : undefined));
  add("restart: s to the leader's applied index", fmt(o.restart?.caughtUpSeconds, 1), '-', '-', '-');
  add('catch-up of a new member, s', fmt(o.catchUp?.catchUpSeconds, 1), '-', '<= 120 s', check(o.catchUp ? o.catchUp.catchUpSeconds <= 120 : undefined));
  add('leader changes (restart / catch-up)', `${o.restart?.leaderChanges ?? '-'} / ${o.catchUp?.leaderChanges ?? '-'}`, '-', '0', check(o.restart && o.catchUp ? o.restart.leaderChanges + o.catchUp.leaderChanges === 0 : undefined));
  add('catch-up: snapshot streams pulled', String(o.catchUp?.streamsPulled ?? '-'), '-', '>= 1 (by stream)', check(o.catchUp ? (o.catchUp.streamsPulled ?? 0) >= 1 : undefined));
  add('1-min load avg (load / overwrite / restart / catch-up)', [o.load?.loadAvg, ow?.loadAvg, o.restart?.loadAvg, o.catchUp?.loadAvg].map((v) => fmt(v, 1)).join(' / '), [e?.load?.loadAvg, ew?.loadAvg].map((v) => fmt(v, 1)).join(' / '), '-', '-');
  return lines;
}

async function main(): Promise<void> {
  const cfg = parseConfig();
  const sys = planSystems(cfg);
  const stop = cleanupOnSignal(
    () => stopSystems(sys, cfg),
    () => process.stderr.write('\ninterrupted: stopping every process started here\n'),
  );
  const started = new Date().toISOString();
  const loadStart = os.loadavg();
  const out: Record<string, SystemReport> = {};
  let failure: unknown;
  try {
    const logical = dataBytes(cfg.keys, cfg.valueBytes);
    if (logical > cfg.quotaBytes) process.stderr.write(`warning: ${(logical / MB).toFixed(0)} MiB of keys and values do not fit the quota of ${(cfg.quotaBytes / MB).toFixed(0)} MiB: the load will be refused (store_full) before the end\n`);
    await runOurs(sys, cfg, (out['ours'] = {}));
    if (sys.etcd) await runEtcd(sys.etcd, sys, cfg, (out['etcd'] = {}));
  } catch (e) {
    failure = e;
  } finally {
    await stop.run();
    stop.done();
  }
  console.log('\nSummary (memory judged on RssAnon and Pss, not Rss: the engines map their database file)\n');
  console.log(summary(out).join('\n'));
  const { keys, valueBytes, batch, loadClients, clients, durationMs, quotaBytes, requestedQuotaBytes, snapshotEvery, basePort, etcdBasePort } = cfg;
  const report = {
    command: `npm run bench:large -- ${process.argv.slice(2).join(' ')}`.trim(),
    date: started,
    machine: machine(),
    loadAverage: { start: loadStart, end: os.loadavg() },
    config: { keys, valueBytes, batch, loadClients, clients, durationMs, quotaBytes, requestedQuotaBytes, snapshotEvery, basePort, etcdBasePort, dataBytes: dataBytes(keys, valueBytes), engine: 'lmdb', etcdVersion: cfg.etcdBin ? etcdVersion(cfg.etcdBin) : null },
    error: failure === undefined ? null : failure instanceof Error ? failure.message : String(failure),
    ours: out['ours'] ?? null,
    etcd: out['etcd'] ?? null,
  };
  if (cfg.jsonFile) writeFileSync(cfg.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  if (failure !== undefined) throw failure;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
