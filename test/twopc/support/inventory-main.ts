/**
 * The inventory participant as a process (tests start it with
 * `node --import tsx`; `npm run participant-example` runs it too):
 *
 *   --name N --port P --store http://127.0.0.1:2379,... --data-dir D
 *   [--stock sku=qty,...] [--prepare-delay-ms MS]
 *
 * --store names the built-in store (http://..., the default is
 * http://127.0.0.1:2379) or an etcd cluster (etcd://host:port,...); without
 * it, the TWOPC_STORE environment variable does.
 *
 * Serves the participant routes (/2pc/work, /2pc/prepare, /2pc/decision,
 * /v1/participant/transactions), GET /inventory (stock, applied decisions,
 * locks) and GET /healthz (200 once recovery is done). Failpoints come from
 * TWOPC_FAILPOINTS (lib/failpoints.ts).
 */
import { join } from 'node:path';
import express from 'express';
import { intFlag, parseFlags, stringFlag } from '../../../lib/args.js';
import { openTxStore, parseStoreSpec, storeSpecFrom } from '../../../coordinator/txstore/open.js';
import { Failpoints } from '../../../lib/failpoints.js';
import { errorMiddleware } from '../../../lib/express.js';
import { stderrLogger } from '../../../lib/logger.js';
import { ParticipantNode, participantRouter } from '../../../participant/index.js';
import { Inventory } from './inventory.js';

const { values } = parseFlags({
  name: { type: 'string' },
  port: { type: 'string' },
  store: { type: 'string' },
  'data-dir': { type: 'string' },
  stock: { type: 'string' },
  'prepare-delay-ms': { type: 'string' },
});

const name = stringFlag(values, 'name') ?? 'inventory';
const port = intFlag(values, 'port', 7100);
const spec = storeSpecFrom(stringFlag(values, 'store')) ?? parseStoreSpec('http://127.0.0.1:2379');
const dataDir = stringFlag(values, 'data-dir') ?? join('data', name);
const stock: Record<string, number> = {};
for (const part of (stringFlag(values, 'stock') ?? '').split(',').filter((s) => s !== '')) {
  const [sku, qty] = part.split('=');
  if (sku === undefined || qty === undefined || !Number.isSafeInteger(Number(qty))) throw new Error(`bad --stock entry ${part}`);
  stock[sku] = Number(qty);
}

const log = stderrLogger(`participant ${name}`);
/** Fail-stop: a participant that cannot trust its log exits, and the restart recovers from disk. */
function exitOnFatal(e: unknown): never {
  log('error', 'the participant failed; exiting so a restart recovers from disk', { error: e });
  process.exit(1);
}
const inventory = new Inventory(dataDir, intFlag(values, 'prepare-delay-ms', 0));
await inventory.load(stock);
const opened = await openTxStore(spec, name);
const node = await ParticipantNode.open({
  name,
  store: opened.store,
  logPath: join(dataDir, 'participant-log.json'),
  service: inventory,
  failpoints: Failpoints.fromEnv(),
  logger: log,
  onFatal: exitOnFatal,
  config: { logRetentionMs: 600_000 },
}).catch(exitOnFatal);

const app = express();
app.disable('x-powered-by');
app.use(participantRouter(node));
app.get('/inventory', (_req, res) => {
  res.json({ name, ...inventory.view() });
});
app.get('/healthz', (_req, res) => {
  res.status(node.ready ? 200 : 503).json({ ok: node.ready, name, pid: process.pid });
});
app.use(errorMiddleware((e) => log('error', 'internal error', { error: e })));

// Listen first (health says 503 until ready), recover, then serve.
const server = app.listen(port, '127.0.0.1');
await new Promise<void>((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
await node.start().catch(exitOnFatal);
log('info', 'ready', { port, pid: process.pid, store: spec.kind, recoveredOpen: node.transactions({ limit: 1_000 }).filter((t) => t.inDoubt).length });
process.stdout.write(`participant ${name} listening on ${port}\n`);

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    void node
      .stop()
      .finally(() => opened.close())
      .finally(() => process.exit(0));
  });
}
