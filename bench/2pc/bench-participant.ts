/**
 * A participant as the 2PC benchmark runs it: the product's ParticipantNode
 * and routes (participantHandler, on node:http) in their own process, with its real fsync'd log, on the store
 * named by `--store`, doing trivial work (prepare votes "yes", commit and
 * abort do nothing) so that the benchmark measures the protocol, not an
 * application. Every store call is counted. Started by twopc-bench.ts over
 * an IPC channel.
 *
 * It lives in bench/2pc/ (so the type check covers it) although it
 * imports participant/: a benchmark harness sits above both components, like
 * the tests; nothing in the coordinator proper imports the participant.
 *
 *   --name N --port P --store SPEC --log PATH [--cert-file F --key-file F --trusted-ca-file F --client-cert-auth] [--auth-tokens FILE]
 */
import type { ServerResponse } from 'node:http';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { listenGuarded } from '../../lib/http-guard.js';
import { ParticipantNode, participantHandler, type ParticipantService } from '../../participant/index.js';
import { stderrLogger } from '../../lib/logger.js';
import { openTxStore, parseStoreSpec } from '../../coordinator/txstore/index.js';
import { CountingTxStore } from './counting-store.js';
import { sendReady, serveReports } from './ipc.js';
import { BENCH_TLS_FLAGS, benchServiceTls } from './secure.js';

const { values } = parseFlags({ name: { type: 'string' }, port: { type: 'string' }, store: { type: 'string' }, log: { type: 'string' }, ...BENCH_TLS_FLAGS });
// Before the store opens: its client takes the process's CA and certificate.
const tls = benchServiceTls(values);
const name = stringFlag(values, 'name') ?? 'p';
const logPath = stringFlag(values, 'log') ?? `data/bench/${name}/participant-log.json`;
const spec = parseStoreSpec(stringFlag(values, 'store') ?? 'http://127.0.0.1:2379');
const opened = await openTxStore(spec, `bench-${name}`);
const store = new CountingTxStore(opened.store);
const log = stderrLogger(`participant ${name}`);

/** Trivial work: the benchmark measures the protocol's cost, not a service's. */
const service: ParticipantService = {
  prepare: () => ({ vote: 'yes' }),
  commit: () => {},
  abort: () => {},
};
/** Fail-stop: a participant that cannot trust its log exits (the benchmark reports the lost process). */
function exitOnFatal(e: unknown): never {
  log('error', 'the participant failed; exiting', { error: e });
  process.exit(1);
}
const authTokens = stringFlag(values, 'auth-tokens');
const config = authTokens === undefined ? {} : { config: { authTokensFile: authTokens } };
const node = await ParticipantNode.open({ name, store, logPath, service, logger: log, onFatal: exitOnFatal, ...config }).catch(exitOnFatal);

// The product's plain node:http handler (no express), behind the HTTP guard as a service serves it.
const handle = participantHandler(node);
const healthz = (res: ServerResponse): void => {
  const text = JSON.stringify({ ok: node.ready });
  res.writeHead(node.ready ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
};
const server = await listenGuarded(
  (req, res) => handle(req, res, () => (req.url === '/healthz' ? healthz(res) : res.writeHead(404).end())),
  '127.0.0.1',
  intFlag(values, 'port', 7100),
  { tls, log, limits: { keepAliveTimeoutMs: 65_000, headersTimeoutMs: 66_000, requestTimeoutMs: 120_000 } },
);
await node.start().catch(exitOnFatal);
const address = server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  server.closeAllConnections();
  void node
    .stop()
    .then(() => opened.close())
    .finally(() => process.exit(0));
};
serveReports(() => ({ counts: store.counts, metricsText: node.metrics.render() }), stop);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, stop);
log('info', 'ready', { port, pid: process.pid, store: spec.endpoints, kind: spec.kind });
sendReady(port);
