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
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openTxStore, parseStoreSpec, type OpenedStore } from '../coordinator/txstore/index.js';
import { fetchJson, pause } from '../demo/common/http.js';
import { DEFAULT_BANKS } from '../demo/supervisor/layout.js';
import { checkHistory, HistoryRecorder } from '../test/lincheck/index.js';
import { BankClient } from './bank-client.js';
import { BankObserver, type BankSummary } from './bank-observer.js';
import { runChecks, type CheckOutcome } from './checks.js';
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

export async function runChaos(o: ChaosOptions, out: (line: string) => void, abort: AbortSignal): Promise<ChaosSummary> {
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const outDir = resolve(o.outDir);
  const runDir = join(outDir, `${o.seed}-${stamp}`);
  mkdirSync(runDir, { recursive: true });
  const runTag = `${o.seed}-${started.getTime().toString(36)}`;
  const replay = replayCommand(o);
  // Run time starts when the load starts; start-up is logged on its own clock.
  const t0 = performance.now();
  let record: RunRecord | undefined;
  const log = (line: string): void => out(`[${((record?.now() ?? performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  out(`chaos: seed=${o.seed} duration=${o.durationS}s faults=${o.faults.join(',') || 'none'} store=${o.store} clients=${o.clients} data=${runDir}`);
  out(`chaos: replay with: ${replay}   (the fault schedule follows the seed; timing does not replay)`);
  if (o.store === 'etcd') out('chaos: --store etcd: store-node faults (kill, pause, partition and disk on store nodes) do not apply; coordinators and banks are faulted');

  const cluster = new ChaosCluster({ dataDir: runDir, basePort: o.basePort, store: o.store, startTimeoutMs: START_TIMEOUT_MS });
  const exitHook = (): void => cluster.killNow();
  process.once('exit', exitHook);
  let opened: OpenedStore | undefined;
  try {
    await cluster.start();
    log(`started ${cluster.managedNames.join(', ')}${o.store === 'etcd' ? ' on etcd' : ''}; the load starts now (t=0)`);
    const rec = new RunRecord();
    record = rec;
    opened = await openTxStore(parseStoreSpec(cluster.storeSpec), 'chaos-runner');
    const events = createWriteStream(join(runDir, 'tx-events.ndjson'));
    const watch = new TxWatch(opened.store, (v) => rec.violation(v), (e) => void events.write(`${JSON.stringify({ t: Math.round(rec.now()), ...e })}\n`));
    await watch.start();
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
    const observer = new BankObserver(cluster.banks, (v) => rec.violation(v), () => rec.now());
    const recorder = new HistoryRecorder();

    // The load stops at the duration (or on Ctrl-C); the nemesis stops drawing faults then too, but
    // always lifts the one in force.
    const load = new AbortController();
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
      runWorkload({ client, record: rec, seed: o.seed, runTag, clients: o.clients, coordinators: cluster.coordinators.length, accounts, auditEveryMs: o.auditEveryMs, signal: load.signal }),
      runLinWorkload({ storeSpec: cluster.storeSpec, clients: LIN_CLIENTS, seed: o.seed, runTag, recorder, now: () => rec.now(), signal: load.signal }),
      observer.run(load.signal),
      runNemesis({ cluster, record: rec, seed: o.seed, faults: o.faults, stopAtMs: o.durationS * 1000, log, signal: load.signal }),
    ];
    await Promise.all(tasks);
    ending = true;
    rec.clearActive();
    clearTimeout(stopTimer);
    clearInterval(progress);
    abort.removeEventListener('abort', onAbort);
    const loadEndMs = rec.now();
    rec.snapshotProgress();
    log('load stopped; healing every fault');

    const problems = await cluster.healAll(HEAL_TIMEOUT_MS);
    for (const p of problems) rec.violation({ check: 'liveness', message: `at the end: ${p}` });
    const quiet = await waitQuiescent(cluster, observer, opened, QUIESCENCE_TIMEOUT_MS, abort);
    log(quiet ? 'quiescent: every transaction decided and applied' : `not quiescent within ${QUIESCENCE_TIMEOUT_MS} ms; checking what there is`);

    // Final reads, then the checks.
    await observer.pollOnce();
    const finalBalances = new Map(await Promise.all(cluster.banks.map(async (b) => [b.name, await observer.balances(b)] as const)));
    const bankSummaries = new Map(await Promise.all(cluster.banks.map(async (b) => [b.name, await observer.summary(b)] as const)));
    const coordinatorInDoubt = await listInDoubt(cluster);
    const scan = await scanStore(opened.store, (v) => rec.violation(v));
    await watch.stop();
    await new Promise<void>((done) => events.end(done));
    const history = recorder.toJSON();
    const linFile = join(runDir, 'history.json');
    writeFileSync(linFile, JSON.stringify(history));
    log(`checking linearizability of ${history.operations.length} store operations`);
    const lin = checkHistory(history, { timeoutMs: LIN_CHECK_TIMEOUT_MS });
    const opening = new Map(DEFAULT_BANKS.map((b) => [b.name, new Map(Object.entries(b.accounts))] as const));
    const report = runChecks({ record: rec, opening, finalBalances, bankSummaries, coordinatorInDoubt, scan, observer, lin, linFile });

    const faultsByKind = rec.faultsByKind();
    const faults = rec.faults.filter((f) => f.note === undefined || !f.note.startsWith('not injected')).length;
    const audits = rec.audits.filter((a) => a.total !== null).length;
    const v = rec.violations.length;
    const finalLine = `transfers=${rec.transfers.length} committed=${report.outcomes.committed} aborted=${report.outcomes.aborted} audits=${audits} faults=${faults} violations=${v} in_doubt=${report.inDoubt}`;
    const base = join(outDir, `${o.seed}-${stamp}`);
    const htmlPath = `${base}.html`;
    const jsonPath = `${base}.json`;
    const expectedTotal = [...opening.values()].reduce((s, m) => s + [...m.values()].reduce((a, b) => a + b, 0), 0);
    const extra = { watch: watch.stats, lin: { result: lin.result, operations: lin.operations, elapsedMs: lin.elapsedMs, limit: lin.limit ?? null, file: linFile }, atomicity: report.atomicity, outcomes: report.outcomes, storeScan: summarizeScan(scan), bankPolls: observer.polls, lockedOverBalance: observer.lockedOverBalance, quiescent: quiet };
    writeReport({ options: o, record: rec, checks: report.checks, finalLine, replay, startedAt: started.toISOString(), loadEndMs, expectedTotal, processes: cluster.managedNames, extra }, htmlPath, jsonPath);

    out('');
    for (const c of report.checks) out(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(20)} ${c.detail}`);
    for (const x of rec.violations.slice(0, 50)) out(`VIOLATION ${x.check}: ${x.message}`);
    if (v > 50) out(`... and ${v - 50} more violations (see the report)`);
    out(`faults by kind: ${Object.entries(faultsByKind).map(([k, n]) => `${k}=${n}`).join(' ')}; transfers not begun=${report.outcomes.notBegun}; client saw unknown=${rec.counts().unknown}; audits attempted=${rec.audits.length}`);
    out(`banks: ${observer.polls.ok} log polls (${observer.polls.failed} unanswered); ${observer.lockedOverBalance.count} account reads showed more locked than the balance (a committed debit not yet released; not a violation)`);
    out(`watch: ${watch.stats.events} events, ${watch.stats.decisionsChecked} decisions checked against votes, ${watch.stats.orphanWrites} late writes after GC, ${watch.stats.gaps} gaps`);
    out(`report: ${htmlPath}`);
    out(`data:   ${jsonPath}`);
    out(`logs:   ${join(runDir, 'logs')}`);
    out(`seed=${o.seed}; replay: ${replay}`);
    const summary: ChaosSummary = {
      seed: o.seed,
      transfers: rec.transfers.length,
      committed: report.outcomes.committed,
      aborted: report.outcomes.aborted,
      notBegun: report.outcomes.notBegun,
      audits,
      auditsAttempted: rec.audits.length,
      faults,
      faultsByKind,
      violations: v,
      inDoubt: report.inDoubt,
      checks: report.checks,
      violationList: rec.violations.map((x) => ({ check: x.check, message: x.message })),
      linearizability: lin.result,
      finalLine,
      replay,
      report: htmlPath,
      reportJson: jsonPath,
      runDir,
    };
    if (o.summaryFile !== undefined) writeFileSync(o.summaryFile, `${JSON.stringify(summary, null, 1)}\n`);
    await cluster.stop();
    // Data folders are big and useless after a clean run; logs and the history stay.
    if (v === 0 && !o.keep) for (const d of ['store', 'banks', 'etcd']) rmSync(join(runDir, d), { recursive: true, force: true });
    return summary;
  } finally {
    await opened?.close().catch(() => {});
    await cluster.stop().catch(() => cluster.killNow());
    process.removeListener('exit', exitHook);
  }
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
    await pause(1_000, abort);
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
  await pause(1_000);
  try {
    if (cluster.state(name) !== 'running' && cluster.state(name) !== 'paused') await cluster.startProcess(name);
  } catch (e) {
    log(`! ${name} did not restart after its crash: ${(e as Error).message}`);
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** Transactions the coordinators list as in doubt; null if none answered. */
async function listInDoubt(cluster: ChaosCluster): Promise<number | null> {
  let answered = false;
  let most = 0;
  for (const c of cluster.coordinators) {
    const r = await fetchJson(`${c.url}/v1/transactions?state=in-doubt&limit=1000`, { timeoutMs: 10_000 });
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
