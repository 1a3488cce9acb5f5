/**
 * A real store cluster whose membership can change: node processes started
 * through store/node/launcher.ts's StoreProcess, founders from a fixed spec
 * and later members started with `--join` on ports in the same block.
 *
 * Ports: member i (0-based) serves clients on basePort+i and peers on
 * basePort+100+i, as launcher.ts does. Every process this helper starts is
 * tracked and killed by pid in `destroy()` (safe after a failed start), and
 * as a last resort when the test worker exits.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatClusterSpec, type MemberAddress } from '../../store/node/config.js';
import { StoreProcess, clusterMembers } from '../../store/node/launcher.js';
import { systemTimers } from '../../lib/timers.js';
import { forgetPid, reapStale, recordPid } from './pid-files.js';
import { waitFor } from './wait.js';

export interface NodeStatus {
  readonly id: string;
  readonly pid: number;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly revision: number;
  readonly members: readonly { id: string; clientUrl: string; peerAddress: string; learner: boolean }[];
}

const everyPid = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of everyPid) killPid(pid);
  });
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

export interface StoreClusterOptions {
  readonly name: string;
  readonly basePort: number;
  /** Founding members n1..nN. */
  readonly founders: number;
  /** Flags for every node (founders and joiners). */
  readonly extraArgs?: readonly string[];
  /** Extra environment for every node process. */
  readonly env?: Readonly<Record<string, string>>;
}

export class StoreCluster {
  readonly dataDir: string;
  /** Every member ever started, by id (a removed member stays listed). */
  readonly procs = new Map<string, StoreProcess>();
  private readonly children = new Set<ChildProcess>();
  /** The founders' --cluster spec: with a member's id, it names that member's process in a pid file's check. */
  private readonly spec: string;

  constructor(readonly opts: StoreClusterOptions) {
    installExitHook();
    this.dataDir = mkdtempSync(join(tmpdir(), `store-${opts.name}-`));
    const founders = clusterMembers(opts.founders, opts.basePort);
    this.spec = formatClusterSpec(founders);
    for (const m of founders) this.procs.set(m.id, this.makeProcess(m, this.spec, false));
  }

  /** Address of member n(i+1), whether or not it exists yet. */
  address(index: number): MemberAddress {
    const m = clusterMembers(index + 1, this.opts.basePort)[index];
    if (!m) throw new Error(`no address for member index ${index}`);
    return m;
  }

  private makeProcess(m: MemberAddress, spec: string, join_: boolean): StoreProcess {
    const args = ['--id', m.id, '--cluster', spec, '--data-dir', join(this.dataDir, m.id), ...(join_ ? ['--join'] : []), ...(this.opts.extraArgs ?? [])];
    mkdirSync(this.dataDir, { recursive: true });
    return new StoreProcess(m, args, join(this.dataDir, `${m.id}.log`), this.opts.env ?? {});
  }

  /**
   * Declares a new member that will join with `--join` (started by `start`).
   * Its --cluster spec lists the founders plus itself, so it knows its own ports.
   */
  declareJoiner(index: number): MemberAddress {
    const m = this.address(index);
    const founders = clusterMembers(this.opts.founders, this.opts.basePort);
    this.procs.set(m.id, this.makeProcess(m, formatClusterSpec([...founders, m]), true));
    return m;
  }

  get ids(): string[] {
    return [...this.procs.keys()];
  }

  get runningIds(): string[] {
    return this.ids.filter((id) => this.running(id));
  }

  /** Client URLs of every member declared so far. */
  get endpoints(): string[] {
    return [...this.procs.values()].map((p) => p.member.clientUrl);
  }

  proc(id: string): StoreProcess {
    const p = this.procs.get(id);
    if (!p) throw new Error(`no node ${id}`);
    return p;
  }

  url(id: string): string {
    return this.proc(id).member.clientUrl;
  }

  running(id: string): boolean {
    return isRunning(this.proc(id).child);
  }

  pid(id: string): number | undefined {
    return this.proc(id).pid;
  }

  start(id: string): void {
    const p = this.proc(id);
    const tag = `store-${new URL(p.member.clientUrl).port}`;
    if (!p.running) reapStale(tag, `--id ${id} --cluster ${this.spec}`);
    p.start();
    if (p.child) {
      this.children.add(p.child);
      if (p.child.pid !== undefined) {
        const pid = p.child.pid;
        everyPid.add(pid);
        recordPid(tag, pid);
        p.child.once('exit', () => {
          everyPid.delete(pid);
          forgetPid(tag, pid);
        });
      }
    }
  }

  async startFounders(timeoutMs = 60_000): Promise<string> {
    await Promise.all(this.ids.map((id) => this.launch(id, timeoutMs)));
    return this.waitLeader(this.ids, timeoutMs);
  }

  /** Starts (or restarts) a node and waits until it answers /healthz. */
  async restart(id: string, timeoutMs = 60_000): Promise<void> {
    await this.launch(id, timeoutMs);
  }

  /** How often a start hit EADDRINUSE and was retried (see `launch`). */
  portRetries = 0;

  /**
   * Starts a node and waits until it answers /healthz. This machine's
   * ephemeral port range (32768-60999) covers the test ports, so an outgoing
   * connection of any process can briefly hold one of our ports: a node that
   * exits with EADDRINUSE before it is healthy is started again.
   */
  async launch(id: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const logBefore = this.log(id).length;
      this.start(id);
      const outcome = await waitFor(`${id} healthy`, Math.max(0, deadline - Date.now()), async () => {
        if (await this.healthy(id)) return 'up';
        return this.running(id) ? undefined : 'exited';
      }, 25);
      if (outcome === 'up') return;
      const tail = this.log(id).slice(logBefore);
      if (!tail.includes('EADDRINUSE') || Date.now() > deadline) throw new Error(`${id} exited before it was healthy: ${tail.slice(-500)}`);
      this.portRetries++;
      await systemTimers.sleep(200);
    }
  }

  /** SIGKILL by pid; resolves once the process has exited. */
  async kill9(id: string): Promise<void> {
    await this.proc(id).kill9();
  }

  /** SIGTERM by pid (SIGKILL after 5 s); resolves once the process has exited. */
  async stop(id: string): Promise<void> {
    await this.proc(id).stop();
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

  async status(id: string, timeoutMs = 1_000): Promise<NodeStatus | undefined> {
    try {
      const res = await fetch(`${this.url(id)}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
      if (res.status !== 200) return undefined;
      return (await res.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /**
   * Polls the given nodes until one of them is leader in the highest term seen
   * and a majority of them name it; returns its id.
   */
  async waitLeader(among: readonly string[] = this.runningIds, timeoutMs = 15_000): Promise<string> {
    return waitFor(`a leader among ${among.join(',')}`, timeoutMs, async () => {
      const sts = (await Promise.all(among.map((id) => this.status(id, 500)))).filter((s): s is NodeStatus => s !== undefined);
      const leader = sts.filter((s) => s.role === 'leader').sort((a, b) => b.term - a.term)[0];
      if (!leader) return undefined;
      const agree = sts.filter((s) => s.leaderId === leader.id && s.term === leader.term).length;
      return agree >= Math.floor(among.length / 2) + 1 ? leader.id : undefined;
    }, 20);
  }

  log(id: string): string {
    const file = join(this.dataDir, `${id}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  logTails(lines = 20): string {
    return this.ids.map((id) => `--- ${id}.log ---\n${this.log(id).split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  /** Kills by pid every process this cluster started that still runs, then removes the data unless `keepData`. */
  async destroy(keepData = false): Promise<void> {
    const exits: Promise<void>[] = [];
    for (const child of this.children) {
      if (!isRunning(child) || child.pid === undefined) continue;
      exits.push(new Promise<void>((res) => child.once('exit', () => res())));
      killPid(child.pid);
    }
    await Promise.all(exits);
    if (keepData) console.error(`[${this.opts.name}] data and node logs kept in ${this.dataDir}`);
    else rmSync(this.dataDir, { recursive: true, force: true });
  }
}
