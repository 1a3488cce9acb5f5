/**
 * `npm start [-- --data-dir data/demo] [--fresh] [--base-port 7100]`
 *
 * Starts the whole demo on loopback, each part its own process: 3 store
 * nodes, 2 coordinators, 3 banks and the transfer app; prints the page's URL
 * and each process's role, port and pid; then reports processes that exit,
 * and restarts nothing by itself. Ctrl-C (SIGINT) or SIGTERM stops every
 * process by pid (SIGTERM, wait, SIGKILL after 5 s), the app first and the
 * store last; a second Ctrl-C kills them at once. Ports: see
 * demo/supervisor/layout.ts and docs/DEMO.md.
 */
import { join } from 'node:path';
import { parseFlags, intFlag, stringFlag } from '../lib/args.js';
import { DemoSupervisor } from './supervisor/supervisor.js';
import { DEFAULT_BASE_PORT, openingTotal, DEFAULT_BANKS } from './supervisor/layout.js';
import type { ProcessEvent } from './supervisor/process.js';

let values: Record<string, string | boolean | undefined>;
try {
  values = parseFlags({ 'data-dir': { type: 'string' }, fresh: { type: 'boolean' }, 'base-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } }).values;
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\nusage: npm start [-- --data-dir DIR] [--fresh] [--base-port P]\n`);
  process.exit(2);
}
if (values['help'] === true) {
  process.stdout.write('usage: npm start [-- --data-dir DIR (default data/demo)] [--fresh (wipe DIR first)] [--base-port P (default 7100)]\n');
  process.exit(0);
}

const dataDir = stringFlag(values, 'data-dir') ?? join('data', 'demo');
let ready = false;
let stopping = false;
const describe = (e: ProcessEvent): string | undefined => {
  if (!ready) return undefined; // the table below says it all at start
  if (e.type === 'exited') return `${e.name} (pid ${e.pid}) exited${e.signal === null ? ` with code ${e.code}` : ` on ${e.signal}`}${e.expected ? '' : ' by itself'}; it stays down until you restart it from the page`;
  return `${e.name}: ${e.type} (pid ${e.pid})`;
};

let supervisor: DemoSupervisor;
try {
  // The layout is checked (by the constructor) before --fresh wipes anything.
  supervisor = new DemoSupervisor({
    dataDir,
    basePort: intFlag(values, 'base-port', DEFAULT_BASE_PORT),
    onEvent: (e) => {
      const line = describe(e);
      if (line !== undefined && !stopping) console.log(line);
    },
  });
  DemoSupervisor.prepareDataDir(dataDir, { fresh: values['fresh'] === true });
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
const basePort = supervisor.layout.basePort;

async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    // A second Ctrl-C: no more waiting.
    console.log('killing every process now');
    for (const p of supervisor.list()) if (p.pid !== null) supervisor.process(p.name).killNow();
    process.exit(130);
  }
  stopping = true;
  console.log(`${signal}: stopping every process (app, banks, coordinators, store)...`);
  await supervisor.stopAll();
  const left = supervisor.list().filter((p) => p.state === 'running' || p.state === 'paused');
  console.log(left.length === 0 ? 'all stopped' : `still running: ${left.map((p) => `${p.name} (pid ${p.pid})`).join(', ')}`);
  process.exit(left.length === 0 ? 0 : 1);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

console.log(`raft2pc demo: starting ${supervisor.list().length} processes on 127.0.0.1, ports ${basePort}-${basePort + 33}, data in ${supervisor.dataDir}`);
try {
  await supervisor.start();
} catch (e) {
  if (!stopping) {
    console.error(`the demo did not start: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
if (!stopping) {
  ready = true;
  console.log('');
  console.log(`  ${'role'.padEnd(12)}${'name'.padEnd(9)}${'port'.padEnd(7)}pid`);
  for (const p of supervisor.list()) console.log(`  ${p.role.padEnd(12)}${p.name.padEnd(9)}${String(p.port).padEnd(7)}${p.pid ?? '-'}`);
  console.log(`  ${'supervisor'.padEnd(12)}${'control'.padEnd(9)}${String(supervisor.layout.controlPort).padEnd(7)}${process.pid}`);
  console.log('');
  console.log(`logs: ${join(supervisor.dataDir, 'logs')}/<name>.log`);
  console.log(`3 banks, 4 accounts each, ${openingTotal(DEFAULT_BANKS).toLocaleString('en-US')} in all (the total never changes)`);
  console.log(`try: npm run transfer -- --from bank-a:alice --to bank-b:bob --amount 10${basePort === DEFAULT_BASE_PORT ? '' : ` --base-port ${basePort}`}`);
  console.log('');
  console.log(`open ${supervisor.appUrl}/   (Ctrl-C stops everything)`);
}
