/**
 * The demo topology as supervised processes: 3 store nodes, 2 coordinators,
 * the banks and the transfer app, each a separate OS process on loopback,
 * managed by pid. It exposes each process (name, role, port, pid, state)
 * and can kill, pause, resume, restart or start any one of them by name, and
 * stop them all. It never restarts anything on its own.
 *
 * The library knows nothing about the web page: `npm start` (demo/start.ts)
 * runs it behind the control API (control.ts), the transfer app drives it
 * through that API, and a chaos runner can use either.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { AppError } from '../../lib/errors.js';
import { PACKAGE_ROOT, programPath } from '../../lib/entry.js';
import type { HttpClient } from '../../lib/http-client.js';
import { tlsHttpClient } from '../../lib/tls.js';
import { formatClusterSpec } from '../../store/node/config.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { serveControl, type ControlHost, type ControlServer, type DemoTopology } from './control.js';
import { DEFAULT_BANKS, demoLayout, layoutPorts, SWEEP_ELECTION, urlOf, type BankSpec, type DemoLayout } from './layout.js';
import { ManagedProcess, type ProcessAction, type ProcessEvent, type ProcessInfo, type ProcessRole, type ProcessSpec, type StatusProbe } from './process.js';
import { bootstrapStoreAuth, serviceTokenArgs, type SecureSetup, type SecureUsers } from './secure.js';

const SCRIPTS: Readonly<Record<ProcessRole, string>> = {
  store: programPath('store/node/main'),
  coordinator: programPath('coordinator/service/main'),
  bank: programPath('demo/bank/main'),
  app: programPath('demo/app/main'),
};

/** A file that marks a folder as the demo's, so `--fresh` never wipes anything else. */
export const DATA_MARKER = '.raft2pc-demo';

export interface DemoSupervisorOptions {
  readonly dataDir: string;
  readonly basePort?: number;
  readonly banks?: readonly BankSpec[];
  /** Serve the control API on the layout's control port (default true; the app's kill buttons need it). */
  readonly control?: boolean;
  /** How long one process may take to become healthy. */
  readonly startTimeoutMs?: number;
  /** Extra flags for every process of a role. */
  readonly extraArgs?: Partial<Record<ProcessRole, readonly string[]>>;
  readonly onEvent?: (e: ProcessEvent) => void;
  /**
   * TLS on every link, store auth and a user per process (secure.ts; made
   * with `secureUsersOf(layout)`). Undefined: plain HTTP on loopback.
   */
  readonly secure?: SecureSetup;
}

/** The store users the demo's processes need: one per coordinator and bank, and the app's read-only one. */
export function secureUsersOf(layout: DemoLayout): SecureUsers {
  return {
    coordinators: layout.coordinators.map((c) => c.name),
    participants: layout.banks.map((b) => b.name),
    readers: ['app'],
    coordinatorPrefixes: [`recipes/election/${SWEEP_ELECTION.name}/`],
  };
}

/** One role's secure flags, by process name. */
type RoleArgs = (name: string) => string[];

/** Live supervisors, killed synchronously if this process exits without stopping them. */
const live = new Set<DemoSupervisor>();
let exitHookInstalled = false;

export class DemoSupervisor {
  readonly layout: DemoLayout;
  readonly dataDir: string;
  private readonly procs = new Map<string, ManagedProcess>();
  /** Names with an action in progress: one action per process at a time. */
  private readonly busy = new Set<string>();
  private readonly startTimeoutMs: number;
  private readonly withControl: boolean;
  private control: ControlServer | undefined;
  readonly secure: SecureSetup | undefined;
  /** The supervisor's own calls (health, store status): over https it trusts the CA and shows the client certificate. */
  private readonly http: HttpClient;
  private readonly scheme: 'http' | 'https';

  constructor(opts: DemoSupervisorOptions) {
    this.dataDir = resolve(opts.dataDir);
    this.layout = demoLayout(opts.basePort, opts.banks ?? DEFAULT_BANKS);
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.withControl = opts.control ?? true;
    const onEvent = opts.onEvent ?? (() => {});
    this.secure = opts.secure;
    this.scheme = opts.secure === undefined ? 'http' : 'https';
    this.http = tlsHttpClient({}, opts.secure?.clientTls);
    const probe: StatusProbe = async (url, timeoutMs) => (await this.getJson(url, timeoutMs)).status;
    for (const spec of this.specs(opts.extraArgs ?? {})) this.procs.set(spec.name, new ManagedProcess(spec, PACKAGE_ROOT, onEvent, probe));
  }

  /**
   * Creates the data folder (with its marker). `fresh` wipes it first, but
   * only if it is empty or carries the marker: never a folder of other data.
   */
  static prepareDataDir(dir: string, opts: { readonly fresh: boolean }): void {
    const abs = resolve(dir);
    if (existsSync(abs) && opts.fresh) {
      const entries = readdirSync(abs);
      if (entries.length > 0 && !entries.includes(DATA_MARKER)) throw new Error(`refusing to wipe ${abs}: it is not empty and has no ${DATA_MARKER} marker (not a demo data folder)`);
      rmSync(abs, { recursive: true, force: true });
    }
    mkdirSync(join(abs, 'logs'), { recursive: true });
    writeFileSync(join(abs, DATA_MARKER), 'data of the raft2pc demo (npm start); --fresh may wipe this folder\n');
  }

  get storeEndpoints(): string[] {
    return this.layout.store.map((s) => urlOf(this.layout.host, s.clientPort, this.scheme));
  }

  get coordinatorUrls(): string[] {
    return this.layout.coordinators.map((c) => urlOf(this.layout.host, c.port, this.scheme));
  }

  get banks(): { readonly name: string; readonly url: string }[] {
    return this.layout.banks.map((b) => ({ name: b.name, url: urlOf(this.layout.host, b.port, this.scheme) }));
  }

  get appUrl(): string {
    return urlOf(this.layout.host, this.layout.appPort, this.scheme);
  }

  get controlUrl(): string {
    return urlOf(this.layout.host, this.layout.controlPort, this.scheme);
  }

  /** Ports, URLs and data folder of the running demo (the control API's /v1/topology). */
  topology(): DemoTopology {
    return {
      basePort: this.layout.basePort,
      dataDir: this.dataDir,
      app: this.appUrl,
      storeEndpoints: this.storeEndpoints,
      coordinators: this.coordinatorUrls,
      banks: this.banks,
    };
  }

  list(): ProcessInfo[] {
    return [...this.procs.values()].map((p) => p.info());
  }

  process(name: string): ManagedProcess {
    const p = this.procs.get(name);
    if (p === undefined) throw new AppError('unknown_process', 404, `no process named ${name}; known: ${[...this.procs.keys()].join(', ')}`);
    return p;
  }

  byRole(role: ProcessRole): ManagedProcess[] {
    return [...this.procs.values()].filter((p) => p.spec.role === role);
  }

  /** Starts everything, in dependency order; on any failure stops what it started and throws. */
  async start(): Promise<void> {
    live.add(this);
    installExitHook();
    try {
      mkdirSync(join(this.dataDir, 'logs'), { recursive: true });
      await this.checkPortsFree(5_000);
      if (this.withControl) this.control = await serveControl(this.controlHost(), this.layout.host, this.layout.controlPort, this.secure?.certs);
      await this.startStore();
      // The app only polls the others, so it starts with them rather than after them.
      await Promise.all([...this.byRole('coordinator'), ...this.byRole('bank'), ...this.byRole('app')].map((p) => p.start(this.startTimeoutMs)));
    } catch (e) {
      await this.stopAll();
      throw e;
    }
  }

  /** Starts the store nodes and waits for a leader; in secure mode then sets up its users and turns auth on. */
  async startStore(): Promise<void> {
    live.add(this); // callers that start roles one by one (chaos, tests) get the exit hook too
    installExitHook();
    await Promise.all(this.byRole('store').map((p) => p.start(this.startTimeoutMs)));
    await this.waitForLeader(this.startTimeoutMs);
    if (this.secure !== undefined) await bootstrapStoreAuth(this.secure, this.storeEndpoints, this.startTimeoutMs);
  }

  /** One GET with the supervisor's client; status 0 when nothing answered. */
  async getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    try {
      const res = await this.http.request({ method: 'GET', url, timeoutMs });
      let body: unknown = null;
      try {
        body = JSON.parse(res.text) as unknown;
      } catch {
        // not JSON: a status is all a probe needs
      }
      return { status: res.status, body };
    } catch {
      return { status: 0, body: null };
    }
  }

  /** Runs one action on one process by name. */
  async act(name: string, action: ProcessAction): Promise<ProcessInfo> {
    const p = this.process(name);
    if (this.busy.has(name)) throw new AppError('process_busy', 409, `${name} is busy with another action; retry when it is done`);
    this.busy.add(name);
    try {
      switch (action) {
        case 'kill':
          await p.kill();
          break;
        case 'pause':
          if (p.state !== 'running') throw new AppError('not_running', 409, `${name} is ${p.state}`);
          p.pause();
          break;
        case 'resume':
          if (p.state !== 'paused') throw new AppError('not_paused', 409, `${name} is ${p.state}`);
          p.resume();
          break;
        case 'stop':
          await p.stop();
          break;
        case 'start':
          if (p.alive) throw new AppError('already_running', 409, `${name} is already running (pid ${p.pid})`);
          await p.start(this.startTimeoutMs);
          break;
        case 'restart':
          await p.stop();
          await p.start(this.startTimeoutMs);
          break;
      }
      return p.info();
    } finally {
      this.busy.delete(name);
    }
  }

  kill(name: string): Promise<ProcessInfo> {
    return this.act(name, 'kill');
  }

  pause(name: string): Promise<ProcessInfo> {
    return this.act(name, 'pause');
  }

  resume(name: string): Promise<ProcessInfo> {
    return this.act(name, 'resume');
  }

  restart(name: string): Promise<ProcessInfo> {
    return this.act(name, 'restart');
  }

  /** Stops every process (the app first, the store last), each SIGTERM then SIGKILL past 5 s, then the control API. */
  async stopAll(): Promise<void> {
    for (const role of ['app', 'bank', 'coordinator', 'store'] as const) {
      await Promise.all(this.byRole(role).map((p) => p.stop().catch(() => p.killNow())));
    }
    await this.control?.close();
    this.control = undefined;
    live.delete(this);
  }

  /** The store's leader, once one is known to a majority of the nodes; throws past the deadline. */
  async waitForLeader(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const majority = Math.floor(this.layout.store.length / 2) + 1;
    for (;;) {
      const statuses = await Promise.all(this.storeEndpoints.map((u) => this.getJson(`${u}/v1/status`, 1_000)));
      const bodies = statuses.filter((s) => s.status === 200).map((s) => s.body as { id: string; role: string; leaderId: string | null });
      const leader = bodies.find((b) => b.role === 'leader');
      if (leader !== undefined && bodies.filter((b) => b.leaderId === leader.id).length >= majority) return leader.id;
      if (Date.now() > deadline) throw new Error(`the store elected no leader within ${timeoutMs} ms`);
      await keepAliveTimers.sleep(100);
    }
  }

  /** Only what the control API needs: the list, the topology, and actions. */
  private controlHost(): ControlHost {
    return { list: () => this.list(), topology: () => this.topology(), act: (name, action) => this.act(name, action) };
  }

  /** Every port must be free before anything starts: a clear error beats a half-started demo. */
  private async checkPortsFree(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy: number[] = [];
      for (const port of layoutPorts(this.layout)) if (!(await portFree(this.layout.host, port))) busy.push(port);
      if (busy.length === 0) return;
      if (Date.now() > deadline) throw new Error(`port(s) ${busy.join(', ')} on ${this.layout.host} are in use (is a demo already running?); pick another --base-port`);
      await keepAliveTimers.sleep(250);
    }
  }

  private specs(extra: Partial<Record<ProcessRole, readonly string[]>>): ProcessSpec[] {
    const l = this.layout;
    const logFile = (name: string): string => join(this.dataDir, 'logs', `${name}.log`);
    const members = l.store.map((s) => ({ id: s.name, clientUrl: urlOf(l.host, s.clientPort, this.scheme), peerAddress: `${l.host}:${s.peerPort}` }));
    const cluster = formatClusterSpec(members);
    const store = this.storeEndpoints.join(',');
    const sec = this.secureParts();
    const specs: ProcessSpec[] = [];
    for (const s of l.store) {
      const args = ['--id', s.name, '--cluster', cluster, '--data-dir', join(this.dataDir, 'store', s.name), ...sec.store, ...(extra.store ?? [])];
      specs.push({ name: s.name, role: 'store', port: s.clientPort, url: urlOf(l.host, s.clientPort, this.scheme), script: SCRIPTS.store, args, logFile: logFile(s.name) });
    }
    for (const c of l.coordinators) {
      const sweep = ['--sweep-election', SWEEP_ELECTION.name, '--sweep-election-ttl-ms', String(SWEEP_ELECTION.ttlMs)];
      const args = ['--id', c.name, '--port', String(c.port), '--host', l.host, '--store', store, '--recovery-interval-ms', '1000', ...sweep, ...sec.coordinator(c.name), ...(extra.coordinator ?? [])];
      specs.push({ name: c.name, role: 'coordinator', port: c.port, url: urlOf(l.host, c.port, this.scheme), script: SCRIPTS.coordinator, args, logFile: logFile(c.name), ...sec.env(c.name) });
    }
    for (const b of l.banks) {
      const accounts = Object.entries(b.accounts)
        .map(([id, v]) => `${id}=${v}`)
        .join(',');
      const args = ['--name', b.name, '--port', String(b.port), '--host', l.host, '--store', store, '--data-dir', join(this.dataDir, 'banks', b.name), '--accounts', accounts, ...sec.bank(b.name), ...(extra.bank ?? [])];
      specs.push({ name: b.name, role: 'bank', port: b.port, url: urlOf(l.host, b.port, this.scheme), script: SCRIPTS.bank, args, logFile: logFile(b.name), ...sec.env(b.name) });
    }
    const banks = this.banks.map((b) => `${b.name}=${b.url}`).join(',');
    const appArgs = ['--port', String(l.appPort), '--host', l.host, '--store', store, '--coordinators', this.coordinatorUrls.join(','), '--banks', banks, ...(this.withControl ? ['--control', this.controlUrl] : []), ...sec.app('app'), ...(extra.app ?? [])];
    specs.push({ name: 'app', role: 'app', port: l.appPort, url: this.appUrl, script: SCRIPTS.app, args: appArgs, logFile: logFile('app'), ...sec.env('app') });
    return specs;
  }

  /**
   * The secure flags per role and each process's store user (secure.ts);
   * nothing in plain mode. Coordinators also get the banks as their
   * participant registry, so no client can make them call another address.
   * The app serves browsers: no client certificate asked of them.
   */
  private secureParts(): { store: string[]; coordinator: RoleArgs; bank: RoleArgs; app: RoleArgs; env: (user: string) => { env?: Record<string, string> } } {
    const sec = this.secure;
    const none = (): string[] => [];
    if (sec === undefined) return { store: [], coordinator: none, bank: none, app: none, env: () => ({}) };
    const registry = this.banks.map((b) => `${b.name}=${b.url}`).join(',');
    return {
      store: sec.storeArgs(),
      coordinator: (name) => [...sec.serviceArgs(true), '--participant', registry, ...serviceTokenArgs(sec, 'coordinator', name)],
      bank: (name) => [...sec.serviceArgs(true), ...serviceTokenArgs(sec, 'bank', name)],
      app: (name) => [...sec.serviceArgs(false), ...serviceTokenArgs(sec, 'app', name)],
      env: (user) => ({ env: sec.envFor(user) }),
    };
  }
}

/** Whether nothing listens on host:port (a listen there succeeds). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A supervisor that dies without stopAll (an uncaught error, process.exit) must not leave children behind.
  process.once('exit', () => {
    for (const s of live) for (const p of s.byRole('app').concat(s.byRole('bank'), s.byRole('coordinator'), s.byRole('store'))) p.killNow();
  });
}
