/**
 * The transfer app as a process (the demo supervisor starts it):
 *
 *   node --import tsx demo/app/main.ts --port 7100 --store http://127.0.0.1:7121,... \
 *     --coordinators http://127.0.0.1:7101,http://127.0.0.1:7102 \
 *     --banks bank-a=http://127.0.0.1:7111,... [--control http://127.0.0.1:7109]
 *     [--tx-timeout-ms 5000] [--poll-ms 500] [--auto-audit-ms 10000 (0: off)] [--host 127.0.0.1]
 *     [--token-file FILE]   (a bearer token for coordinators and banks with --auth-tokens)
 *   (`--help` lists every flag)
 *
 * Serves the page and the API of server.ts. Without --control the page
 * works but its kill and restart buttons answer 503. SIGTERM or SIGINT ends
 * the pages' event streams, lets requests in flight finish (up to
 * --shutdown-timeout-ms), then stops the load, the monitor and the feed.
 */
import { readFileSync } from 'node:fs';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, serviceLogger, UsageError } from '../../lib/cli.js';
import { listenGuarded } from '../../lib/http-guard.js';
import { onShutdownSignals, SHUTDOWN_FLAGS } from '../../lib/shutdown.js';
import { serviceTls, TLS_FLAGS } from '../../lib/tls.js';
import { systemTimers } from '../../lib/timers.js';
import { openTxStore } from '../../coordinator/txstore/index.js';
import { STORE_FLAG } from '../../coordinator/txstore/open.js';
import { isBankName } from '../bank/work.js';
import { ControlClient } from '../supervisor/control.js';
import { CoordinatorClient } from '../../client/index.js';
import { TxFeed } from './feed.js';
import { LoadRunner } from './load.js';
import { Monitor } from './monitor.js';
import { transferApp } from './server.js';
import { Auditor } from './state.js';
import { TransferService, type AccountRef } from './transfers.js';

/** `name=url,...` to the banks' URLs by name. */
function parseBanks(text: string): Map<string, string> {
  const banks = new Map<string, string>();
  for (const entry of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [name, url] = entry.split('=');
    if (name === undefined || url === undefined || !isBankName(name)) throw new Error(`bad entry "${entry}" (want name=url)`);
    banks.set(name, url.replace(/\/+$/, ''));
  }
  if (banks.size === 0) throw new Error('names no bank');
  return banks;
}

/** The token in `file` (its first line), read once at start; a file without one is a usage error. */
function readToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const token = readFileSync(file, 'utf8').split(/\r?\n/)[0]?.trim() ?? '';
  if (token === '') throw new UsageError('--token-file', `${file} holds no token`);
  return token;
}

export const appCommand = defineCommand({
  name: 'app',
  summary: "run the demo's transfer app: its page and API",
  flags: {
    port: { type: 'int', default: 7100, min: 0, max: 65_535, description: 'the port to listen on' },
    host: { type: 'string', default: '127.0.0.1', description: 'the address to listen on' },
    store: STORE_FLAG,
    coordinators: { type: 'list', required: true, placeholder: 'URL,...', description: "the coordinators' URLs" },
    banks: { type: 'string', required: true, parse: parseBanks, placeholder: 'name=url,...', description: "the banks' names and URLs" },
    control: { type: 'string', placeholder: 'URL', description: "the supervisor's control API (without it the page's kill and restart buttons answer 503)" },
    'tx-timeout-ms': { type: 'int', default: 5_000, min: 1, description: "a transfer's transaction timeout, in ms" },
    'poll-ms': { type: 'int', default: 500, min: 1, description: 'how often the processes are polled for the page, in ms' },
    'auto-audit-ms': { type: 'int', default: 10_000, min: 0, description: 'how often an audit runs by itself, in ms (0: never)' },
    'token-file': { type: 'string', placeholder: 'FILE', description: 'a bearer token (raft2pc token create; roles client, and admin for the in-doubt listing) sent to the coordinators and to the banks\' /2pc/work' },
    ...TLS_FLAGS,
    ...LOG_FLAGS,
    ...SHUTDOWN_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const { port, host, store: spec, coordinators, banks } = values;
    const autoAuditMs = values['auto-audit-ms'];
    const log = serviceLogger(values, 'app');
    const tls = serviceTls(values, host);
    const opened = await openTxStore(spec, 'demo-app');
    const control = values.control === undefined ? undefined : new ControlClient(values.control);

    const feed = new TxFeed(opened.store, log);
    const token = readToken(values['token-file']);
    const client = new CoordinatorClient({ coordinators, callTimeoutMs: 3_000, ...(token === undefined ? {} : { token }) }); // a paused coordinator costs one 3 s attempt
    const transfers = new TransferService({ client, banks, txTimeoutMs: values['tx-timeout-ms'] });
    const monitor = new Monitor({ storeEndpoints: spec.endpoints, coordinators, client, banks, intervalMs: values['poll-ms'], ...(control === undefined ? {} : { control }) });
    const everyAccount = (): AccountRef[] => [...banks.keys()].flatMap((bank) => (monitor.accountsOf(bank) ?? []).map((account) => ({ bank, account })));
    const load = new LoadRunner((r) => transfers.transfer(r), everyAccount);
    const auditor = new Auditor(transfers);
    const web = transferApp({ monitor, feed, transfers, load, auditor, banks, ...(control === undefined ? {} : { control }) });

    await feed.start();
    monitor.onUpdate(() => web.broadcast());
    monitor.start();
    // A periodic audit shows the exact total live; one attempt each, so a down bank costs one abort per period.
    const stopAudits =
      autoAuditMs > 0
        ? systemTimers.every(autoAuditMs, () => {
            if (!auditor.busy) void auditor.run(1).catch(() => undefined);
          })
        : () => {};

    const server = await listenGuarded(web.app, host, port, { tls, log });
    onShutdownSignals({
      servers: [server],
      timeoutMs: values['shutdown-timeout-ms'],
      log,
      closeStreams: () => web.closeStreams(),
      cleanup: async () => {
        stopAudits();
        load.stop();
        monitor.stop();
        try {
          await feed.stop();
        } finally {
          client.close();
          await opened.close();
        }
      },
    });
    const url = `${tls.server === undefined ? 'http' : 'https'}://${host}:${port}/`;
    log('info', 'ready', { url, pid: process.pid });
    ctx.out(`app listening on ${url}`);
  },
});

if (isEntryPoint(import.meta.url)) runMain(appCommand);
