/**
 * Starts store nodes as separate OS processes and manages them by pid: used by
 * `npm run cluster`, the integration tests, benchmarks and the demo. Nothing
 * here restarts a process on its own; callers decide.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DevCertFiles } from '../../lib/certs.js';
import { nodeArgsFor, PACKAGE_ROOT, programPath } from '../../lib/entry.js';
import { HttpClient, type HttpClientTls } from '../../lib/http-client.js';
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
  /** Extra environment for every node. */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra node flags for every node (e.g. --cpu-prof for a profile). */
  readonly nodeFlags?: readonly string[];
  /** The node's entry file; default: this package's (sources under tsx in development, dist/ when installed). */
  readonly program?: string;
  /**
   * TLS with these certificates (lib/certs.ts) on every link: https with
   * client certificates on the API, mutual TLS between peers. The cluster's
   * own status polls show the client certificate.
   */
  readonly certs?: DevCertFiles;
}

/** The store flags that turn on TLS, client certificates and peer mTLS with `certs`. */
export function tlsArgs(certs: DevCertFiles): string[] {
  const files = ['--cert-file', certs.serverCertFile, '--key-file', certs.serverKeyFile, '--trusted-ca-file', certs.caFile, '--client-cert-auth'];
  const peer = ['--peer-cert-file', certs.serverCertFile, '--peer-key-file', certs.serverKeyFile, '--peer-trusted-ca-file', certs.caFile, '--peer-client-cert-auth'];
  return [...files, ...peer];
}

export function clusterMembers(nodes: number, basePort: number, host = '127.0.0.1', scheme: 'http' | 'https' = 'http'): MemberAddress[] {
  return Array.from({ length: nodes }, (_, i) => ({
    id: `n${i + 1}`,
    clientUrl: `${scheme}://${host}:${basePort + i}`,
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
    /** Flags for node itself, before the program (e.g. --cpu-prof). */
    private readonly nodeFlags: readonly string[] = [],
    private readonly program: string = MAIN,
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
    this.child = spawn(process.execPath, [...this.nodeFlags, ...nodeArgsFor(this.program), ...this.args], { cwd: PACKAGE_ROOT, stdio, env: { ...process.env, ...this.env } });
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
  /** For the cluster's own calls (status, admin): shows the client certificate under `certs`. */
  readonly http: HttpClient;

  constructor(readonly opts: LaunchOptions) {
    this.members = clusterMembers(opts.nodes, opts.basePort, opts.host, opts.certs === undefined ? 'http' : 'https');
    const spec = formatClusterSpec(this.members);
    mkdirSync(opts.dataDir, { recursive: true });
    this.http = new HttpClient(opts.certs === undefined ? {} : { tls: clientTlsOf(opts.certs) });
    const tls = opts.certs === undefined ? [] : tlsArgs(opts.certs);
    this.processes = this.members.map((m) => {
      const args = ['--id', m.id, '--cluster', spec, '--data-dir', join(opts.dataDir, m.id), ...tls, ...(opts.extraArgs ?? [])];
      return new StoreProcess(m, args, opts.logToFiles ? join(opts.dataDir, `${m.id}.log`) : undefined, opts.env, opts.nodeFlags, opts.program);
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
    // `http` stays open: a stopped cluster may be started again (its idle sockets do not hold the process).
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
              const res = await this.http.request({ method: 'GET', url: `${m.clientUrl}/v1/status`, timeoutMs: 500 });
              return JSON.parse(res.text) as { id: string; role: string; leaderId: string | null; term: number };
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

/** What the cluster's own calls trust and show: the dev CA and client certificate. */
export function clientTlsOf(certs: DevCertFiles): HttpClientTls {
  return { ca: readFileSync(certs.caFile, 'utf8'), cert: readFileSync(certs.clientCertFile, 'utf8'), key: readFileSync(certs.clientKeyFile, 'utf8') };
}
