/**
 * The system under test as real processes, and the fault primitives the
 * nemesis uses on them: SIGKILL and start, SIGSTOP and SIGCONT, partitions
 * through the fault routes that RAFT2PC_FAULTS=1 enables (store/api/faults.ts,
 * coordinator/service/routes.ts), and a torn WAL tail.
 *
 * Processes come from the demo's supervisor (demo/supervisor/), which owns
 * them by pid. The runner starts the roles it needs itself (store, then
 * coordinators and banks): it drives transfers straight through the
 * coordinator and bank APIs, so the transfer app is not started. With
 * `--store etcd` a 3-member etcd cluster (bench/etcd.ts) replaces the
 * built-in store and there is no store node to fault. With `secure` (the
 * demo's secure composition, demo/supervisor/secure.ts) every link is TLS,
 * the store's auth is on, and the runner's own calls show the client
 * certificate and, to the store, authenticate as root (fault routes and
 * reads of every key).
 */
import { mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchJson } from '../demo/common/http.js';
import { serviceJson } from './service-http.js';
import { keepAliveTimers } from '../lib/timers.js';
import { demoLayout } from '../demo/supervisor/layout.js';
import type { ProcessEvent } from '../demo/supervisor/process.js';
import { DemoSupervisor, portFree } from '../demo/supervisor/supervisor.js';
import { FAULTS_ENV } from '../lib/faults.js';
import { EtcdCluster } from '../bench/etcd.js';
import { findEtcd } from '../lib/etcd-binary.js';
import { STORE_PASSWORD_ENV, STORE_USER_ENV } from '../coordinator/txstore/open.js';
import { ROOT_USER, type SecureSetup } from '../demo/supervisor/secure.js';
import type { StoreChoice } from './options.js';

export interface ChaosClusterOptions {
  readonly dataDir: string;
  readonly basePort: number;
  readonly store: StoreChoice;
  readonly startTimeoutMs: number;
  readonly onEvent?: (e: ProcessEvent) => void;
  readonly secure?: SecureSetup;
}

export interface BankRef {
  readonly name: string;
  readonly url: string;
}

interface StoreStatus {
  readonly id: string;
  readonly role: string;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

const STATUS_TIMEOUT_MS = 1_000;
const ADMIN_TIMEOUT_MS = 2_000;
/** The runner's root token on the store: 10 minutes, renewed when less than one is left. */
const ROOT_TOKEN_TTL_MS = 600_000;
const ROOT_TOKEN_MARGIN_MS = 60_000;

export class ChaosCluster {
  readonly supervisor: DemoSupervisor;
  private readonly etcd: EtcdCluster | undefined;
  private readonly pidFile: string;
  private readonly pids = new Map<string, number>();
  private rootToken: { token: string; expiresAtMs: number } | undefined;
  /** Called when a process exits without the runner killing or stopping it: a crash. */
  onCrash: (name: string, what: string) => void = () => {};

  constructor(private readonly opts: ChaosClusterOptions) {
    // Children inherit the environment: this turns on their fault routes.
    process.env[FAULTS_ENV] = '1';
    mkdirSync(join(opts.dataDir, 'logs'), { recursive: true });
    this.pidFile = join(opts.dataDir, 'pids.json');
    const onEvent = (e: ProcessEvent): void => {
      if (e.type === 'started') this.pids.set(e.name, e.pid);
      if (e.type === 'started' || e.type === 'exited') this.writePids();
      if (e.type === 'exited' && !e.expected) this.onCrash(e.name, `pid ${e.pid} exited on its own (code ${String(e.code)}, signal ${String(e.signal)})`);
      opts.onEvent?.(e);
    };
    let extraArgs = {};
    if (opts.store === 'etcd') {
      const bin = findEtcd();
      if (bin === undefined) throw new Error('--store etcd needs an etcd binary (apt-get install etcd-server)');
      // etcd takes the ports the layout gives the built-in store nodes, which are not started.
      const first = demoLayout(opts.basePort).store[0];
      if (first === undefined) throw new Error('the demo layout has no store node');
      this.etcd = new EtcdCluster(bin, join(opts.dataDir, 'etcd'), first.clientPort, first.peerPort);
      const spec = `etcd://${this.etcd.endpoints.map((u) => u.replace(/^http:\/\//, '')).join(',')}`;
      // The supervisor passes the built-in store's --store first; a later flag wins (node:util parseArgs).
      extraArgs = { coordinator: ['--store', spec], bank: ['--store', spec] };
    }
    this.supervisor = new DemoSupervisor({ dataDir: opts.dataDir, basePort: opts.basePort, control: false, startTimeoutMs: opts.startTimeoutMs, extraArgs, onEvent, ...(opts.secure === undefined ? {} : { secure: opts.secure }) });
  }

  /** The runner's store user (root) in secure mode; none otherwise. */
  get storeCredentials(): { user?: string; password?: string } {
    const s = this.opts.secure;
    return s === undefined ? {} : { user: ROOT_USER, password: s.password(ROOT_USER) };
  }

  /** The environment openTxStore reads the runner's credentials from. */
  get storeEnv(): NodeJS.ProcessEnv {
    const c = this.storeCredentials;
    return c.user === undefined ? process.env : { ...process.env, [STORE_USER_ENV]: c.user, [STORE_PASSWORD_ENV]: c.password };
  }

  /** The Authorization header for the store's admin routes (root only with auth on): a short-lived root token, renewed before it ends. */
  private async storeAdminHeaders(): Promise<Record<string, string>> {
    const c = this.storeCredentials;
    if (c.user === undefined) return {};
    if (this.rootToken === undefined || this.rootToken.expiresAtMs - Date.now() < ROOT_TOKEN_MARGIN_MS) {
      for (const url of this.supervisor.storeEndpoints) {
        const r = await fetchJson(`${url}/v1/auth/authenticate`, { method: 'POST', body: { name: c.user, password: c.password, ttlMs: ROOT_TOKEN_TTL_MS }, timeoutMs: ADMIN_TIMEOUT_MS });
        if (r.status !== 200) continue;
        this.rootToken = r.body as { token: string; expiresAtMs: number };
        break;
      }
    }
    return this.rootToken === undefined ? {} : { authorization: `Bearer ${this.rootToken.token}` };
  }

  /** Store nodes the nemesis may fault: none with etcd. */
  get storeNodes(): string[] {
    return this.etcd === undefined ? this.supervisor.layout.store.map((s) => s.name) : [];
  }

  get coordinators(): { readonly name: string; readonly url: string }[] {
    return this.supervisor.layout.coordinators.map((c) => ({ name: c.name, url: this.supervisor.process(c.name).spec.url }));
  }

  get banks(): BankRef[] {
    return this.supervisor.banks;
  }

  /** The store as a --store spec: what the runner's own store clients open. */
  get storeSpec(): string {
    if (this.etcd !== undefined) return `etcd://${this.etcd.endpoints.map((u) => u.replace(/^http:\/\//, '')).join(',')}`;
    return this.supervisor.storeEndpoints.join(',');
  }

  /** Every process this run manages, by name. */
  get serviceNames(): string[] {
    return [...this.coordinators.map((c) => c.name), ...this.banks.map((b) => b.name)];
  }

  get managedNames(): string[] {
    return [...this.storeNodes, ...this.serviceNames];
  }

  /** Starts the store (built-in or etcd), then the coordinators and banks; on failure stops everything and throws. */
  async start(): Promise<void> {
    await this.checkPortsFree();
    try {
      if (this.etcd !== undefined) {
        this.etcd.start();
        for (const [i, pid] of this.etcd.pids.entries()) this.pids.set(`etcd${i + 1}`, pid);
        this.writePids();
        await this.etcd.waitHealthy(this.opts.startTimeoutMs);
      } else {
        await this.supervisor.startStore(); // in secure mode also its users and auth
      }
      await Promise.all(this.serviceNames.map((n) => this.supervisor.process(n).start(this.opts.startTimeoutMs)));
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops every process by pid: banks, coordinators, then the store. */
  async stop(): Promise<void> {
    await this.supervisor.stopAll();
    await this.etcd?.stop();
    this.writePids();
  }

  /** Synchronous last resort for an exit hook: SIGKILL to every child still alive. */
  killNow(): void {
    for (const p of this.managedNames.map((n) => this.supervisor.process(n))) p.killNow();
    for (const pid of this.etcd?.pids ?? []) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  state(name: string): string {
    return this.supervisor.process(name).state;
  }

  async kill(name: string): Promise<void> {
    await this.supervisor.kill(name);
  }

  async startProcess(name: string): Promise<void> {
    await this.supervisor.act(name, 'start');
  }

  async pauseProcess(name: string): Promise<void> {
    await this.supervisor.pause(name);
  }

  async resumeProcess(name: string): Promise<void> {
    await this.supervisor.resume(name);
  }

  /** The current store leader, asked of every node; undefined when none is known. */
  async leader(): Promise<string | undefined> {
    const statuses = await this.storeStatuses();
    return statuses.find((s) => s?.role === 'leader')?.id;
  }

  /** Cuts one store node off from the others, in both directions (each side drops the other's messages). */
  async isolateStore(victim: string): Promise<void> {
    const others = this.storeNodes.filter((n) => n !== victim);
    await this.setBlockedPeers(victim, others);
    for (const o of others) await this.setBlockedPeers(o, [victim]);
  }

  /** Clears every store node's blocklist; a node that is down forgets its list anyway. */
  async healStorePartitions(): Promise<boolean> {
    let ok = true;
    for (const n of this.storeNodes) {
      if (this.state(n) !== 'running') continue;
      const r = await fetchJson(`${this.storeUrl(n)}/v1/admin/faults`, { method: 'DELETE', headers: await this.storeAdminHeaders(), timeoutMs: ADMIN_TIMEOUT_MS });
      ok &&= r.status === 200;
    }
    return ok;
  }

  /** Makes a coordinator's prepare and decision hints to these banks fail (participants still watch the store). */
  async blockHints(coordinator: string, bankNames: readonly string[]): Promise<void> {
    const urls = this.banks.filter((b) => bankNames.includes(b.name)).map((b) => b.url);
    const r = await serviceJson(`${this.coordinatorUrl(coordinator)}/v1/admin/faults`, { method: 'PUT', body: { blockedUrls: urls }, timeoutMs: ADMIN_TIMEOUT_MS });
    if (r.status !== 200) throw new Error(`${coordinator} refused the partition: ${r.status} ${JSON.stringify(r.body)}`);
  }

  async unblockHints(coordinator: string): Promise<boolean> {
    if (this.state(coordinator) !== 'running') return true; // a restarted coordinator starts with no block
    const r = await serviceJson(`${this.coordinatorUrl(coordinator)}/v1/admin/faults`, { method: 'DELETE', timeoutMs: ADMIN_TIMEOUT_MS });
    return r.status === 200;
  }

  /**
   * Cuts `bytes` off the end of a stopped node's newest WAL segment: what a
   * crash in the middle of a write leaves. The node must repair it at start.
   */
  tearWal(node: string, bytes: number): { segment: string; before: number; after: number } {
    if (this.state(node) === 'running' || this.state(node) === 'paused') throw new Error(`${node} must be down to tear its WAL`);
    const dir = join(this.supervisor.dataDir, 'store', node, 'wal');
    const segments = readdirSync(dir)
      .filter((f) => f.endsWith('.wal'))
      .sort();
    const last = segments[segments.length - 1];
    if (last === undefined) throw new Error(`${dir} has no WAL segment`);
    const segment = join(dir, last);
    const before = statSync(segment).size;
    const after = Math.max(0, before - bytes);
    truncateSync(segment, after);
    return { segment, before, after };
  }

  /**
   * Whole: every store node runs and follows one leader, and each has
   * applied what that leader had committed when first asked. The target is
   * fixed per leader: under a steady load the commit index keeps moving, and
   * a follower a few entries behind the moving index has still caught up.
   * Then the next store fault cannot take a majority's data away.
   */
  async waitStoreWhole(timeoutMs: number): Promise<boolean> {
    if (this.storeNodes.length === 0) return true;
    const deadline = Date.now() + timeoutMs;
    let target: { leader: string; commitIndex: number } | undefined;
    while (Date.now() < deadline) {
      if (this.storeNodes.every((n) => this.state(n) === 'running')) {
        const statuses = await this.storeStatuses();
        const leader = statuses.find((s) => s?.role === 'leader');
        if (leader !== undefined && statuses.every((s) => s !== undefined && s.leaderId === leader.id)) {
          if (target?.leader !== leader.id) target = { leader: leader.id, commitIndex: leader.commitIndex };
          const goal = target.commitIndex;
          if (statuses.every((s) => s !== undefined && s.appliedIndex >= goal)) return true;
        }
      }
      await keepAliveTimers.sleep(200);
    }
    return false;
  }

  /**
   * Lifts every fault that may still be in force: resumes paused processes,
   * starts the ones that are down, clears every partition, then waits for the
   * store to be whole. Returns what could not be healed.
   */
  async healAll(timeoutMs: number): Promise<string[]> {
    const problems: string[] = [];
    for (const name of this.managedNames) {
      try {
        const state = this.state(name);
        if (state === 'paused') await this.resumeProcess(name);
        else if (state !== 'running') await this.startProcess(name);
      } catch (e) {
        problems.push(`${name}: ${(e as Error).message}`);
      }
    }
    if (!(await this.healStorePartitions())) problems.push('a store node did not clear its partition');
    for (const c of this.coordinators) if (!(await this.unblockHints(c.name))) problems.push(`${c.name} did not clear its blocked URLs`);
    if (!(await this.waitStoreWhole(timeoutMs))) problems.push(`the store was not whole within ${timeoutMs} ms`);
    return problems;
  }

  logFile(name: string): string {
    return this.supervisor.process(name).spec.logFile;
  }

  storeUrl(node: string): string {
    return this.supervisor.process(node).spec.url;
  }

  coordinatorUrl(name: string): string {
    return this.supervisor.process(name).spec.url;
  }

  private async setBlockedPeers(node: string, peers: readonly string[]): Promise<void> {
    const r = await fetchJson(`${this.storeUrl(node)}/v1/admin/faults`, { method: 'PUT', body: { blockedPeers: peers }, headers: await this.storeAdminHeaders(), timeoutMs: ADMIN_TIMEOUT_MS });
    if (r.status !== 200) throw new Error(`${node} refused the partition: ${r.status} ${JSON.stringify(r.body)}`);
  }

  private async storeStatuses(): Promise<(StoreStatus | undefined)[]> {
    return Promise.all(
      this.storeNodes.map(async (n) => {
        if (this.state(n) !== 'running') return undefined;
        const r = await fetchJson(`${this.storeUrl(n)}/v1/status`, { timeoutMs: STATUS_TIMEOUT_MS });
        return r.status === 200 ? (r.body as StoreStatus) : undefined;
      }),
    );
  }

  /** Every child's pid, written on each start and exit, so a harness can clean up by pid if the runner itself is killed. */
  private writePids(): void {
    const children: Record<string, number> = {};
    for (const [name, pid] of this.pids) children[name] = pid;
    try {
      writeFileSync(this.pidFile, `${JSON.stringify({ runner: process.pid, children }, null, 1)}\n`);
    } catch {
      // the data folder may be gone at the very end; the pid file is only a safety net
    }
  }

  private async checkPortsFree(): Promise<void> {
    const l = this.supervisor.layout;
    const ports = [...l.coordinators.map((c) => c.port), ...l.banks.map((b) => b.port), ...l.store.flatMap((s) => [s.clientPort, s.peerPort])];
    const busy: number[] = [];
    for (const port of ports) if (!(await portFree(l.host, port))) busy.push(port);
    if (busy.length > 0) throw new Error(`port(s) ${busy.join(', ')} on ${l.host} are in use; pick another --base-port`);
  }
}
