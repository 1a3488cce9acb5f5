/**
 * One backend of the 2PC benchmark, started whole: its 3-node store (the
 * built-in one, etcd, or an external cluster named by a spec), one
 * coordinator and two participants as their own processes
 * (bench-coordinator.ts, bench-participant.ts), and the driver's own store
 * client (for the probe and the store's revision). Everything started here
 * is stopped by `close`, also when starting fails halfway. With a secure
 * setup (secure.ts) the built-in store and the processes run with TLS on
 * every link and store auth, as the backend labelled `secure`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { etcdVersion, findEtcd } from '../../lib/etcd-binary.js';
import { EtcdCluster } from '../etcd.js';
import { bootstrapStoreAuth, operatorHeaders, serviceTokenArgs, type SecureSetup } from '../../demo/supervisor/secure.js';
import { tlsHttpClient } from '../../lib/tls.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { openTxStore, parseStoreSpec, type OpenedStore, type StoreSpec } from '../../coordinator/txstore/index.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { BenchProc } from './processes.js';
import { progress } from '../output.js';
import type { TxTargets } from './workload.js';
import { COORDINATOR_USER, leanHttpFor, rootEnv } from './secure.js';

export interface BackendOptions {
  /** Our store's first client port (peers at +100). */
  readonly basePort: number;
  readonly etcdBasePort: number;
  /** The coordinator's port; participants at +2 and +4. */
  readonly appBasePort: number;
  /** Our store's --snapshot-every; undefined: the node's default. */
  readonly snapshotEvery: number | undefined;
  /** Where --cpu-prof writes the coordinator's and participants' profiles, if profiling. */
  readonly profileDir: string | undefined;
  /** Most concurrent clients of any row (sizes the HTTP agents). */
  readonly maxClients: number;
  /** Transaction timeout sent with begin. */
  readonly timeoutMs: number;
  readonly participantsInBegin: boolean;
}

export interface Backend {
  readonly label: string;
  readonly spec: StoreSpec;
  /** Store server processes started here (for CPU accounting); empty for an external store. */
  readonly storePids: () => number[];
  readonly procs: BenchProc[];
  readonly coordinator: BenchProc;
  readonly participants: readonly BenchProc[];
  readonly driverStore: OpenedStore;
  readonly targets: TxTargets;
  readonly version: string;
  close(): Promise<void>;
}

export interface StoreStarter {
  readonly label: string;
  readonly spec: StoreSpec;
  readonly pids: () => number[];
  readonly version: string;
  /** Set for the secure configuration: certificates, users and passwords. */
  readonly secure?: SecureSetup;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The secure store's ports sit this far above the plain one's, so both run side by side. */
const SECURE_PORT_SHIFT = 10;

export function storeStarter(text: string, opts: BackendOptions, dir: string, secure?: SecureSetup): StoreStarter {
  if (secure !== undefined && text !== 'builtin') throw new Error('--secure and --compare-secure run the built-in store only (etcd with TLS and auth: test/security/etcd-tls.test.ts)');
  if (text === 'builtin') {
    const basePort = opts.basePort + (secure === undefined ? 0 : SECURE_PORT_SHIFT);
    const label = secure === undefined ? 'builtin' : 'secure';
    const cluster = new LocalCluster({ nodes: 3, basePort, dataDir: join(dir, label === 'builtin' ? 'store' : 'store-secure'), logToFiles: true, ...(secure === undefined ? {} : { certs: secure.certs }),
      extraArgs: opts.snapshotEvery === undefined ? [] : ['--snapshot-every', String(opts.snapshotEvery)],
      ...(opts.profileDir === undefined ? {} : { nodeFlags: ['--cpu-prof', '--cpu-prof-dir', join(opts.profileDir, 'store')] }),
    });
    return {
      label,
      spec: { kind: 'builtin', endpoints: cluster.endpoints },
      pids: () => cluster.processes.map((p) => p.pid).filter((p): p is number => p !== undefined),
      version: secure === undefined ? 'this repository' : 'this repository, TLS + auth',
      ...(secure === undefined ? {} : { secure }),
      async start() {
        progress(`starting the built-in store (3 nodes${secure === undefined ? '' : ', TLS and auth'}) on ports ${basePort}-${basePort + 2}...`, true);
        cluster.start();
        await cluster.waitForLeader(60_000); // generous: nodes start slowly on a busy 2-core machine
        // A node that lost its port exits, and waitForLeader may have heard someone else's cluster: check the pids.
        for (const p of cluster.processes) {
          const pid = await servingPid(p.member.clientUrl, 30_000);
          if (pid !== p.pid) throw new Error(`${p.member.clientUrl} is served by pid ${String(pid)}, not the node started here (port in use?)`);
        }
        if (secure !== undefined) await bootstrapStoreAuth(secure, cluster.endpoints);
      },
      stop: () => cluster.stop(),
    };
  }
  if (text === 'etcd') {
    const bin = findEtcd();
    if (bin === undefined) throw new Error('--store etcd: no etcd binary (apt-get install etcd-server), or pass etcd://host:port,... of a running cluster');
    const etcd = new EtcdCluster(bin, join(dir, 'etcd'), opts.etcdBasePort, opts.etcdBasePort + 100);
    const version = etcdVersion(bin);
    return {
      label: 'etcd',
      spec: { kind: 'etcd', endpoints: etcd.endpoints },
      pids: () => etcd.pids,
      version: `etcd ${version}`,
      async start() {
        progress(`starting etcd ${version} (3 members) on ports ${opts.etcdBasePort}-${opts.etcdBasePort + 2}...`, true);
        etcd.start();
        await etcd.waitHealthy(60_000);
        // A member that lost its port exits at once, and the health check may have heard someone else's etcd.
        await keepAliveTimers.sleep(500);
        if (!etcd.pids.every(alive)) throw new Error(`etcd members exited at start (port in use?); see ${join(dir, 'etcd')}/*.log`);
      },
      stop: () => etcd.stop(),
    };
  }
  const spec = parseStoreSpec(text);
  return { label: spec.kind === 'etcd' ? 'etcd' : 'builtin', spec, pids: () => [], version: 'external', start: async () => {}, stop: async () => {} };
}

/** The pid a store node reports in /v1/status, asking until it answers (a node of a new cluster may still be starting). */
async function servingPid(url: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  const http = tlsHttpClient({}); // https: the process's CA and client certificate (secure.ts sets them)
  try {
    for (;;) {
      try {
        const res = await http.request({ method: 'GET', url: `${url}/v1/status`, timeoutMs: 2_000 });
        return (JSON.parse(res.text) as { pid?: number }).pid;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${url} did not answer /v1/status within ${timeoutMs} ms: ${String(e)}`);
        await keepAliveTimers.sleep(200);
      }
    }
  } finally {
    http.close();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function openDriverStore(spec: StoreSpec, secure: SecureSetup | undefined): Promise<OpenedStore> {
  try {
    return await openTxStore(spec, 'bench-driver', secure === undefined ? process.env : rootEnv(secure));
  } catch (e) {
    if (spec.kind === 'etcd' && String(e).includes('etcd-store')) {
      throw new Error(`the etcd adapter of TxStore (coordinator/txstore/etcd/etcd-store.ts) is not available yet: ${String(e)}`);
    }
    throw e;
  }
}

export async function startBackend(starter: StoreStarter, opts: BackendOptions, dir: string, portOffset: number): Promise<Backend> {
  let driverStore: OpenedStore;
  try {
    await starter.start();
    driverStore = await openDriverStore(starter.spec, starter.secure);
  } catch (e) {
    await starter.stop().catch(() => undefined);
    throw e;
  }
  const specText = `${starter.spec.kind === 'etcd' ? 'etcd://' : ''}${starter.spec.endpoints.join(',')}`;
  const logs = join(dir, `${starter.label}-procs`);
  mkdirSync(logs, { recursive: true });
  const nodeArgs = opts.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', join(opts.profileDir, starter.label)];
  const port = (i: number): string => String(opts.appBasePort + portOffset + 2 * i);
  const sec = starter.secure;
  const tlsArgs = sec === undefined ? [] : sec.serviceArgs(true);
  const secure = (user: string): { env: Record<string, string>; scheme: 'http' | 'https' } => (sec === undefined ? { env: {}, scheme: 'http' } : { env: sec.envFor(user), scheme: 'https' });
  const coordinator = new BenchProc('coordinator', 'bench-coordinator.ts', ['--port', port(0), '--store', specText, '--id', COORDINATOR_USER, ...tlsArgs, ...(sec === undefined ? [] : serviceTokenArgs(sec, 'coordinator', COORDINATOR_USER))], join(logs, 'coordinator.log'), nodeArgs, secure(COORDINATOR_USER));
  const participants = ['a', 'b'].map(
    (name, i) =>
      new BenchProc(`participant ${name}`, 'bench-participant.ts', ['--name', name, '--port', port(i + 1), '--store', specText, '--log', join(dir, `${starter.label}-${name}`, 'participant-log.json'), ...tlsArgs, ...(sec === undefined ? [] : serviceTokenArgs(sec, 'bank', name))], join(logs, `participant-${name}.log`), nodeArgs, secure(name)),
  );
  const procs = [coordinator, ...participants];
  const close = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop()));
    await driverStore.close();
    await starter.stop();
  };
  try {
    progress(`starting the coordinator and two participants on ${starter.label}...`, true);
    await Promise.all(procs.map((p) => p.start()));
  } catch (e) {
    await close();
    throw e;
  }
  progress(`  ${starter.label}: store pids ${starter.pids().join(', ') || '(external)'}; coordinator pid ${coordinator.pid ?? '?'}; participant pids ${participants.map((p) => p.pid ?? '?').join(', ')}`, true);
  const maxSockets = opts.maxClients + 8;
  const targets: TxTargets = {
    coordinator: leanHttpFor(coordinator.url, maxSockets, operatorHeaders(sec)),
    participants: participants.map((p, i) => ({ name: ['a', 'b'][i] as string, url: p.url, http: leanHttpFor(p.url, maxSockets, operatorHeaders(sec)) })),
    timeoutMs: opts.timeoutMs,
    participantsInBegin: opts.participantsInBegin,
  };
  return {
    label: starter.label,
    spec: starter.spec,
    storePids: starter.pids,
    procs,
    coordinator,
    participants,
    driverStore,
    targets,
    version: starter.version,
    close: async () => {
      targets.coordinator.close();
      for (const p of targets.participants) p.http.close();
      await close();
    },
  };
}

