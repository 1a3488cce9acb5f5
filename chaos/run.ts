/**
 * One chaos run, start to end:
 *
 * 1. start the processes (chaos/cluster.ts) with fault routes enabled;
 * 2. for `durationS`: transfers and audits (workload.ts), a register
 *    history on store keys (lin-workload.ts), the 2PC key watch
 *    (tx-watch.ts), bank polling (bank-observer.ts), and the nemesis
 *    (nemesis.ts), with a progress line every few seconds;
 * 3. heal everything and wait, bounded, until nothing is in flight;
 * 4. check (checks.ts), write the report, stop every process by pid.
 *
 * Every wait has a deadline; every loop a bound.
 */
import { setMaxListeners } from 'node:events';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openTxStore, parseStoreSpec, type OpenedStore } from '../coordinator/txstore/index.js';
import { serviceJson, setServiceHeaders } from './service-http.js';
import { keepAliveTimers } from '../lib/timers.js';
import { DEFAULT_BANKS, demoLayout } from '../demo/supervisor/layout.js';
import { operatorHeaders, prepareSecure, type SecureSetup } from '../demo/supervisor/secure.js';
import { secureUsersOf } from '../demo/supervisor/supervisor.js';
import { setProcessClientTls } from '../lib/tls.js';
import { lastLines } from '../demo/supervisor/process.js';
import { checkHistory, HistoryRecorder, type CheckResult } from '../test/lincheck/index.js';
import { BankClient } from './bank-client.js';
import { BankObserver, type BankSummary } from './bank-observer.js';
import { runChecks, type CheckOutcome, type CheckReport } from './checks.js';
import { ChaosCluster } from './cluster.js';
import { runLinWorkload } from './lin-workload.js';
import { HEAL_TIMEOUT_MS, runNemesis } from './nemesis.js';
import { replayCommand, type ChaosOptions } from './options.js';
import { RunRecord } from './record.js';
import { writeReport } from './report.js';
import { scanStore, type StoreScan } from './store-scan.js';
import { TxWatch } from './tx-watch.js';
import { runWorkload } from './workload.js';

export interface ChaosSummary {
  readonly seed: number;
  readonly transfers: number;
  readonly committed: number;
  readonly aborted: number;
  readonly notBegun: number;
  readonly audits: number;
  readonly auditsAttempted: number;
  readonly faults: number;
  readonly faultsByKind: Readonly<Record<string, number>>;
  readonly violations: number;
  readonly inDoubt: number;
  readonly checks: readonly CheckOutcome[];
  readonly violationList: readonly { readonly check: string; readonly message: string }[];
  readonly linearizability: string;
  readonly finalLine: string;
  readonly replay: string;
  readonly report: string;
  readonly reportJson: string;
  readonly runDir: string;
}

const START_TIMEOUT_MS = 60_000;
const PROGRESS_EVERY_MS = 5_000;
/** After the load stops: how long everything may take to be decided, applied and quiet. */
const QUIESCENCE_TIMEOUT_MS = 120_000;
const LIN_CLIENTS = 3;
const LIN_CHECK_TIMEOUT_MS = 120_000;

/** The run's folder, tags and log, shared by its steps. */
interface RunSetup {
  readonly o: ChaosOptions;
  readonly out: (line: string) => void;
  readonly started: Date;
  /** The run's data and logs; `${runDir}.html` and `${runDir}.json` are its report. */
  readonly runDir: string;
  readonly runTag: string;
  readonly replay: string;
  /** A line stamped with the run time: since the load started once `record` is set, since start-up before. */
  readonly log: (line: string) => void;
  record: RunRecord | undefined;
}

/** The run's folder and log, and the opening lines: what runs, and how to replay it. */
function beginRun(o: ChaosOptions, out: (line: string) => void): RunSetup {
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const runDir = join(resolve(o.outDir), `${o.seed}-${stamp}`);
  mkdirSync(runDir, { recursive: true });
  const replay = replayCommand(o);
  // Run time starts when the load starts; start-up is logged on its own clock.
  const t0 = performance.now();
  const setup: RunSetup = {
    o,
    out,
    started,
    runDir,
    runTag: `${o.seed}-${started.getTime().toString(36)}`,
    replay,
    log: (line) => out(`[${((setup.record?.now() ?? performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`),
    record: undefined,
  };
  out(`chaos: seed=${o.seed} duration=${o.durationS}s faults=${o.faults.join(',') || 'none'} store=${o.store} clients=${o.clients}${o.rate === undefined ? '' : ` rate=${o.rate}/s`} data=${runDir}`);
  out(`chaos: replay with: ${replay}   (the fault schedule follows the seed; timing does not replay)`);
  if (o.store === 'etcd') out('chaos: --store etcd: store-node faults (kill, pause, partition and disk on store nodes) do not apply; coordinators and banks are faulted');
  return setup;
}

/** What watches the system during the load, and what the checks read afterwards. */
interface Observers {
  readonly rec: RunRecord;
  readonly watch: TxWatch;
  /** Ends tx-events.ndjson, where the watch writes every event. */
  closeEvents(): Promise<void>;
  readonly observer: BankObserver;
  readonly recorder: HistoryRecorder;
  /** From now on a crash is still a violation, but nothing is restarted. */
  stopRestarting(): void;
}

async function startObservers(setup: RunSetup, rec: RunRecord, cluster: ChaosCluster, opened: OpenedStore): Promise<Observers> {
  const events = createWriteStream(join(setup.runDir, 'tx-events.ndjson'));
  const watch = new TxWatch(opened.store, (v) => rec.violation(v), (e) => void events.write(`${JSON.stringify({ t: Math.round(rec.now()), ...e })}\n`));
  await watch.start();
  const log = setup.log;
  // A crash is a violation; the process is started again (as systemd would) so the run goes on.
  let ending = false;
  cluster.onCrash = (name, what) => {
    const tail = lastLines(cluster.supervisor.process(name).logSinceStart(), 12);
    // A start that lost its port to an outgoing connection is retried by the supervisor: not a crash.
    if (/EADDRINUSE/.test(tail)) return log(`${name} lost its port while starting; the supervisor tries again`);
    rec.violation({ check: 'crash', message: `${name} ${what} at ${(rec.now() / 1000).toFixed(1)} s; log ${cluster.logFile(name)} ends:\n${tail}` });
    log(`! ${name} ${what}; restarting it`);
    if (!ending) void restartAfterCrash(cluster, name, log);
  };
  return {
    rec,
    watch,
    closeEvents: () => new Promise<void>((done) => events.end(done)),
    observer: new BankObserver(cluster.banks, (v) => rec.violation(v), () => rec.now()),
    recorder: new HistoryRecorder(),
    stopRestarting: () => {
      ending = true;
    },
  };
}

/**
 * Transfers and audits, the register history, bank polling and the nemesis,
 * until the duration is up (or Ctrl-C); returns the run time the load ended.
 * The nemesis stops drawing faults then too, but always lifts the one in force.
 */
async function runLoad(setup: RunSetup, cluster: ChaosCluster, obs: Observers, abort: AbortSignal): Promise<number> {
  const { o, log, runTag } = setup;
  const rec = obs.rec;
  const load = new AbortController();
  // Paced transfer clients (--rate) each wait on the signal, beside every other task.
  setMaxListeners(o.clients + 16, load.signal);
  const onAbort = (): void => load.abort();
  abort.addEventListener('abort', onAbort, { once: true });
  const stopTimer = setTimeout(() => load.abort(), o.durationS * 1000);
  const progress = setInterval(() => {
    const p = rec.snapshotProgress();
    log(`transfers=${p.transfers} committed=${p.committed} aborted=${p.aborted} unknown=${p.unknown} audits=${p.audits} faults: ${p.faults.length === 0 ? '-' : p.faults.join(', ')}`);
  }, PROGRESS_EVERY_MS);
  const accounts = DEFAULT_BANKS.flatMap((b) => Object.keys(b.accounts).map((account) => ({ bank: b.name, account })));
  const client = new BankClient(cluster.coordinators, cluster.banks);
  const tasks = [
    runWorkload({ client, record: rec, seed: o.seed, runTag, clients: o.clients, rate: o.rate, coordinators: cluster.coordinators.length, accounts, auditEveryMs: o.auditEveryMs, signal: load.signal }),
    runLinWorkload({ credentials: cluster.storeCredentials, storeSpec: cluster.storeSpec, clients: LIN_CLIENTS, seed: o.seed, runTag, recorder: obs.recorder, now: () => rec.now(), signal: load.signal }),
    obs.observer.run(load.signal),
    runNemesis({ cluster, record: rec, seed: o.seed, faults: o.faults, stopAtMs: o.durationS * 1000, log, signal: load.signal }),
  ];
  await Promise.all(tasks);
  obs.stopRestarting();
  rec.clearActive();
  clearTimeout(stopTimer);
  clearInterval(progress);
  abort.removeEventListener('abort', onAbort);
  const loadEndMs = rec.now();
  rec.snapshotProgress();
  log('load stopped; healing every fault');
  return loadEndMs;
}

/** Lifts every fault, then waits (bounded) until nothing is in flight; true when it got quiet. */
async function healAndSettle(setup: RunSetup, cluster: ChaosCluster, obs: Observers, opened: OpenedStore, abort: AbortSignal): Promise<boolean> {
  const problems = await cluster.healAll(HEAL_TIMEOUT_MS);
  for (const p of problems) obs.rec.violation({ check: 'liveness', message: `at the end: ${p}` });
  const quiet = await waitQuiescent(cluster, obs.observer, opened, QUIESCENCE_TIMEOUT_MS, abort);
  setup.log(quiet ? 'quiescent: every transaction decided and applied' : `not quiescent within ${QUIESCENCE_TIMEOUT_MS} ms; checking what there is`);
  return quiet;
}

interface Verdict {
  readonly report: CheckReport;
  readonly lin: CheckResult;
  readonly linFile: string;
  readonly scan: StoreScan;
  readonly opening: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** The final reads (banks, coordinators, the store, the register history), then the checks. */
async function checkRun(setup: RunSetup, cluster: ChaosCluster, obs: Observers, opened: OpenedStore): Promise<Verdict> {
  const { rec, observer } = obs;
  await observer.pollOnce();
  const finalBalances = new Map(await Promise.all(cluster.banks.map(async (b) => [b.name, await observer.balances(b)] as const)));
  const bankSummaries = new Map(await Promise.all(cluster.banks.map(async (b) => [b.name, await observer.summary(b)] as const)));
  const coordinatorInDoubt = await listInDoubt(cluster);
  const scan = await scanStore(opened.store, (v) => rec.violation(v));
  await obs.watch.stop();
  await obs.closeEvents();
  const history = obs.recorder.toJSON();
  const linFile = join(setup.runDir, 'history.json');
  writeFileSync(linFile, JSON.stringify(history));
  setup.log(`checking linearizability of ${history.operations.length} store operations`);
  const lin = checkHistory(history, { timeoutMs: LIN_CHECK_TIMEOUT_MS });
  const opening = new Map(DEFAULT_BANKS.map((b) => [b.name, new Map(Object.entries(b.accounts))] as const));
  const report = runChecks({ record: rec, opening, finalBalances, bankSummaries, coordinatorInDoubt, scan, observer, lin, linFile });
  return { report, lin, linFile, scan, opening };
}

function summarize(setup: RunSetup, rec: RunRecord, v: Verdict): ChaosSummary {
  const { report, lin } = v;
  const faults = rec.faults.filter((f) => f.note === undefined || !f.note.startsWith('not injected')).length;
  const audits = rec.audits.filter((a) => a.total !== null).length;
  const violations = rec.violations.length;
  return {
    seed: setup.o.seed,
    transfers: rec.transfers.length,
    committed: report.outcomes.committed,
    aborted: report.outcomes.aborted,
    notBegun: report.outcomes.notBegun,
    audits,
    auditsAttempted: rec.audits.length,
    faults,
    faultsByKind: rec.faultsByKind(),
    violations,
    inDoubt: report.inDoubt,
    checks: report.checks,
    violationList: rec.violations.map((x) => ({ check: x.check, message: x.message })),
    linearizability: lin.result,
    finalLine: `transfers=${rec.transfers.length} committed=${report.outcomes.committed} aborted=${report.outcomes.aborted} audits=${audits} faults=${faults} violations=${violations} in_doubt=${report.inDoubt}`,
    replay: setup.replay,
    report: `${setup.runDir}.html`,
    reportJson: `${setup.runDir}.json`,
    runDir: setup.runDir,
  };
}

/** The HTML report and its JSON data. */
function writeRunReport(setup: RunSetup, cluster: ChaosCluster, obs: Observers, v: Verdict, summary: ChaosSummary, loadEndMs: number, quiet: boolean): void {
  const { lin, linFile, report } = v;
  const expectedTotal = [...v.opening.values()].reduce((s, m) => s + [...m.values()].reduce((a, b) => a + b, 0), 0);
  const extra = { watch: obs.watch.stats, lin: { result: lin.result, operations: lin.operations, elapsedMs: lin.elapsedMs, limit: lin.limit ?? null, file: linFile }, atomicity: report.atomicity, outcomes: report.outcomes, storeScan: summarizeScan(v.scan), bankPolls: obs.observer.polls, lockedOverBalance: obs.observer.lockedOverBalance, quiescent: quiet };
  const input = { options: setup.o, record: obs.rec, checks: report.checks, finalLine: summary.finalLine, replay: setup.replay, startedAt: setup.started.toISOString(), loadEndMs, expectedTotal, processes: cluster.managedNames, extra };
  writeReport(input, summary.report, summary.reportJson);
}

/** The checks, the violations (the first 50), and where the report, data and logs are. */
function printResults(setup: RunSetup, obs: Observers, v: Verdict, summary: ChaosSummary): void {
  const { out } = setup;
  const { rec, observer, watch } = obs;
  const n = summary.violations;
  out('');
  for (const c of v.report.checks) out(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(20)} ${c.detail}`);
  for (const x of rec.violations.slice(0, 50)) out(`VIOLATION ${x.check}: ${x.message}`);
  if (n > 50) out(`... and ${n - 50} more violations (see the report)`);
  out(`faults by kind: ${Object.entries(summary.faultsByKind).map(([k, c]) => `${k}=${c}`).join(' ')}; transfers not begun=${v.report.outcomes.notBegun}; client saw unknown=${rec.counts().unknown}; audits attempted=${rec.audits.length}`);
  out(`banks: ${observer.polls.ok} log polls (${observer.polls.failed} unanswered); ${observer.lockedOverBalance.count} account reads showed more locked than the balance (a committed debit not yet released; not a violation)`);
  out(`watch: ${watch.stats.events} events, ${watch.stats.decisionsChecked} decisions checked against votes, ${watch.stats.orphanWrites} late writes after GC, ${watch.stats.gaps} gaps`);
  out(`report: ${summary.report}`);
  out(`data:   ${summary.reportJson}`);
  out(`logs:   ${join(setup.runDir, 'logs')}`);
  out(`seed=${setup.o.seed}; replay: ${setup.replay}`);
}

export async function runChaos(o: ChaosOptions, out: (line: string) => void, abort: AbortSignal): Promise<ChaosSummary> {
  const setup = beginRun(o, out);
  const secure = o.secure ? await secureRun(setup) : undefined;
  const cluster = new ChaosCluster({ dataDir: setup.runDir, basePort: o.basePort, store: o.store, startTimeoutMs: START_TIMEOUT_MS, ...(secure === undefined ? {} : { secure }) });
  const exitHook = (): void => cluster.killNow();
  process.once('exit', exitHook);
  let opened: OpenedStore | undefined;
  try {
    await cluster.start();
    setup.log(`started ${cluster.managedNames.join(', ')}${o.store === 'etcd' ? ' on etcd' : ''}; the load starts now (t=0)`);
    const rec = new RunRecord();
    setup.record = rec;
    opened = await openTxStore(parseStoreSpec(cluster.storeSpec), 'chaos-runner', cluster.storeEnv);
    const obs = await startObservers(setup, rec, cluster, opened);
    const loadEndMs = await runLoad(setup, cluster, obs, abort);
    const quiet = await healAndSettle(setup, cluster, obs, opened, abort);
    const verdict = await checkRun(setup, cluster, obs, opened);
    const summary = summarize(setup, rec, verdict);
    writeRunReport(setup, cluster, obs, verdict, summary, loadEndMs, quiet);
    printResults(setup, obs, verdict, summary);
    if (o.summaryFile !== undefined) writeFileSync(o.summaryFile, `${JSON.stringify(summary, null, 1)}\n`);
    await cluster.stop();
    // Data folders are big and useless after a clean run; logs and the history stay.
    if (summary.violations === 0 && !o.keep) for (const d of ['store', 'banks', 'etcd']) rmSync(join(setup.runDir, d), { recursive: true, force: true });
    return summary;
  } finally {
    await opened?.close().catch(() => {});
    await cluster.stop().catch(() => cluster.killNow());
    process.removeListener('exit', exitHook);
  }
}

/**
 * The secure composition (demo/supervisor/secure.ts) for this run, in its
 * folder; the runner's own HTTP clients (fetchJson, store clients) then
 * trust the run's CA and show its client certificate.
 */
async function secureRun(setup: RunSetup): Promise<SecureSetup> {
  const secure = await prepareSecure(join(setup.runDir, 'secure'), secureUsersOf(demoLayout(setup.o.basePort)));
  setProcessClientTls(secure.clientTls);
  setServiceHeaders(operatorHeaders(secure));
  setup.log(`secure: TLS on every link, store auth on, bearer tokens on the coordinators and banks; CA ${secure.certs.caFile}`);
  return secure;
}

/**
 * Quiet: every coordinator and bank healthy, the store serving (a leader),
 * nothing undecided in the store, and no bank holding a prepared
 * transaction or a lock. A store node that did not come back is a liveness
 * violation of its own (the final heal reports it); it does not keep the
 * checks from running on what the majority holds.
 */
async function waitQuiescent(cluster: ChaosCluster, observer: BankObserver, opened: OpenedStore, timeoutMs: number, abort: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !abort.aborted) {
    if (await isQuiescent(cluster, observer, opened)) return true;
    await keepAliveTimers.sleep(1_000, abort);
  }
  return false;
}

async function isQuiescent(cluster: ChaosCluster, observer: BankObserver, opened: OpenedStore): Promise<boolean> {
  const services = await Promise.all(cluster.serviceNames.map((n) => cluster.supervisor.process(n).healthy()));
  if (!services.every(Boolean) || (cluster.storeNodes.length > 0 && (await cluster.leader()) === undefined)) return false;
  const summaries: (BankSummary | undefined)[] = await Promise.all(cluster.banks.map((b) => observer.summary(b)));
  if (summaries.some((s) => s === undefined || s.inDoubt > 0 || s.holds > 0 || s.readLocks > 0)) return false;
  try {
    const scan = await scanStore(opened.store, () => {}); // violations are counted by the final scan only
    return [...scan.txs.values()].every((t) => t.outcome !== 'open');
  } catch {
    return false;
  }
}

async function restartAfterCrash(cluster: ChaosCluster, name: string, log: (line: string) => void): Promise<void> {
  await keepAliveTimers.sleep(1_000);
  try {
    if (cluster.state(name) !== 'running' && cluster.state(name) !== 'paused') await cluster.startProcess(name);
  } catch (e) {
    log(`! ${name} did not restart after its crash: ${(e as Error).message}`);
  }
}

/** Transactions the coordinators list as in doubt; null if none answered. */
async function listInDoubt(cluster: ChaosCluster): Promise<number | null> {
  let answered = false;
  let most = 0;
  for (const c of cluster.coordinators) {
    const r = await serviceJson(`${c.url}/v1/transactions?state=in-doubt&limit=1000`, { timeoutMs: 10_000 });
    if (r.status !== 200) continue;
    answered = true;
    most = Math.max(most, (r.body as { transactions: unknown[] }).transactions.length);
  }
  return answered ? most : null;
}

function summarizeScan(scan: StoreScan): Record<string, number> {
  const out: Record<string, number> = { live: 0, collected: 0, committed: 0, aborted: 0, open: 0, liveKeys: scan.liveKeys };
  for (const t of scan.txs.values()) {
    out[t.source] = (out[t.source] ?? 0) + 1;
    out[t.outcome] = (out[t.outcome] ?? 0) + 1;
  }
  return out;
}
