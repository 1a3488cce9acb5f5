/**
 * `npm start [-- --data-dir data/demo] [--fresh] [--base-port 7100] [--secure]`, or `raft2pc demo ...`
 *
 * Starts the whole demo on loopback, each part its own process: 3 store
 * nodes, 2 coordinators, 3 banks and the transfer app; prints the page's URL
 * and each process's role, port and pid; then reports processes that exit,
 * and restarts nothing by itself. Ctrl-C (SIGINT) or SIGTERM stops every
 * process by pid (SIGTERM, wait, SIGKILL after 5 s), the app first and the
 * store last; a second Ctrl-C kills them at once. Ports: see
 * demo/supervisor/layout.ts and docs/DEMO.md. --log-level and --log-format
 * are passed on to every process. --secure runs every link over TLS with
 * store auth and a store user per process (demo/supervisor/secure.ts;
 * certificates and passwords in DATA_DIR/secure).
 */
import { join } from 'node:path';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, UsageError, type CommandContext } from '../lib/cli.js';
import { DemoSupervisor, secureUsersOf } from './supervisor/supervisor.js';
import { DEFAULT_BASE_PORT, demoLayout, openingTotal, DEFAULT_BANKS } from './supervisor/layout.js';
import { OPERATOR_TOKEN, prepareSecure, spkiHashes, type SecureSetup } from './supervisor/secure.js';
import type { ProcessEvent } from './supervisor/process.js';

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'start the bank-transfer demo: store, coordinators, banks and the app, as processes on loopback',
  flags: {
    'data-dir': { type: 'string', default: join('data', 'demo'), placeholder: 'DIR', description: "every process's data and logs" },
    fresh: { type: 'boolean', description: 'wipe the data dir first (only a demo data dir: one with its marker file)' },
    'base-port': { type: 'int', default: DEFAULT_BASE_PORT, min: 1024, max: 65_535 - 40, description: "the app's port; the others follow it (docs/DEMO.md)" },
    secure: { type: 'boolean', description: 'TLS on every link, store auth and a store user per process (certificates and passwords made into DATA_DIR/secure)' },
    ...LOG_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const logArgs = ['--log-level', values['log-level'], '--log-format', values['log-format']];
    const state = { ready: false, stopping: false };
    let supervisor: DemoSupervisor;
    let secure: SecureSetup | undefined;
    try {
      // The layout is checked before --fresh wipes anything.
      const layout = demoLayout(values['base-port']);
      DemoSupervisor.prepareDataDir(values['data-dir'], { fresh: values.fresh });
      if (values.secure) secure = await prepareSecure(join(values['data-dir'], 'secure'), secureUsersOf(layout));
      supervisor = new DemoSupervisor({
        dataDir: values['data-dir'],
        basePort: values['base-port'],
        extraArgs: { store: logArgs, coordinator: logArgs, bank: logArgs, app: logArgs },
        onEvent: (e) => {
          const line = state.ready ? describe(e) : undefined; // the table below says it all at start
          if (line !== undefined && !state.stopping) ctx.out(line);
        },
        ...(secure === undefined ? {} : { secure }),
      });
    } catch (e) {
      throw new UsageError(undefined, e instanceof Error ? e.message : String(e));
    }
    onSignals(supervisor, state, ctx);

    const basePort = supervisor.layout.basePort;
    ctx.out(`raft2pc demo: starting ${supervisor.list().length} processes on 127.0.0.1, ports ${basePort}-${basePort + 33}, data in ${supervisor.dataDir}`);
    try {
      await supervisor.start();
    } catch (e) {
      if (state.stopping) return undefined;
      ctx.err(`the demo did not start: ${e instanceof Error ? e.message : String(e)}`);
      return 1;
    }
    if (state.stopping) return undefined;
    state.ready = true;
    printTable(supervisor, ctx, secure === undefined);
    if (secure !== undefined) printSecure(secure, ctx);
    return undefined;
  },
});

function printSecure(secure: SecureSetup, ctx: CommandContext): void {
  const c = secure.certs;
  ctx.out('secure: TLS on every link (client certificates between processes, mutual TLS between store peers), store auth on, bearer tokens on the coordinators and banks');
  ctx.out(`  CA ${c.caFile}; store users' passwords in ${join(secure.dir, 'store-users.json')} (mode 0600)`);
  ctx.out(`  a browser: trust the CA above, or start Chromium with --ignore-certificate-errors-spki-list=${spkiHashes([c.caFile, c.serverCertFile]).join(',')}`);
  ctx.out(`  curl: --cacert ${c.caFile} --cert ${c.clientCertFile} --key ${c.clientKeyFile}; coordinators and banks also want -H "authorization: Bearer $(cat ${secure.tokenFile(OPERATOR_TOKEN)})"`);
  ctx.out('');
}

function describe(e: ProcessEvent): string {
  if (e.type === 'exited') return `${e.name} (pid ${e.pid}) exited${e.signal === null ? ` with code ${e.code}` : ` on ${e.signal}`}${e.expected ? '' : ' by itself'}; it stays down until you restart it from the page`;
  return `${e.name}: ${e.type} (pid ${e.pid})`;
}

/** SIGINT or SIGTERM stops every process, the app first; a second one kills them at once. */
function onSignals(supervisor: DemoSupervisor, state: { stopping: boolean }, ctx: CommandContext): void {
  const shutdown = async (signal: string): Promise<void> => {
    if (state.stopping) {
      ctx.out('killing every process now');
      for (const p of supervisor.list()) if (p.pid !== null) supervisor.process(p.name).killNow();
      process.exit(130);
    }
    state.stopping = true;
    ctx.out(`${signal}: stopping every process (app, banks, coordinators, store)...`);
    await supervisor.stopAll();
    const left = supervisor.list().filter((p) => p.state === 'running' || p.state === 'paused');
    ctx.out(left.length === 0 ? 'all stopped' : `still running: ${left.map((p) => `${p.name} (pid ${p.pid})`).join(', ')}`);
    process.exit(left.length === 0 ? 0 : 1);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

function printTable(supervisor: DemoSupervisor, ctx: CommandContext, plain: boolean): void {
  const basePort = supervisor.layout.basePort;
  ctx.out('');
  ctx.out(`  ${'role'.padEnd(12)}${'name'.padEnd(9)}${'port'.padEnd(7)}pid`);
  for (const p of supervisor.list()) ctx.out(`  ${p.role.padEnd(12)}${p.name.padEnd(9)}${String(p.port).padEnd(7)}${p.pid ?? '-'}`);
  ctx.out(`  ${'supervisor'.padEnd(12)}${'control'.padEnd(9)}${String(supervisor.layout.controlPort).padEnd(7)}${process.pid}`);
  ctx.out('');
  ctx.out(`logs: ${join(supervisor.dataDir, 'logs')}/<name>.log`);
  ctx.out(`3 banks, 4 accounts each, ${openingTotal(DEFAULT_BANKS).toLocaleString('en-US')} in all (the total never changes)`);
  // The transfer CLI shows no client certificate or token: it cannot reach the secure demo.
  if (plain) ctx.out(`try: npm run transfer -- --from bank-a:alice --to bank-b:bob --amount 10${basePort === DEFAULT_BASE_PORT ? '' : ` --base-port ${basePort}`}`);
  ctx.out('');
  ctx.out(`open ${supervisor.appUrl}/   (Ctrl-C stops everything)`);
}

if (isEntryPoint(import.meta.url)) runMain(demoCommand);
