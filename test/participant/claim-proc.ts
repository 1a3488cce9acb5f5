/**
 * A minimal participant process for test/participant/claim.test.ts, built
 * only on the public entry point (`raft2pc/participant`) and served by the
 * plain node:http handler:
 *
 *   node --import tsx test/participant/claim-proc.ts --name N --port P \
 *     --store http://... --data-dir D [--claim-ttl-ms MS]
 *
 * Its service votes "yes" and applies nothing. GET /healthz answers 200 once
 * the node serves, through the handler's `next` (the service's own route).
 * A refused start prints `refused <code>: <message>` and exits 3; SIGTERM
 * stops the node (giving its name back) and exits 0.
 */
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isAppError, openTxStore, ParticipantNode, participantHandler, parseStoreSpec, silentLogger } from 'raft2pc/participant';

const { values } = parseArgs({
  options: { name: { type: 'string' }, port: { type: 'string' }, store: { type: 'string' }, 'data-dir': { type: 'string' }, 'claim-ttl-ms': { type: 'string' } },
});
const name = values.name ?? 'claimed';
const port = Number(values.port ?? 7300);
const dataDir = values['data-dir'] ?? join('data', name);
const claimTtlMs = values['claim-ttl-ms'] === undefined ? undefined : Number(values['claim-ttl-ms']);

const opened = await openTxStore(parseStoreSpec(values.store ?? 'http://127.0.0.1:2379'), name);
let node: ParticipantNode;
try {
  node = await ParticipantNode.open({
    name,
    store: opened.store,
    logPath: join(dataDir, 'participant-log.jsonl'),
    service: { prepare: () => ({ vote: 'yes' }), commit: () => undefined, abort: () => undefined },
    logger: silentLogger,
    onFatal: (e) => {
      process.stdout.write(`fatal ${isAppError(e) ? e.code : ''}: ${String(e)}\n`);
      process.exit(1);
    },
    ...(claimTtlMs === undefined ? {} : { config: { claimTtlMs } }),
  });
} catch (e) {
  process.stdout.write(`refused ${isAppError(e) ? e.code : 'error'}: ${e instanceof Error ? e.message : String(e)}\n`);
  await opened.close();
  process.exit(3);
}

const handle = participantHandler(node);
const server = http.createServer((req, res) =>
  handle(req, res, () => {
    const ok = req.url === '/healthz' && node.ready;
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ ok, pid: process.pid }));
  }),
);
server.listen(port, '127.0.0.1');
await node.start();
process.stdout.write(`claim-proc ${name} pid ${process.pid} listening on ${port}\n`);

process.on('SIGTERM', () => {
  server.close();
  void node
    .stop()
    .then(() => opened.close())
    .finally(() => process.exit(0));
});
