/**
 * Test support: a 3-node store cluster (the built-in store, or a real etcd
 * cluster: a `Backend`), coordinators and inventory participants as separate
 * OS processes (`node --import tsx`), each managed by pid, with its output in
 * a log file under the test's temp dir. Every process started here is
 * remembered so `stopAll` can stop it in afterAll, even when a test failed
 * halfway. Coordinators and participants reach the store through the same
 * `--store` flag whatever the backend: `http://...` or `etcd://...`.
 *
 * Ports: the tests give coordinators and participants ODD ports. The test
 * port ranges lie inside Linux's ephemeral range, and connect() takes even
 * ports first, so an odd port that a killed process frees is rarely taken by
 * some client socket before the restart binds it again (and `waitHealthy`
 * retries a start that lost its port anyway).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../../../store/node/launcher.js';
import { openTxStore, parseStoreSpec, type OpenedStore, type StoreKind } from '../../../coordinator/txstore/open.js';
import { idForIdempotencyKey } from '../../../coordinator/service/service.js';
import type { TxStore } from '../../../coordinator/txstore/txstore.js';
import { afterAll, beforeAll } from 'vitest';
import { etcdForTests, startEtcdCluster, trackFailures, type EtcdCluster } from '../../support/etcd.js';
import { forgetPid, reapStale, recordPid } from '../../support/pid-files.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const COORDINATOR_MAIN = join(ROOT, 'coordinator/service/main.ts');
const INVENTORY_MAIN = join(ROOT, 'examples/inventory/main.ts');

const everything = new Set<Proc>();
const clusters = new Set<LocalCluster>();
const etcdClusters = new Set<EtcdCluster>();
const openedStores = new Set<OpenedStore>();

export class Proc {
  child: ChildProcess | undefined;
  exits = 0;
  private env: Readonly<Record<string, string>> = {};
  private logOffset = 0;

  constructor(
    readonly name: string,
    readonly url: string,
    private readonly script: string,
    private readonly args: readonly string[],
    private readonly logFile: string,
  ) {
    everything.add(this);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process; `env` adds variables (failpoints) for this run only. */
  start(env: Readonly<Record<string, string>> = {}): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.env = env;
    this.logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const port = new URL(this.url).port;
    reapStale(`proc-${port}`, `--port ${port} `);
    const fd = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', this.script, ...this.args], {
      cwd: ROOT,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, TWOPC_FAILPOINTS: '', ...env },
    });
    const pid = child.pid;
    if (pid !== undefined) recordPid(`proc-${port}`, pid);
    child.once('exit', () => {
      this.exits++;
      if (pid !== undefined) forgetPid(`proc-${port}`, pid);
    });
    this.child = child;
  }

  /** Resolves when the process exits (by itself: a failpoint) or the deadline passes. */
  async waitExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (child === undefined) throw new Error(`${this.name} never started`);
    if (!this.running) return { code: child.exitCode, signal: child.signalCode };
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        res({ code, signal });
      });
    });
  }

  async kill9(): Promise<void> {
    await this.signal('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    process.kill(child.pid as number, sig);
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 5_000).unref());
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      process.kill(child.pid as number, 'SIGKILL');
      await exited;
    }
  }

  /**
   * Polls GET /healthz until 200. A start that lost its port to a client
   * socket (EADDRINUSE: the test ports lie inside Linux's ephemeral range,
   * 32768-60999, which every outgoing connection on this shared machine
   * draws from) is retried: such a socket lets go within seconds.
   */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await waitUntil(`${this.name} healthy`, timeoutMs, async () => {
      if (!this.running && this.lostPort()) {
        this.start(this.env);
        return false;
      }
      if (!this.running) throw new Error(`${this.name} exited: see ${this.logFile}\n${tail(this.logFile)}`);
      try {
        return (await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) })).status === 200;
      } catch {
        return false;
      }
    });
  }

  logTail(): string {
    return tail(this.logFile);
  }

  /** Whether the last run died because its port was taken. */
  private lostPort(): boolean {
    try {
      return readFileSync(this.logFile, 'utf8').slice(this.logOffset).includes('EADDRINUSE');
    } catch {
      return false;
    }
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

/** Stops every process this module started (by pid), tolerating failures, and closes the stores it opened. */
export async function stopAll(): Promise<void> {
  await Promise.all([...everything].map((p) => p.kill9().catch(() => undefined)));
  everything.clear();
  await Promise.all([...openedStores].map((o) => o.close().catch(() => undefined)));
  openedStores.clear();
  await Promise.all([...clusters].flatMap((c) => c.processes.map((p) => p.kill9().catch(() => undefined))));
  clusters.clear();
  // etcd members by pid too: SIGTERM, then SIGKILL after 5 s.
  await Promise.all([...etcdClusters].map((c) => c.stop().catch(() => undefined)));
  etcdClusters.clear();
}

/**
 * Polls `check` every 25 ms until it is true; throws with `what` past the
 * deadline. A check that throws an error saying a process "exited" fails at once.
 */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      lastError = e;
      if (e instanceof Error && e.message.includes('exited')) throw e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Stack {
  readonly kind: StoreKind;
  /** The `--store` value for coordinators and participants: `http://...` or `etcd://...`. */
  readonly storeFlag: string;
  readonly dir: string;
  readonly basePort: number;
}

/** Opens the stack's store in this process, for a test's own reads and writes; stopAll closes it. */
export async function openStore(stack: Stack, clientName: string): Promise<TxStore> {
  const opened = await openTxStore(parseStoreSpec(stack.storeFlag), clientName);
  openedStores.add(opened);
  return opened.store;
}

/** A 3-node built-in store on basePort..+2 (peers +100), data and logs under `dir`. */
export async function startStore(dir: string, basePort: number): Promise<Stack> {
  mkdirSync(dir, { recursive: true });
  const cluster = new LocalCluster({ nodes: 3, basePort, dataDir: join(dir, 'store'), logToFiles: true });
  clusters.add(cluster);
  cluster.start();
  await cluster.waitForLeader(30_000);
  return { kind: 'builtin', storeFlag: cluster.endpoints.join(','), dir, basePort };
}

/** A 3-member etcd cluster on etcdBasePort..+5, data and logs under `dir/etcd`; `basePort` is for the 2PC processes. */
export async function startEtcdStore(bin: string, dir: string, basePort: number, etcdBasePort: number): Promise<Stack> {
  mkdirSync(dir, { recursive: true });
  const cluster = await startEtcdCluster(bin, join(dir, 'etcd'), etcdBasePort);
  etcdClusters.add(cluster);
  return { kind: 'etcd', storeFlag: cluster.storeFlag, dir, basePort };
}

/**
 * Where a 2PC suite runs: the store it starts, and the base of the ports its
 * coordinators and participants take (basePort + 51 to basePort + 99).
 */
export interface Backend {
  readonly name: StoreKind;
  readonly basePort: number;
  /** Set when the suite cannot run here (no etcd outside CI): it is skipped, saying why. */
  readonly unavailable?: string;
  start(dir: string): Promise<Stack>;
}

export function builtinBackend(basePort: number): Backend {
  return { name: 'builtin', basePort, start: (dir) => startStore(dir, basePort) };
}

/** `file` names the test file in the message when etcd is missing (a skip outside CI, an error in CI). */
export function etcdBackend(file: string, basePort: number, etcdBasePort: number): Backend {
  const bin = etcdForTests(file);
  const start = (dir: string): Promise<Stack> => startEtcdStore(bin as string, dir, basePort, etcdBasePort);
  return bin === undefined ? { name: 'etcd', basePort, unavailable: 'etcd is not installed', start } : { name: 'etcd', basePort, start };
}

export function coordinatorProc(stack: Stack, id: string, port: number, extra: readonly string[] = []): Proc {
  const args = ['--id', id, '--port', String(port), '--store', stack.storeFlag, '--recovery-interval-ms', '300', '--ack-wait-ms', '5000', ...extra];
  return new Proc(`coordinator ${id}`, `http://127.0.0.1:${port}`, COORDINATOR_MAIN, args, join(stack.dir, `coordinator-${id}.log`));
}

export function inventoryProc(stack: Stack, name: string, port: number, stock: Readonly<Record<string, number>>, extra: readonly string[] = []): Proc {
  const stockArg = Object.entries(stock)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const args = ['--name', name, '--port', String(port), '--store', stack.storeFlag, '--data-dir', join(stack.dir, name), '--stock', stockArg, ...extra];
  return new Proc(`participant ${name}`, `http://127.0.0.1:${port}`, INVENTORY_MAIN, args, join(stack.dir, `participant-${name}.log`));
}

// ---------------------------------------------------------------------------
// HTTP

export interface HttpAnswer {
  readonly status: number;
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON of many shapes, checked by the tests
  readonly headers: Headers;
}

export async function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<HttpAnswer> {
  const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface InventoryView {
  readonly stock: Record<string, number>;
  readonly applied: Record<string, 'commit' | 'abort'>;
  readonly locks: Record<string, string>;
}

export async function inventoryOf(p: Proc): Promise<InventoryView> {
  const r = await http('GET', `${p.url}/inventory`);
  if (r.status !== 200) throw new Error(`GET ${p.url}/inventory: ${r.status}`);
  return r.body as InventoryView;
}

/**
 * Begin, give each participant its work, enlist each; returns the id. The
 * default timeout is long on purpose: the test machine is shared and a store
 * write can take hundreds of milliseconds under load; tests about deadlines
 * pass their own.
 */
export async function beginWithWork(coordinator: string, parts: readonly { readonly p: Proc; readonly work: unknown }[], timeoutMs = 30_000, headers: Record<string, string> = {}): Promise<string> {
  const begun = await http('POST', `${coordinator}/v1/transactions`, { timeoutMs }, headers);
  if (begun.status !== 201) throw new Error(`begin: ${begun.status} ${JSON.stringify(begun.body)}`);
  const id = begun.body.id as string;
  for (const { p, work } of parts) {
    const w = await http('POST', `${p.url}/2pc/work`, { txId: id, work });
    if (w.status !== 200) throw new Error(`work to ${p.name}: ${w.status} ${JSON.stringify(w.body)}`);
    const e = await http('POST', `${coordinator}/v1/transactions/${id}/participants`, { name: p.name.replace(/^participant /, ''), url: p.url });
    if (e.status !== 200) throw new Error(`enlist ${p.name}: ${e.status} ${JSON.stringify(e.body)}`);
  }
  return id;
}

/**
 * Like beginWithWork, but the work goes out first (the id of an
 * Idempotency-Key is known before begin) and the participants are named in
 * begin: the deadline starts to run only when everything is in place, so a
 * short deadline stays meaningful on a slow machine.
 */
export async function workThenBegin(coordinator: string, key: string, parts: readonly { readonly p: Proc; readonly work: unknown }[], timeoutMs: number): Promise<string> {
  const id = idForIdempotencyKey(key);
  for (const { p, work } of parts) {
    const w = await http('POST', `${p.url}/2pc/work`, { txId: id, work });
    if (w.status !== 200) throw new Error(`work to ${p.name}: ${w.status} ${JSON.stringify(w.body)}`);
  }
  const participants = parts.map(({ p }) => ({ name: p.name.replace(/^participant /, ''), url: p.url }));
  const begun = await http('POST', `${coordinator}/v1/transactions`, { timeoutMs, participants }, { 'idempotency-key': key });
  if (begun.status !== 201 || begun.body.id !== id) throw new Error(`begin: ${begun.status} ${JSON.stringify(begun.body)}`);
  return id;
}

export function take(sku: string, n: number): { items: { sku: string; delta: number }[] } {
  return { items: [{ sku, delta: -n }] };
}

/**
 * The suite setup the 2PC case files share: before all, a temp dir, the
 * backend's store cluster and the processes `setup` makes from it, each
 * started and healthy; after all, every process and cluster killed, and the
 * dir removed unless a test failed, the start failed, or TWOPC_KEEP=1 (then
 * the processes' and etcd's logs and data stay for a post-mortem).
 */
export function useStack(backend: Backend, label: string, setup: (stack: Stack) => Promise<readonly Proc[]>): void {
  const failures = trackFailures();
  let dir = '';
  /** Set when beforeAll finished: a start that failed keeps its logs too. */
  let started = false;
  beforeAll(async () => {
    dir = mkdtempSync(join(os.tmpdir(), `twopc-${label}-${backend.name}-`));
    console.log(`${label} dir ${dir}`);
    const procs = await setup(await backend.start(dir));
    for (const p of procs) p.start();
    await Promise.all(procs.map((p) => p.waitHealthy()));
    started = true;
  }, 180_000);
  afterAll(async () => {
    await stopAll();
    if (dir !== '' && (failures.failed || !started || process.env['TWOPC_KEEP'] === '1')) console.log(`logs and data kept in ${dir}`);
    else if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 60_000);
}
