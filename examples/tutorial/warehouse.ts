/**
 * The tutorial's service (docs/TUTORIAL.md): a small express "warehouse"
 * that keeps its stock in a JSON file, made a 2PC participant so that an
 * app can move stock between warehouses in one transaction.
 *
 *   node --import tsx examples/tutorial/warehouse.ts --name east --port 7201 \
 *     --store http://127.0.0.1:2379,http://127.0.0.1:2380,http://127.0.0.1:2381 \
 *     --data-dir data/tutorial/east --stock widget=10,gadget=5
 *
 * Its own routes: GET /stock, POST /stock/{sku}/receive {"count"}, GET /healthz.
 * The participant's: POST /2pc/work, /2pc/prepare, /2pc/decision, GET /readyz,
 * GET /v1/participant/transactions and /v1/participant/metrics.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import express from 'express';
import { AppError, errorMiddleware, openTxStore, ParticipantNode, participantRouter, parseStoreSpec } from 'raft2pc/participant';
import { Stock } from './stock.js';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'east' },
    port: { type: 'string', default: '7201' },
    store: { type: 'string', default: 'http://127.0.0.1:2379' },
    'data-dir': { type: 'string' },
    stock: { type: 'string', default: '' },
  },
});
const name = values.name;
const port = Number(values.port);
const dataDir = values['data-dir'] ?? join('data', 'tutorial', name);
const initial = Object.fromEntries(
  values.stock
    .split(',')
    .filter((s) => s !== '')
    .map((s) => [s.split('=')[0] as string, Number(s.split('=')[1])]),
);

mkdirSync(dataDir, { recursive: true });
const stock = await Stock.open(join(dataDir, 'stock.json'), initial);

// --- The service as it was: express and its own routes.
const app = express();
app.get('/stock', (_req, res) => {
  res.json({ warehouse: name, quantities: stock.quantities(), reserved: stock.reserved() });
});
app.post('/stock/:sku/receive', express.json(), async (req, res) => {
  const count = (req.body as { count?: unknown } | undefined)?.count;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count <= 0) throw new AppError('invalid_count', 400, 'count must be a positive integer');
  await stock.receive(String(req.params['sku']), count);
  res.json({ warehouse: name, quantities: stock.quantities() });
});
app.get('/healthz', (_req, res) => {
  res.json({ ok: true, pid: process.pid });
});

// --- Tutorial step 3: open the store the coordinators use, and a participant node over a log on this disk.
const { store, close } = await openTxStore(parseStoreSpec(values.store), name);
const node = await ParticipantNode.open({
  name,
  store,
  logPath: join(dataDir, 'participant.log'),
  service: stock,
  // A failed log write or a lost name claim: exit, and let the supervisor restart us (recovery reads the log).
  onFatal: (e) => {
    console.error(`warehouse ${name}: fatal, exiting:`, e);
    process.exit(1);
  },
}).catch((e: unknown) => {
  // Another live instance holds the name (participant_name_taken), a bad config, a damaged log: say why, and stop.
  console.error(`warehouse ${name}: cannot start: ${e instanceof Error ? e.message : String(e)}`);
  return process.exit(2);
});

// --- Tutorial step 4: mount the participant's routes beside the service's own, then the JSON error mapping.
app.use(participantRouter(node));
app.use(errorMiddleware());

// --- Tutorial step 5: listen, then start: /readyz answers 200 once recovery has restored what was in doubt.
const server = app.listen(port, '127.0.0.1');
await node.start();
console.log(`warehouse ${name} listening on ${port}`);

process.on('SIGTERM', () => {
  server.close();
  // stop() lets in-flight writes settle, closes the log and gives the participant name back.
  void node
    .stop()
    .then(close)
    .finally(() => process.exit(0));
});
