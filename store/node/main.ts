/**
 * One store node as a process:
 *   raft2pc store --id n1 --cluster n1=127.0.0.1:2379:2380,n2=...,n3=... --data-dir data/n1
 *   (or npm run store -- ...; `--help` lists every flag)
 * This member's ports come from its own entry in --cluster unless
 * --client-port / --peer-port say otherwise. SIGTERM or SIGINT drains the API
 * (lib/shutdown.ts: watch streams end at once, requests in flight finish up
 * to --shutdown-timeout-ms), then stops the node (the fsync in flight
 * finishes, the log closes).
 */
import type { IncomingMessage } from 'node:http';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, serviceLogger, UsageError } from '../../lib/cli.js';
import { onShutdownSignals, SHUTDOWN_FLAGS } from '../../lib/shutdown.js';
import { isLoopbackHost, PEER_TLS_FLAGS, peerTlsFrom, serviceTls, TLS_FLAGS } from '../../lib/tls.js';
import { listenStoreApi } from '../api/server.js';
import { DEFAULT_QUOTA_BYTES, MAX_QUOTA_BYTES, MEMORY_ENGINE_MAX_QUOTA_BYTES, MIN_QUOTA_BYTES } from '../kv/index.js';
import { defaultNodeConfig, ENGINES, parseClusterSpec, quotaBytesFor, type MemberAddress, type NodeConfig } from './config.js';
import { startProcessNode } from './process-io.js';

const MAX_PORT = 65_535;

export const storeCommand = defineCommand({
  name: 'store',
  summary: 'run one store node: a Raft member serving the key-value API',
  flags: {
    id: { type: 'string', required: true, placeholder: 'ID', description: "this member's id, as named in --cluster" },
    cluster: { type: 'string', required: true, placeholder: 'id=host:clientPort:peerPort,...', description: 'the founding members' },
    'data-dir': { type: 'string', required: true, placeholder: 'DIR', description: 'where the WAL and snapshots live' },
    join: { type: 'boolean', description: 'start empty and wait to be added by the leader (a new member)' },
    'client-port': { type: 'int', min: 1, max: MAX_PORT, description: "the API's port (default: this member's entry in --cluster)" },
    'peer-port': { type: 'int', min: 1, max: MAX_PORT, description: "the Raft transport's port (default: this member's entry in --cluster)" },
    'tick-ms': { type: 'int', default: defaultNodeConfig.tickMs, min: 1, description: 'the Raft tick, in ms' },
    'election-ticks': { type: 'int', default: defaultNodeConfig.electionTicks, min: 2, description: 'ticks without a leader before an election' },
    'heartbeat-ticks': { type: 'int', default: defaultNodeConfig.heartbeatTicks, min: 1, description: "ticks between the leader's heartbeats" },
    'snapshot-every': { type: 'int', default: defaultNodeConfig.snapshotEveryEntries, min: 1, description: 'applied entries between snapshots' },
    'request-timeout-ms': { type: 'int', default: defaultNodeConfig.requestTimeoutMs, min: 1, description: 'how long a write may wait to commit, in ms' },
    'watch-history-events': { type: 'int', min: 1, description: 'events kept for watches to resume from (the same on every member, like every KV limit; default: the KV default)' },
    'quota-bytes': { type: 'int', min: MIN_QUOTA_BYTES, max: MAX_QUOTA_BYTES, description: `the store quota on key and value bytes (etcd's --quota-backend-bytes): past it the NOSPACE alarm refuses growing writes until POST /v1/alarms/disarm; the same on every member (default ${DEFAULT_QUOTA_BYTES}, ${MEMORY_ENGINE_MAX_QUOTA_BYTES} and at most that with --engine memory)` },
    engine: { type: 'enum', values: ENGINES, default: 'lmdb', description: 'where the state machine is kept: lmdb (on disk in DATA-DIR/kv with its applied index, like etcd\'s bbolt; a restart replays only the WAL after it; snapshots stream to followers) or memory (the JS heap, rebuilt from the snapshot and WAL at each start)' },
    ...TLS_FLAGS,
    ...PEER_TLS_FLAGS,
    ...LOG_FLAGS,
    ...SHUTDOWN_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const members = clusterFlag(values.cluster);
    const self = members.find((m) => m.id === values.id);
    if (self === undefined) throw new UsageError('--cluster', `has no entry for --id ${values.id}`);
    const quota = quotaBytesFor(values.engine, values['quota-bytes']);
    if ('error' in quota) throw new UsageError('--quota-bytes', quota.error);
    const clientUrl = new URL(self.clientUrl);
    // Before anything listens: plain HTTP beyond loopback is refused; snapshot pulls and forwards use the same CA.
    const tls = serviceTls(values, clientUrl.hostname);
    // The cluster spec has no scheme: members serving https list https client URLs, which clients match to find the leader.
    const initialCluster = tls.server === undefined ? members : members.map((m) => ({ ...m, clientUrl: m.clientUrl.replace(/^http:/, 'https:') }));
    const peerTls = peerTlsFrom(values);
    const peerHost = self.peerAddress.slice(0, self.peerAddress.lastIndexOf(':'));
    // As for the client API: plain Raft beyond loopback only when asked for.
    if (peerTls === undefined && !values.insecure && !isLoopbackHost(peerHost)) throw new UsageError('--peer-cert-file', `refusing plain TCP Raft on ${peerHost}, beyond loopback: give --peer-cert-file, --peer-key-file, --peer-trusted-ca-file and --peer-client-cert-auth, or --insecure to accept it`);
    const cfg: NodeConfig = {
      ...defaultNodeConfig,
      id: values.id,
      dataDir: values['data-dir'],
      host: clientUrl.hostname,
      clientPort: values['client-port'] ?? Number(clientUrl.port),
      peerPort: values['peer-port'] ?? Number(self.peerAddress.split(':')[1]),
      initialCluster,
      join: values.join,
      tickMs: values['tick-ms'],
      electionTicks: values['election-ticks'],
      heartbeatTicks: values['heartbeat-ticks'],
      snapshotEveryEntries: values['snapshot-every'],
      requestTimeoutMs: values['request-timeout-ms'],
      engine: values.engine,
      quotaBytes: quota.bytes,
      ...(values['watch-history-events'] === undefined ? {} : { watchHistoryEvents: values['watch-history-events'] }),
      ...(peerTls === undefined ? {} : { peerTls }),
    };
    const log = serviceLogger(values, 'store', { node: values.id });
    const node = await startProcessNode(cfg, log);
    const server = await listenStoreApi(node, cfg.host, cfg.clientPort, { tls, log });
    onShutdownSignals({ servers: [server], timeoutMs: values['shutdown-timeout-ms'], log, isStream: isWatch, cleanup: () => node.stop() });
    // Launchers read this line (one JSON object) to learn the node is up.
    ctx.out(JSON.stringify({ event: 'ready', id: values.id, pid: process.pid, clientUrl: self.clientUrl, peerAddress: self.peerAddress }));
    log('info', 'ready', { clientUrl: self.clientUrl, peerAddress: self.peerAddress });
  },
});

function clusterFlag(spec: string): MemberAddress[] {
  try {
    return parseClusterSpec(spec);
  } catch (e) {
    throw new UsageError('--cluster', e instanceof Error ? e.message : String(e));
  }
}

/** A watch is an SSE stream that lasts until the client leaves: shutdown ends it instead of waiting for it. */
function isWatch(req: IncomingMessage): boolean {
  return (req.url ?? '').split('?')[0] === '/v1/watch';
}

if (isEntryPoint(import.meta.url)) runMain(storeCommand);
