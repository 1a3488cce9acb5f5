/**
 * `npm run cluster -- --nodes 3 --base-port 2379 --data-dir data/cluster`
 * Starts a local cluster in the foreground, prints each node's URL and pid,
 * and stops every node cleanly on Ctrl-C. Node i serves clients on
 * base-port+i-1 and peers on base-port+100+i-1.
 */
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { LocalCluster } from './launcher.js';

async function main(): Promise<void> {
  const { values } = parseFlags({
    nodes: { type: 'string' },
    'base-port': { type: 'string' },
    'data-dir': { type: 'string' },
  });
  const cluster = new LocalCluster({
    nodes: intFlag(values, 'nodes', 3),
    basePort: intFlag(values, 'base-port', 2379),
    dataDir: stringFlag(values, 'data-dir', 'data/cluster') as string,
    logToFiles: true,
  });
  cluster.start();
  const leader = await cluster.waitForLeader();
  for (const p of cluster.processes) {
    console.log(`${p.member.id}  ${p.member.clientUrl}  peer ${p.member.peerAddress}  pid ${p.pid}${p.member.id === leader ? '  (leader)' : ''}`);
  }
  console.log(`logs in ${cluster.opts.dataDir}/<id>.log; Ctrl-C stops every node`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('stopping...');
    cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
