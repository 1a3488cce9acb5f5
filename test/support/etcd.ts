/**
 * Test support: a real 3-member etcd cluster on loopback, started from
 * Debian's etcd-server binary (/usr/bin/etcd, 3.4.23 on Debian 12), each
 * member a process managed by pid, with its data dir and its log under one
 * temp dir. The tests that use it pass `etcd://...` to the coordinators and
 * participants, or open the store in process.
 *
 * Ports: member i serves clients on basePort + i and peers on basePort + 3 + i,
 * so one cluster takes 6 ports; each test file picks its own base in
 * 37000-37199 so files running in parallel never collide. Those ports lie in
 * Linux's ephemeral range on a developer machine, so a member that lost its
 * port to some client socket is started again (bounded), as procs.ts does
 * for the 2PC processes.
 *
 * With `EtcdSecurity` the members serve their client URLs over TLS with
 * --client-cert-auth (dev certificates of lib/certs.ts), and once healthy
 * get a root user, a 2PC user with read and write on every key, and auth
 * turned on; the cluster's own probes then use https, the client
 * certificate and, where etcd wants a token, gRPC as root.
 *
 * Without etcd: outside CI the etcd tests are skipped with a message; in CI
 * (CI set) a missing etcd is an error, so CI cannot pass without them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterEach } from 'vitest';
import type { DevCertFiles } from '../../lib/certs.js';
import { findEtcd } from '../../lib/etcd-binary.js';
import { systemTimers } from '../../lib/timers.js';
import { forgetPid, reapStale, recordPid } from './pid-files.js';

// The etcd tests import the binary lookup from here, with the cluster.
export { etcdVersion, findEtcd } from '../../lib/etcd-binary.js';

/** The etcd tests' ports; the security tests' (test/security/etcd-tls.test.ts) are 29900-29999. */
const PORT_RANGES = [
  [37000, 37199],
  [29900, 29999],
] as const;
const MEMBERS = 3;
/** Restarts of a member that lost its port, at most, per start. */
const MAX_PORT_RETRIES = 5;

function inCi(): boolean {
  const v = process.env['CI'];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/**
 * The etcd binary for a test file, or undefined when its etcd tests must be
 * skipped (no etcd, not in CI; a message says so). Throws in CI without etcd.
 */
export function etcdForTests(file: string): string | undefined {
  const bin = findEtcd();
  if (bin !== undefined) return bin;
  if (inCi()) throw new Error(`${file}: etcd is not installed, and CI must run the etcd tests (apt-get install -y etcd-server; .ci/run does it)`);
  console.warn(`${file}: SKIPPING the etcd tests: etcd is not installed (apt-get install etcd-server). CI runs them.`);
  return undefined;
}

/** Set once any test of the file failed: the caller keeps the logs then. */
export function trackFailures(): { failed: boolean } {
  const state = { failed: false };
  afterEach(({ task }) => {
    if (task.result?.state === 'fail') state.failed = true;
  });
  return state;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** TLS and auth on a test cluster. */
export interface EtcdSecurity {
  /** Client URLs over TLS with server.crt; clients must show a certificate signed by ca.crt (--client-cert-auth). */
  readonly certs: DevCertFiles;
  /** After the start: users root (rootPassword) and `user` (read and write on every key), then auth on. */
  readonly auth?: { readonly rootPassword: string; readonly user: string; readonly password: string };
  /** etcd's --auth-token-ttl (simple tokens), in seconds; etcd's default is 300. */
  readonly tokenTtlSeconds?: number;
}

export class EtcdMember {
  child: ChildProcess | undefined;
  portRetries = 0;
  private logOffset = 0;

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    readonly logFile: string,
    private readonly bin: string,
    private readonly args: readonly string[],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`etcd ${this.name} is already running`);
    this.logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const tag = `etcd-${new URL(this.clientUrl).port}`;
    reapStale(tag, this.clientUrl);
    const fd = openSync(this.logFile, 'a');
    try {
      this.child = spawn(this.bin, [...this.args], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    const pid = this.child.pid;
    if (pid !== undefined) {
      recordPid(tag, pid);
      this.child.once('exit', () => forgetPid(tag, pid));
    }
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  kill9(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** SIGSTOP: the member holds its sockets open but answers nothing (a hung machine). */
  pause(): void {
    this.send('SIGSTOP');
  }

  resume(): void {
    this.send('SIGCONT');
  }

  /** Signals the process by pid; one that exited meanwhile (ESRCH) has nothing left to signal. */
  private send(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid as number, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }

  /** Whether the last run died because one of its ports was taken. */
  lostPort(): boolean {
    try {
      return readFileSync(this.logFile, 'utf8').slice(this.logOffset).includes('address already in use');
    } catch {
      return false;
    }
  }

  logTail(): string {
    return `--- ${this.name} (${this.logFile}) ---\n${tail(this.logFile)}`;
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    // A stopped process must run again to act on SIGTERM.
    this.send('SIGCONT');
    this.send(sig);
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 5_000).unref());
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      this.send('SIGKILL');
      await exited;
    }
  }
}

interface MemberStatus {
  readonly memberId: string;
  readonly leaderId: string;
  readonly raftTerm: number;
}

export class EtcdCluster {
  readonly members: EtcdMember[];

  /** gRPC clients as root, by member, for the probes that need a token under auth. */
  private readonly rootClients = new Map<EtcdMember, Etcd3>();
  /** Set once enableAuth turned auth on: before, root has no password to log in with. */
  private authOn = false;

  constructor(
    readonly bin: string,
    readonly dir: string,
    readonly basePort: number,
    readonly security?: EtcdSecurity,
  ) {
    const last = basePort + 2 * MEMBERS - 1;
    if (!PORT_RANGES.some(([lo, hi]) => basePort >= lo && last <= hi)) throw new Error(`etcd test ports ${basePort}-${last} are outside ${PORT_RANGES.map(([lo, hi]) => `${lo}-${hi}`).join(' and ')}`);
    mkdirSync(dir, { recursive: true });
    const names = Array.from({ length: MEMBERS }, (_, i) => `e${i + 1}`);
    const peer = (i: number): string => `http://127.0.0.1:${basePort + MEMBERS + i}`;
    const initial = names.map((n, i) => `${n}=${peer(i)}`).join(',');
    const c = security?.certs;
    const tlsArgs = c === undefined ? [] : ['--cert-file', c.serverCertFile, '--key-file', c.serverKeyFile, '--trusted-ca-file', c.caFile, '--client-cert-auth'];
    const ttlArgs = security?.tokenTtlSeconds === undefined ? [] : ['--auth-token-ttl', String(security.tokenTtlSeconds)];
    this.members = names.map((name, i) => {
      const clientUrl = `${c === undefined ? 'http' : 'https'}://127.0.0.1:${basePort + i}`;
      const dataDir = join(dir, name);
      const args = [
        '--name', name,
        '--data-dir', dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peer(i),
        '--initial-advertise-peer-urls', peer(i),
        '--initial-cluster', initial,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `twopc-test-${basePort}-${process.pid}`,
        '--logger', 'zap',
        '--log-level', 'info',
        ...tlsArgs,
        ...ttlArgs,
      ];
      return new EtcdMember(name, clientUrl, peer(i), dataDir, join(dir, `${name}.log`), bin, args);
    });
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** The `--store` value for coordinators and participants (etcds:// under TLS). */
  get storeFlag(): string {
    return `${this.security === undefined ? 'etcd' : 'etcds'}://${this.members.map((m) => m.clientUrl.replace(/^https?:\/\//, '')).join(',')}`;
  }

  /** The RAFT2PC_ETCD_* variables a 2PC process needs to reach this cluster. */
  get clientEnv(): Record<string, string> {
    const s = this.security;
    if (s === undefined) return {};
    const tls = { RAFT2PC_ETCD_CA_FILE: s.certs.caFile, RAFT2PC_ETCD_CERT_FILE: s.certs.clientCertFile, RAFT2PC_ETCD_KEY_FILE: s.certs.clientKeyFile };
    return s.auth === undefined ? tls : { ...tls, RAFT2PC_ETCD_USER: s.auth.user, RAFT2PC_ETCD_PASSWORD: s.auth.password };
  }

  /** What the tests' own https requests to etcd trust and show. */
  private tlsOptions(): https.RequestOptions {
    const c = this.security?.certs;
    return c === undefined ? {} : { ca: readFileSync(c.caFile), cert: readFileSync(c.clientCertFile), key: readFileSync(c.clientKeyFile) };
  }

  /** A gRPC client on one member (or all), as root once auth is on. */
  rootClient(m?: EtcdMember, withAuth = true): Etcd3 {
    const s = this.security;
    const hosts = m === undefined ? this.endpoints : [m.clientUrl];
    const credentials = s === undefined ? undefined : { rootCertificate: readFileSync(s.certs.caFile), certChain: readFileSync(s.certs.clientCertFile), privateKey: readFileSync(s.certs.clientKeyFile) };
    const auth = withAuth && s?.auth !== undefined ? { username: 'root', password: s.auth.rootPassword } : undefined;
    return new Etcd3({ hosts, ...(credentials === undefined ? {} : { credentials }), ...(auth === undefined ? {} : { auth }), defaultCallOptions: () => ({ deadline: Date.now() + 2_000 }) });
  }

  /** Users root and the 2PC user (read and write on every key), then auth on: etcd's own order (root first). */
  async enableAuth(): Promise<void> {
    const auth = this.security?.auth;
    if (auth === undefined) return;
    const c = this.rootClient(undefined, false);
    try {
      await c.role('root').create();
      await c.user('root').create(auth.rootPassword);
      await c.user('root').addRole('root');
      await c.role('twopc').create();
      // key "\0" with range end "\0": every key.
      await c.auth.roleGrantPermission({ name: 'twopc', perm: { permType: 'Readwrite', key: Buffer.from([0]), range_end: Buffer.from([0]) } });
      await c.user(auth.user).create(auth.password);
      await c.user(auth.user).addRole('twopc');
      await c.auth.authEnable();
      this.authOn = true;
      for (const old of this.rootClients.values()) old.close();
      this.rootClients.clear();
    } finally {
      c.close();
    }
  }

  /** One request to a member's HTTP endpoint, over https with the client certificate under TLS. */
  private requestJson(url: string, method: string, body?: string): Promise<{ status: number; json: unknown }> {
    if (this.security === undefined) {
      return fetch(url, { method, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(1_000) }).then(async (res) => ({ status: res.status, json: await res.json() }));
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, ...this.tlsOptions(), agent: false, timeout: 1_000 }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  start(): void {
    for (const m of this.members) {
      m.portRetries = 0;
      m.start();
    }
  }

  /** Starts one member again (after kill9 or stop) on its data dir. */
  restart(m: EtcdMember): void {
    m.portRetries = 0;
    m.start();
  }

  /** Every running member reports healthy (it has a leader and serves reads), or throws with the logs. */
  async waitHealthy(timeoutMs = 30_000, among: readonly EtcdMember[] = this.members): Promise<void> {
    await this.poll(`etcd members ${among.map((m) => m.name).join(', ')} healthy`, timeoutMs, async () => {
      for (const m of among) this.checkAlive(m);
      const ok = await Promise.all(among.map((m) => this.healthy(m)));
      return ok.every(Boolean);
    });
  }

  /** The member every one of `among` names as leader. */
  async waitForLeader(timeoutMs = 30_000, among: readonly EtcdMember[] = this.members.filter((m) => m.running)): Promise<EtcdMember> {
    let leader: EtcdMember | undefined;
    await this.poll('an etcd leader', timeoutMs, async () => {
      for (const m of among) this.checkAlive(m);
      const statuses = await Promise.all(among.map((m) => this.status(m).catch(() => undefined)));
      const first = statuses[0];
      if (first === undefined || first.leaderId === '0' || !statuses.every((s) => s?.leaderId === first.leaderId)) return false;
      const i = statuses.findIndex((s) => s?.memberId === first.leaderId);
      leader = among[i];
      return leader !== undefined;
    });
    return leader as EtcdMember;
  }

  /**
   * Moves leadership to another member (etcd's MoveLeader, sent to the
   * leader) and waits until every member names the new one: a leader change
   * without a dead process, for tests of what survives one.
   */
  async transferLeader(timeoutMs = 30_000): Promise<{ from: EtcdMember; to: EtcdMember }> {
    const from = await this.waitForLeader(timeoutMs);
    const to = this.members.find((m) => m !== from && m.running);
    if (to === undefined) throw new Error('no member to move the etcd leadership to');
    const target = await this.status(to);
    if (this.security !== undefined) {
      await this.grpcOn(from, (c) => c.maintenance.moveLeader({ targetID: target.memberId }));
    } else {
      const res = await fetch(`${from.clientUrl}/v3/maintenance/transfer-leadership`, {
        method: 'POST',
        body: JSON.stringify({ targetID: target.memberId }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status !== 200) throw new Error(`etcd transfer-leadership: ${res.status} ${await res.text()}`);
    }
    const now = await this.waitForLeader(timeoutMs);
    if (now !== to) throw new Error(`etcd leadership went to ${now.name}, not ${to.name}`);
    return { from, to };
  }

  async stop(): Promise<void> {
    for (const c of this.rootClients.values()) c.close();
    this.rootClients.clear();
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** A gRPC call on one member as root (etcd's HTTP gateway refuses client certificates under --client-cert-auth). */
  private async grpcOn<T>(m: EtcdMember, f: (c: Etcd3) => Promise<T>): Promise<T> {
    let c = this.rootClients.get(m);
    if (c === undefined) {
      c = this.rootClient(m, this.authOn);
      this.rootClients.set(m, c);
    }
    return f(c);
  }

  /** Removes the data dirs and logs, unless `keep` (then says where they are). */
  dispose(keep: boolean): void {
    if (keep) console.log(`etcd logs and data kept in ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }

  logTails(): string {
    return this.members.map((m) => m.logTail()).join('\n');
  }

  async status(m: EtcdMember): Promise<MemberStatus> {
    if (this.security !== undefined) {
      const s = await this.grpcOn(m, (c) => c.maintenance.status());
      return { memberId: s.header.member_id, leaderId: s.leader === '' ? '0' : s.leader, raftTerm: Number(s.raftTerm) };
    }
    const { json } = await this.requestJson(`${m.clientUrl}/v3/maintenance/status`, 'POST', '{}');
    const body = json as { header?: { member_id?: string }; leader?: string; raftTerm?: string };
    return { memberId: body.header?.member_id ?? '', leaderId: body.leader ?? '0', raftTerm: Number(body.raftTerm ?? 0) };
  }

  private async healthy(m: EtcdMember): Promise<boolean> {
    try {
      const { json } = await this.requestJson(`${m.clientUrl}/health`, 'GET');
      return (json as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  /** Restarts a member that lost its port (bounded); throws with the logs if one died otherwise. */
  private checkAlive(m: EtcdMember): void {
    if (m.running) return;
    if (m.lostPort() && m.portRetries < MAX_PORT_RETRIES) {
      m.portRetries++;
      m.start();
      return;
    }
    throw new Error(`etcd ${m.name} exited (code ${String(m.child?.exitCode)}, signal ${String(m.child?.signalCode)})\n${m.logTail()}`);
  }

  private async poll(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.logTails()}`);
      await systemTimers.sleep(50);
    }
  }
}

/** Starts a 3-member cluster under `dir` on basePort..basePort+5 and waits until it is healthy (then turns auth on, with `security.auth`). */
export async function startEtcdCluster(bin: string, dir: string, basePort: number, timeoutMs = 30_000, security?: EtcdSecurity): Promise<EtcdCluster> {
  const cluster = new EtcdCluster(bin, dir, basePort, security);
  cluster.start();
  try {
    await cluster.waitHealthy(timeoutMs);
    await cluster.waitForLeader(timeoutMs);
    await cluster.enableAuth();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}
