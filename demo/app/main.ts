/**
 * The transfer app as a process (the demo supervisor starts it):
 *
 *   node --import tsx demo/app/main.ts --port 7100 --store http://127.0.0.1:7121,... \
 *     --coordinators http://127.0.0.1:7101,http://127.0.0.1:7102 \
 *     --banks bank-a=http://127.0.0.1:7111,... [--control http://127.0.0.1:7109]
 *     [--tx-timeout-ms 5000] [--poll-ms 500] [--auto-audit-ms 10000 (0: off)] [--host 127.0.0.1]
 *
 * Serves the page and the API of server.ts. Without --control the page
 * works but its kill and restart buttons answer 503.
 */
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { stderrLogger } from '../../lib/logger.js';
import { openTxStore, storeSpecFrom } from '../../coordinator/txstore/index.js';
import { isBankName } from '../bank/work.js';
import { ControlClient } from '../supervisor/control.js';
import { CoordinatorPool } from './coordinators.js';
import { TxFeed } from './feed.js';
import { LoadRunner } from './load.js';
import { Monitor } from './monitor.js';
import { transferApp } from './server.js';
import { Auditor } from './state.js';
import { TransferService, type AccountRef } from './transfers.js';

function fail(message: string): never {
  process.stderr.write(`app: ${message}\n`);
  process.exit(2);
}

const { values } = parseFlags({
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string' },
  coordinators: { type: 'string' },
  banks: { type: 'string' },
  control: { type: 'string' },
  'tx-timeout-ms': { type: 'string' },
  'poll-ms': { type: 'string' },
  'auto-audit-ms': { type: 'string' },
});

const list = (text: string | undefined): string[] => (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
const port = intFlag(values, 'port', 7100);
const host = stringFlag(values, 'host') ?? '127.0.0.1';
const spec = storeSpecFrom(stringFlag(values, 'store')) ?? fail('--store http://host:port,... (or TWOPC_STORE) is required');
const coordinators = list(stringFlag(values, 'coordinators'));
if (coordinators.length === 0) fail('--coordinators URL,... is required');
const banks = new Map<string, string>();
for (const entry of list(stringFlag(values, 'banks'))) {
  const [name, url] = entry.split('=');
  if (name === undefined || url === undefined || !isBankName(name)) fail(`bad --banks entry "${entry}" (want name=url)`);
  banks.set(name, url.replace(/\/+$/, ''));
}
if (banks.size === 0) fail('--banks name=url,... is required');
const controlUrl = stringFlag(values, 'control');
const autoAuditMs = intFlag(values, 'auto-audit-ms', 10_000);

const log = stderrLogger('app');
const opened = await openTxStore(spec, 'demo-app');
const control = controlUrl === undefined ? undefined : new ControlClient(controlUrl);
const monitor = new Monitor({ storeEndpoints: spec.endpoints, coordinators, banks, intervalMs: intFlag(values, 'poll-ms', 500), ...(control === undefined ? {} : { control }) });
const feed = new TxFeed(opened.store, log);
const transfers = new TransferService({ pool: new CoordinatorPool(coordinators), banks, txTimeoutMs: intFlag(values, 'tx-timeout-ms', 5_000) });
const everyAccount = (): AccountRef[] => [...banks.keys()].flatMap((bank) => (monitor.accountsOf(bank) ?? []).map((account) => ({ bank, account })));
const load = new LoadRunner((r) => transfers.transfer(r), everyAccount);
const auditor = new Auditor(transfers);
const web = transferApp({ monitor, feed, transfers, load, auditor, banks, ...(control === undefined ? {} : { control }) });

await feed.start();
monitor.onUpdate(() => web.broadcast());
monitor.start();
// A periodic audit shows the exact total live; one attempt each, so a down bank costs one abort per period.
const auditTimer =
  autoAuditMs > 0
    ? setInterval(() => {
        if (!auditor.busy) void auditor.run(1).catch(() => undefined);
      }, autoAuditMs)
    : undefined;

const server = web.app.listen(port, host);
await new Promise<void>((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
log('info', 'ready', { url: `http://${host}:${port}/`, pid: process.pid });
process.stdout.write(`app listening on http://${host}:${port}/\n`);

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    if (auditTimer !== undefined) clearInterval(auditTimer);
    load.stop();
    monitor.stop();
    web.closeStreams();
    server.closeAllConnections();
    server.close();
    void feed
      .stop()
      .then(() => opened.close())
      .finally(() => process.exit(0));
  });
}
