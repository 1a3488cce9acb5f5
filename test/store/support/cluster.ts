/**
 * A real store cluster for integration tests: separate node processes on
 * loopback, started through store/node/launcher.ts, each test file with its
 * own port range and temp data directory.
 *
 * Every child process this helper ever started is tracked and killed by pid
 * in `destroy()` (call it from afterAll, it is safe after a failed start) and,
 * as a last resort, when the test worker exits.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type StoreProcess } from '../../../store/node/launcher.js';
import { waitFor } from './poll.js';

export interface TestClusterOptions {
  /** Names the temp data directory. */
  readonly name: string;
  /** Client port of node i is basePort+i, peer port basePort+100+i (launcher.ts). */
  readonly basePort: number;
  readonly nodes?: number;
  readonly extraArgs?: readonly string[];
}

/** The fields of GET /v1/status that tests look at. */
export interface NodeStatus {
  readonly id: string;
  readonly pid: number;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly revision: number;
}

const everyChild = new Set<ChildProcess>();
let exitHookInstalled = false;

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Last resort: a worker that dies or exits without afterAll still takes its nodes down. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of everyChild) {
      if (isRunning(child)) child.kill('SIGKILL');
    }
  });
}

export class TestCluster {
  readonly cluster: LocalCluster;
  readonly dataDir: string;
  private readonly children = new Set<ChildProcess>();

  constructor(readonly opts: TestClusterOptions) {
    installExitHook();
    this.dataDir = mkdtempSync(join(tmpdir(), `store-${opts.name}-`));
    this.cluster = new LocalCluster({
      nodes: opts.nodes ?? 3,
      basePort: opts.basePort,
      dataDir: this.dataDir,
      logToFiles: true,
      ...(opts.extraArgs === undefined ? {} : { extraArgs: opts.extraArgs }),
    });
  }

  get ids(): string[] {
    return this.cluster.members.map((m) => m.id);
  }

  get endpoints(): string[] {
    return this.cluster.endpoints;
  }

  url(id: string): string {
    return this.cluster.process(id).member.clientUrl;
  }

  proc(id: string): StoreProcess {
    return this.cluster.process(id);
  }

  running(id: string): boolean {
    return this.proc(id).running;
  }

  /** Ids of the nodes whose process is running. */
  get runningIds(): string[] {
    return this.ids.filter((id) => this.running(id));
  }

  /** Starts every node and waits until each answers /healthz and a leader is known to a majority. */
  async startAll(timeoutMs = 45_000): Promise<string> {
    for (const id of this.ids) this.start(id);
    await waitFor('every node healthy', timeoutMs, async () => (await Promise.all(this.ids.map((id) => this.healthy(id)))).every(Boolean) || undefined);
    return this.leader(timeoutMs);
  }

  start(id: string): void {
    const p = this.proc(id);
    p.start();
    if (p.child) {
      this.children.add(p.child);
      everyChild.add(p.child);
    }
  }

  /** Starts a node and waits until it answers /healthz. */
  async restart(id: string, timeoutMs = 40_000): Promise<void> {
    this.start(id);
    await waitFor(`${id} healthy after restart`, timeoutMs, async () => (await this.healthy(id)) || undefined);
  }

  async kill9(id: string): Promise<void> {
    await this.proc(id).kill9();
  }

  async stop(id: string): Promise<void> {
    await this.proc(id).stop();
  }

  /** Restarts every node that is down (a previous test may have failed midway), then waits for a leader. */
  async ensureAllRunning(timeoutMs = 40_000): Promise<string> {
    for (const id of this.ids) if (!this.running(id)) await this.restart(id, timeoutMs);
    return this.leader(timeoutMs);
  }

  /** The leader among the running nodes, agreed by a majority of the cluster. */
  leader(timeoutMs = 15_000): Promise<string> {
    return this.cluster.waitForLeader(timeoutMs, this.runningIds);
  }

  async followers(timeoutMs = 15_000): Promise<{ leader: string; followers: string[] }> {
    const leader = await this.leader(timeoutMs);
    return { leader, followers: this.runningIds.filter((id) => id !== leader) };
  }

  async healthy(id: string): Promise<boolean> {
    try {
      const res = await fetch(`${this.url(id)}/healthz`, { signal: AbortSignal.timeout(500) });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async status(id: string): Promise<NodeStatus | undefined> {
    try {
      const res = await fetch(`${this.url(id)}/v1/status`, { signal: AbortSignal.timeout(1_000) });
      if (res.status !== 200) return undefined;
      return (await res.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** One sample from the node's Prometheus text; throws when the metric is missing. */
  async metric(id: string, name: string): Promise<number> {
    const res = await fetch(`${this.url(id)}/metrics`, { signal: AbortSignal.timeout(1_000) });
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (line === undefined) throw new Error(`${id} /metrics has no ${name}`);
    return Number(line.slice(name.length + 1));
  }

  /** Resolves with the exit code and signal once the node's process has exited. */
  async waitExit(id: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.proc(id).child;
    if (!child) throw new Error(`${id} was never started`);
    if (!isRunning(child)) return { code: child.exitCode, signal: child.signalCode };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} (pid ${child.pid}) still running after ${timeoutMs} ms`)), timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
  }

  /** The node's stdout and stderr so far (all its runs). */
  log(id: string): string {
    const file = join(this.dataDir, `${id}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** The tail of every node's log, for a failure message. */
  logTails(lines = 30): string {
    return this.ids.map((id) => `--- ${id}.log ---\n${this.log(id).split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  /**
   * Kills by pid every process this cluster started that is still running,
   * then removes the data directory unless `keepData` (kept for a failed run).
   */
  async destroy(keepData = false): Promise<void> {
    const exits: Promise<void>[] = [];
    for (const child of this.children) {
      if (!isRunning(child)) continue;
      exits.push(new Promise<void>((res) => child.once('exit', () => res())));
      child.kill('SIGKILL');
    }
    await Promise.all(exits);
    if (keepData) console.error(`[${this.opts.name}] data and node logs kept in ${this.dataDir}`);
    else rmSync(this.dataDir, { recursive: true, force: true });
  }
}
