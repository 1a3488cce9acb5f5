/**
 * `raft2pc cluster --nodes 3 --base-port 2379 --data-dir data/cluster [--grow-to 5]`
 * (or `npm run cluster -- ...`; `--help` lists every flag)
 * Starts a local cluster in the foreground, prints each node's URL and pid,
 * and stops every node cleanly on Ctrl-C. Node i serves clients on
 * base-port+i-1 and peers on base-port+100+i-1.
 *
 * The running cluster can grow and shrink. Type commands on stdin:
 *   status          one line per member: role, term, applied index, pid
 *   add             start the next member nK (same port scheme) with --join, add it
 *                   as a learner (POST /v1/members), wait until it has caught up
 *                   with the leader's commit index, then promote it to voter
 *   remove <id>     remove member <id> (DELETE /v1/members/<id>; the leader too: the
 *                   others elect a new one), then stop its process
 *   transfer <id>   hand leadership to <id> (POST /v1/leader/transfer)
 *   quit            stop every node and exit (as Ctrl-C does)
 * `--grow-to N` runs `add` until the cluster has N members right after start.
 * `--certs DIR` makes dev certificates in DIR (lib/certs.ts; a CA there is
 * kept) and runs every link on TLS: https with client certificates on the
 * API, mutual TLS between peers (docs/SECURITY.md).
 * For example, grow to 5 and shrink back to 3:
 *   npm run cluster -- --nodes 3 --grow-to 5      then type: remove n1, remove n2
 * or non-interactively: printf 'add\nadd\nremove n1\nremove n2\nstatus\n' | npm run cluster
 * (end of stdin does not stop the cluster; `quit` or Ctrl-C does).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, type CommandContext } from '../../lib/cli.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { MAX_QUOTA_BYTES, MIN_QUOTA_BYTES } from '../kv/index.js';
import { ENGINES, formatClusterSpec, type MemberAddress } from './config.js';
import { makeDevCertificates } from '../../lib/certs.js';
import { LocalCluster, StoreProcess, clusterMembers, tlsArgs } from './launcher.js';

interface Status {
  id: string;
  role: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  members: { id: string; learner: boolean }[];
}

/** An admin call the cluster answered with a final "no" (4xx other than 409): retrying cannot help. */
class AdminRefused extends Error {}

class ClusterControl {
  /** Every member this CLI started, founders first, by id. */
  readonly procs = new Map<string, StoreProcess>();

  constructor(
    readonly cluster: LocalCluster,
    private readonly basePort: number,
  ) {
    for (const p of cluster.processes) this.procs.set(p.member.id, p);
  }

  private running(): StoreProcess[] {
    return [...this.procs.values()].filter((p) => p.running);
  }

  private async status(p: StoreProcess): Promise<Status | undefined> {
    try {
      const res = await this.cluster.http.request({ method: 'GET', url: `${p.member.clientUrl}/v1/status`, timeoutMs: 1_000 });
      return res.status === 200 ? (JSON.parse(res.text) as Status) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The leader as reported by itself, polling until one answers or the deadline passes. */
  async leader(timeoutMs = 15_000): Promise<{ proc: StoreProcess; status: Status }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const p of this.running()) {
        const st = await this.status(p);
        if (st?.role === 'leader') return { proc: p, status: st };
      }
      await sleep(50);
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  /** Sends an admin call to the leader, retrying while the cluster is busy electing or changing. */
  private async admin(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 30_000;
    let last = '';
    while (Date.now() < deadline) {
      const { proc } = await this.leader();
      try {
        const res = await this.cluster.http.request({
          method,
          url: `${proc.member.clientUrl}${path}`,
          headers: { 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          timeoutMs: 10_000,
        });
        const payload = JSON.parse(res.text) as Record<string, unknown>;
        if (res.status === 200) return payload;
        last = `${res.status} ${JSON.stringify(payload)}`;
        if (res.status !== 503 && res.status !== 409 && res.status !== 504) throw new AdminRefused(`${method} ${path}: ${last}`);
      } catch (e) {
        if (e instanceof AdminRefused) throw e;
        last = String(e);
      }
      await sleep(100);
    }
    throw new Error(`${method} ${path} did not succeed within 30 s (last: ${last})`);
  }

  /**
   * Starts a member's process and waits until it answers /healthz. The test
   * ports sit inside Linux's ephemeral range (32768-60999), so an outgoing
   * connection can briefly hold one: a start that dies with EADDRINUSE is
   * retried; any other early exit is an error naming the log's last lines.
   */
  async launch(proc: StoreProcess, timeoutMs = 60_000): Promise<void> {
    const logFile = join(this.cluster.opts.dataDir, `${proc.member.id}.log`);
    const logSize = (): number => (existsSync(logFile) ? statSync(logFile).size : 0);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const from = logSize();
      proc.start();
      console.log(`${proc.member.id}: starting, pid ${proc.pid}`);
      for (;;) {
        try {
          const res = await this.cluster.http.request({ method: 'GET', url: `${proc.member.clientUrl}/healthz`, timeoutMs: 500 });
          if (res.status === 200) return;
        } catch {
          // not up yet
        }
        if (!proc.running || Date.now() > deadline) break;
        await sleep(50);
      }
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(from) : '';
      if (proc.running) throw new Error(`${proc.member.id} (pid ${proc.pid}) not healthy within ${timeoutMs} ms`);
      if (!tail.includes('EADDRINUSE') || Date.now() > deadline) throw new Error(`${proc.member.id} exited: ${tail.trim().split('\n').slice(-3).join(' | ')}`);
      console.log(`${proc.member.id}: a port was busy (EADDRINUSE), starting it again`);
      await sleep(200);
    }
  }

  async printStatus(): Promise<void> {
    for (const p of this.procs.values()) {
      const st = p.running ? await this.status(p) : undefined;
      const what = !p.running ? 'stopped' : st ? `${st.role.padEnd(9)} term ${st.term}  applied ${st.appliedIndex}  commit ${st.commitIndex}` : 'not answering';
      console.log(`${p.member.id}  ${p.member.clientUrl}  pid ${p.pid ?? '-'}  ${what}`);
    }
    const { status } = await this.leader();
    const byId = [...status.members].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
    const voters = byId.filter((m) => !m.learner).map((m) => m.id);
    const learners = byId.filter((m) => m.learner).map((m) => m.id);
    console.log(`members: voters ${voters.join(',')}${learners.length ? `  learners ${learners.join(',')}` : ''}  (leader ${status.id}, term ${status.term})`);
  }

  /** Starts nK with --join, adds it as a learner, waits for catch-up, promotes it. */
  async add(): Promise<void> {
    const used = [...this.procs.keys()].map((id) => Number(id.slice(1))).filter((n) => Number.isInteger(n));
    const index = Math.max(0, ...used); // nK with K = index + 1
    const m = clusterMembers(index + 1, this.basePort, this.cluster.opts.host, this.cluster.opts.certs === undefined ? 'http' : 'https')[index] as MemberAddress;
    const spec = formatClusterSpec([...this.cluster.members, m]);
    const dir = this.cluster.opts.dataDir;
    const tls = this.cluster.opts.certs === undefined ? [] : tlsArgs(this.cluster.opts.certs);
    const proc = new StoreProcess(m, ['--id', m.id, '--cluster', spec, '--data-dir', join(dir, m.id), '--join', ...tls, ...(this.cluster.opts.extraArgs ?? [])], join(dir, `${m.id}.log`), this.cluster.opts.env);
    this.procs.set(m.id, proc);
    try {
      await this.launch(proc);
    } catch (e) {
      this.procs.delete(m.id);
      await proc.stop();
      throw e;
    }
    console.log(`started ${m.id}  ${m.clientUrl}  peer ${m.peerAddress}  pid ${proc.pid}`);
    await this.admin('POST', '/v1/members', { id: m.id, clientUrl: m.clientUrl, peerAddress: m.peerAddress, learner: true });
    const target = (await this.leader()).status.commitIndex;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = await this.status(proc);
      if (st && st.appliedIndex >= target) break;
      if (Date.now() > deadline) throw new Error(`${m.id} did not catch up to index ${target} within 60 s`);
      await sleep(50);
    }
    await this.admin('POST', `/v1/members/${m.id}/promote`);
    console.log(`added ${m.id} as a voter (caught up to index ${target} as a learner first)`);
  }

  async remove(id: string): Promise<void> {
    await this.admin('DELETE', `/v1/members/${encodeURIComponent(id)}`);
    console.log(`removed ${id} from the membership`);
    const proc = this.procs.get(id);
    if (proc?.running) {
      await proc.stop();
      console.log(`stopped ${id} (pid ${proc.pid})`);
    }
    const { proc: leader } = await this.leader();
    console.log(`leader is ${leader.member.id}`);
  }

  async transfer(id: string): Promise<void> {
    const t = Date.now();
    const res = await this.admin('POST', '/v1/leader/transfer', { to: id });
    console.log(`leader is ${String(res['leaderId'])} (transfer took ${Date.now() - t} ms)`);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => p.stop()));
  }
}

/** The CLI's own waits: nothing else may hold the process open while it polls. */
function sleep(ms: number): Promise<void> {
  return keepAliveTimers.sleep(ms);
}

export const clusterCommand = defineCommand({
  name: 'cluster',
  summary: 'run a local store cluster in the foreground: grow, shrink and inspect it from stdin',
  details: 'stdin commands: status | add | remove <id> | transfer <id> | quit (Ctrl-C stops every node too)',
  flags: {
    nodes: { type: 'int', default: 3, min: 1, max: 99, description: 'founding members (n1..nN)' },
    'base-port': { type: 'int', default: 2379, min: 1, max: 65_535 - 200, description: 'node i serves clients on base-port+i-1 and peers on base-port+100+i-1' },
    'data-dir': { type: 'string', default: 'data/cluster', placeholder: 'DIR', description: "every node's data, and its log as <id>.log" },
    'grow-to': { type: 'int', default: 0, min: 0, max: 99, description: 'add members right after start until there are this many' },
    'quota-bytes': { type: 'int', min: MIN_QUOTA_BYTES, max: MAX_QUOTA_BYTES, description: "every node's store quota on key and value bytes (the store's --quota-bytes; default: the engine's)" },
    engine: { type: 'enum', values: ENGINES, default: 'lmdb', description: "every node's engine (the store's --engine)" },
    certs: { type: 'string', placeholder: 'DIR', description: 'TLS on every link: make dev certificates in DIR (raft2pc certs; a CA already there is kept) and run https with client certificates and mutual TLS between peers' },
    ...LOG_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const basePort = values['base-port'];
    const certs = values.certs === undefined ? undefined : await makeDevCertificates({ dir: values.certs });
    if (certs !== undefined) ctx.out(`TLS: CA ${certs.caFile}; clients show ${certs.clientCertFile} (key ${certs.clientKeyFile})`);
    const cluster = new LocalCluster({
      nodes: values.nodes,
      basePort,
      dataDir: values['data-dir'],
      logToFiles: true,
      ...(certs === undefined ? {} : { certs }),
      // Every node logs as asked, the ones `add` starts later too.
      extraArgs: ['--log-level', values['log-level'], '--log-format', values['log-format'], '--engine', values.engine, ...(values['quota-bytes'] === undefined ? [] : ['--quota-bytes', String(values['quota-bytes'])])],
    });
    const control = new ClusterControl(cluster, basePort);
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      ctx.out('stopping...');
      void control.stopAll().then(() => process.exit(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);

    try {
      await Promise.all(cluster.processes.map((p) => control.launch(p)));
      const leader = await cluster.waitForLeader(60_000);
      for (const p of cluster.processes) {
        ctx.out(`${p.member.id}  ${p.member.clientUrl}  peer ${p.member.peerAddress}  pid ${p.pid}${p.member.id === leader ? '  (leader)' : ''}`);
      }
      ctx.out(`logs in ${cluster.opts.dataDir}/<id>.log; Ctrl-C stops every node`);
      while (!stopping && control.procs.size < values['grow-to']) await control.add();
    } catch (e) {
      // Never leave nodes running behind a CLI that gives up.
      await control.stopAll();
      throw e;
    }
    readCommands(control, ctx, () => stopping, stop);
    return undefined;
  },
});

const COMMANDS_HELP = 'commands: status | add | remove <id> | transfer <id> | quit';

/** One command at a time, in order, even when stdin delivers several lines at once. */
function readCommands(control: ClusterControl, ctx: CommandContext, stopping: () => boolean, stop: () => void): void {
  ctx.out(COMMANDS_HELP);
  let queue = Promise.resolve();
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    queue = queue.then(async () => {
      if (stopping() || !cmd) return;
      try {
        if (cmd === 'status') await control.printStatus();
        else if (cmd === 'add') await control.add();
        else if (cmd === 'remove' && arg) await control.remove(arg);
        else if (cmd === 'transfer' && arg) await control.transfer(arg);
        else if (cmd === 'quit') stop();
        else ctx.out(COMMANDS_HELP);
      } catch (e) {
        ctx.out(`error: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  });
}

if (isEntryPoint(import.meta.url)) runMain(clusterCommand);
