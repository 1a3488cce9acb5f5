/**
 * One store node as a process:
 *   npm run store -- --id n1 --cluster n1=127.0.0.1:2379:2380,n2=...,n3=... --data-dir data/n1
 * Flags: --id (this member), --cluster (founding members, id=host:clientPort:peerPort;
 * this member's ports come from its own entry), --data-dir, --join (start empty and
 * wait to be added by the leader), --tick-ms, --election-ticks, --heartbeat-ticks,
 * --snapshot-every (entries), --request-timeout-ms, --watch-history-events (events kept
 * for watch resume; must be the same on every member, like every KV limit).
 */
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { listenStoreApi } from '../api/server.js';
import { defaultNodeConfig, parseClusterSpec, type NodeConfig } from './config.js';
import { StoreNode } from './node.js';

async function main(): Promise<void> {
  const { values } = parseFlags({
    id: { type: 'string' },
    cluster: { type: 'string' },
    'data-dir': { type: 'string' },
    join: { type: 'boolean' },
    'client-port': { type: 'string' },
    'peer-port': { type: 'string' },
    'tick-ms': { type: 'string' },
    'election-ticks': { type: 'string' },
    'heartbeat-ticks': { type: 'string' },
    'snapshot-every': { type: 'string' },
    'request-timeout-ms': { type: 'string' },
    'watch-history-events': { type: 'string' },
  });
  const id = stringFlag(values, 'id');
  const spec = stringFlag(values, 'cluster');
  const dataDir = stringFlag(values, 'data-dir');
  if (!id || !spec || !dataDir) throw new Error('usage: --id ID --cluster id=host:clientPort:peerPort,... --data-dir DIR');
  const members = parseClusterSpec(spec);
  const self = members.find((m) => m.id === id);
  if (!self) throw new Error(`--cluster has no entry for --id ${id}`);
  const clientUrl = new URL(self.clientUrl);
  const cfg: NodeConfig = {
    ...defaultNodeConfig,
    id,
    dataDir,
    host: clientUrl.hostname,
    clientPort: intFlag(values, 'client-port', Number(clientUrl.port)),
    peerPort: intFlag(values, 'peer-port', Number(self.peerAddress.split(':')[1])),
    initialCluster: members,
    join: values['join'] === true,
    tickMs: intFlag(values, 'tick-ms', defaultNodeConfig.tickMs),
    electionTicks: intFlag(values, 'election-ticks', defaultNodeConfig.electionTicks),
    heartbeatTicks: intFlag(values, 'heartbeat-ticks', defaultNodeConfig.heartbeatTicks),
    snapshotEveryEntries: intFlag(values, 'snapshot-every', defaultNodeConfig.snapshotEveryEntries),
    requestTimeoutMs: intFlag(values, 'request-timeout-ms', defaultNodeConfig.requestTimeoutMs),
    ...(values['watch-history-events'] === undefined ? {} : { watchHistoryEvents: intFlag(values, 'watch-history-events', 0) }),
  };
  const node = await StoreNode.start(cfg);
  const server = await listenStoreApi(node, cfg.host, cfg.clientPort);
  console.log(JSON.stringify({ event: 'ready', id, pid: process.pid, clientUrl: self.clientUrl, peerAddress: self.peerAddress }));
  const shutdown = (): void => {
    server.close();
    server.closeAllConnections();
    node.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
