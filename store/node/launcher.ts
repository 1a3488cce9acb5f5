/**
 * Starts store nodes as separate OS processes and manages them by pid: used by
 * `npm run cluster`, the integration tests, benchmarks and the demo. Nothing
 * here restarts a process on its own; callers decide.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { nodeArgsFor, PACKAGE_ROOT, programPath } from '../../lib/entry.js';
import { formatClusterSpec, type MemberAddress } from './config.js';

const MAIN = programPath('store/node/main');

export interface LaunchOptions {
  readonly nodes: number;
  readonly basePort: number;
  readonly dataDir: string;
  readonly host?: string;
  /** Extra flags for every node, e.g. ['--snapshot-every', '500']. */
  readonly extraArgs?: readonly string[];
  /** Write each node's stdout/stderr to dataDir/<id>.log instead of inheriting. */
  readonly logToFiles?: boolean;
}

export function clusterMembers(nodes: number, basePort: number, host = '127.0.0.1'): MemberAddress[] {
  return Array.from({ length: nodes }, (_, i) => ({
    id: `n${i + 1}`,
    clientUrl: `http://${host}:${basePort + i}`,
    peerAddress: `${host}:${basePort + 100 + i}`,
  }));
}

export class StoreProcess {
  child: ChildProcess | undefined;
  constructor(
    readonly member: MemberAddress,
    private readonly args: readonly string[],
    private readonly logFile: string | undefined,
    /** Extra environment for the child (e.g. RAFT2PC_FAULTS=1 for chaos runs). */
    private readonly env: Readonly<Record<string, string>> = {},
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) return;
    const stdio: ('inherit' | number | 'ignore')[] = this.logFile ? ['ignore', openSync(this.logFile, 'a'), openSync(this.logFile, 'a')] : ['ignore', 'inherit', 'inherit'];
    this.child = spawn(process.execPath, [...nodeArgsFor(MAIN), ...this.args], { cwd: PACKAGE_ROOT, stdio, env: { ...process.env, ...this.env } });
  }

  /** SIGKILL: the process gets no chance to flush anything. */
  kill9(): Promise<void> {
    return this.signal('SIGKILL');
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill(sig);
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 5_000).unref());
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

export class LocalCluster {
  readonly members: MemberAddress[];
  readonly processes: StoreProcess[];

  constructor(readonly opts: LaunchOptions) {
    this.members = clusterMembers(opts.nodes, opts.basePort, opts.host);
    const spec = formatClusterSpec(this.members);
    mkdirSync(opts.dataDir, { recursive: true });
    this.processes = this.members.map((m) => {
      const args = ['--id', m.id, '--cluster', spec, '--data-dir', join(opts.dataDir, m.id), ...(opts.extraArgs ?? [])];
      return new StoreProcess(m, args, opts.logToFiles ? join(opts.dataDir, `${m.id}.log`) : undefined);
    });
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  process(id: string): StoreProcess {
    const p = this.processes.find((x) => x.member.id === id);
    if (!p) throw new Error(`no node ${id}`);
    return p;
  }

  start(): void {
    for (const p of this.processes) p.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }

  /** Polls every node's status until one leader is known to a majority, or the deadline passes. */
  async waitForLeader(timeoutMs = 15_000, among: readonly string[] = this.members.map((m) => m.id)): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(
        this.members
          .filter((m) => among.includes(m.id))
          .map(async (m) => {
            try {
              const res = await fetch(`${m.clientUrl}/v1/status`, { signal: AbortSignal.timeout(500) });
              return (await res.json()) as { id: string; role: string; leaderId: string | null; term: number };
            } catch {
              return undefined;
            }
          }),
      );
      const leaders = statuses.filter((s) => s?.role === 'leader');
      const leader = leaders.sort((a, b) => (b?.term ?? 0) - (a?.term ?? 0))[0];
      if (leader) {
        const agree = statuses.filter((s) => s?.leaderId === leader.id).length;
        if (agree >= Math.floor(this.members.length / 2) + 1) return leader.id;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }
}
