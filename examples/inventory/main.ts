/**
 * The inventory participant as a process (tests start it with
 * `node --import tsx`; `raft2pc participant-example` and
 * `npm run participant-example` run it too):
 *
 *   --name N --port P --store http://127.0.0.1:2379,... --data-dir D
 *   [--stock sku=qty,...] [--prepare-delay-ms MS]      (`--help` lists every flag)
 *
 * --store names the built-in store (http://..., the default is
 * http://127.0.0.1:2379) or an etcd cluster (etcd://host:port,...); without
 * it, RAFT2PC_STORE or TWOPC_STORE does.
 *
 * Serves the participant routes (/2pc/work, /2pc/prepare, /2pc/decision,
 * /v1/participant/transactions), GET /inventory (stock, applied decisions,
 * locks) and GET /healthz (200 once recovery is done). Failpoints come from
 * TWOPC_FAILPOINTS (lib/failpoints.ts). SIGTERM or SIGINT lets requests in
 * flight finish (up to --shutdown-timeout-ms), then stops the node.
 */
import { join } from 'node:path';
import express from 'express';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, serviceLogger } from '../../lib/cli.js';
import { openTxStore, STORE_ACCESS_FLAGS, STORE_FLAG, storeAccessEnv } from '../../coordinator/txstore/index.js';
import { Failpoints } from '../../lib/failpoints.js';
import { errorMiddleware } from '../../lib/express.js';
import { listening, onShutdownSignals, SHUTDOWN_FLAGS, stopThenClose } from '../../lib/shutdown.js';
import { ParticipantNode, participantRouter } from '../../participant/index.js';
import { Inventory } from './inventory.js';

/** `sku=qty,...` to a stock table. */
function parseStock(text: string): Record<string, number> {
  const stock: Record<string, number> = {};
  for (const part of text.split(',').filter((s) => s.trim() !== '')) {
    const [sku, qty] = part.split('=');
    if (sku === undefined || sku === '' || qty === undefined || !Number.isSafeInteger(Number(qty))) throw new Error(`bad entry "${part}" (want sku=qty)`);
    stock[sku] = Number(qty);
  }
  return stock;
}

export const participantExampleCommand = defineCommand({
  name: 'participant-example',
  summary: 'run the example participant: a small inventory that takes part in transactions',
  flags: {
    name: { type: 'string', default: 'inventory', description: "the participant's name, as transactions enlist it" },
    port: { type: 'int', default: 7100, min: 0, max: 65_535, description: 'the port to listen on (127.0.0.1)' },
    store: { ...STORE_FLAG, required: false, default: 'http://127.0.0.1:2379' },
    ...STORE_ACCESS_FLAGS,
    'data-dir': { type: 'string', placeholder: 'DIR', description: 'where the participant log and the stock live (default: data/<name>)' },
    stock: { type: 'string', default: '', parse: parseStock, placeholder: 'sku=qty,...', description: 'the opening stock, used when the data dir holds none' },
    'prepare-delay-ms': { type: 'int', default: 0, min: 0, description: 'how long each prepare takes, in ms (to widen the window between votes in tests)' },
    'auth-tokens': { type: 'string', placeholder: 'FILE', description: 'require bearer tokens on the participant routes, from this token file (raft2pc token create); prepare and decision then need a coordinator token; default: no auth' },
    ...LOG_FLAGS,
    ...SHUTDOWN_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const { name, port, store: spec } = values;
    const dataDir = values['data-dir'] ?? join('data', name);
    const log = serviceLogger(values, 'participant', { participant: name });
    /** Fail-stop: a participant that cannot trust its log exits, and the restart recovers from disk. */
    const exitOnFatal = (e: unknown): never => {
      log('error', 'the participant failed; exiting so a restart recovers from disk', { error: e });
      process.exit(1);
    };
    const inventory = new Inventory(dataDir, values['prepare-delay-ms']);
    await inventory.load(values.stock);
    const opened = await openTxStore(spec, name, storeAccessEnv(values));
    const node = await ParticipantNode.open({
      name,
      store: opened.store,
      logPath: join(dataDir, 'participant-log.json'),
      service: inventory,
      failpoints: Failpoints.fromEnv(),
      logger: log,
      onFatal: exitOnFatal,
      config: { logRetentionMs: 600_000, ...(values['auth-tokens'] === undefined ? {} : { authTokensFile: values['auth-tokens'] }) },
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
    const server = await listening(app.listen(port, '127.0.0.1'));
    onShutdownSignals({
      servers: [server],
      timeoutMs: values['shutdown-timeout-ms'],
      log,
      cleanup: stopThenClose(() => node.stop(), () => opened.close()),
    });
    await node.start().catch(exitOnFatal);
    log('info', 'ready', { port, pid: process.pid, store: spec.kind, recoveredOpen: node.transactions({ limit: 1_000 }).filter((t) => t.inDoubt).length });
    ctx.out(`participant ${name} listening on ${port}`);
  },
});

if (isEntryPoint(import.meta.url)) runMain(participantExampleCommand);
