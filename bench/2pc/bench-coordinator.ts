/**
 * The coordinator as the 2PC benchmark runs it: the product's
 * CoordinatorService with its default configuration, in its own process, on
 * the store named by `--store` (coordinator/txstore/open.ts, so the built-in
 * store and etcd run the same code), with every store call counted. Started
 * by bench/2pc/twopc-bench.ts over an IPC channel; not a tool on its own.
 *
 *   --port P --store SPEC [--id bench-c1] [--cert-file F --key-file F --trusted-ca-file F --client-cert-auth]
 *
 * With the TLS flags (bench:2pc --secure) it serves HTTPS, with --auth-tokens
 * and --call-token-file it checks and shows bearer tokens; its store user
 * comes from RAFT2PC_STORE_USER and RAFT2PC_STORE_PASSWORD.
 */
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/index.js';
import { stderrLogger } from '../../lib/logger.js';
import { openTxStore, parseStoreSpec } from '../../coordinator/txstore/index.js';
import { CoordinatorServer } from '../../coordinator/service/index.js';
import { CountingTxStore } from './counting-store.js';
import { sendReady, serveReports } from './ipc.js';
import { BENCH_TLS_FLAGS, benchCoordinatorTokens, benchServiceTls } from './secure.js';

const { values } = parseFlags({ port: { type: 'string' }, store: { type: 'string' }, id: { type: 'string' }, ...BENCH_TLS_FLAGS });
// Before the store opens: its client takes the process's CA and certificate.
const tls = benchServiceTls(values);
const spec = parseStoreSpec(stringFlag(values, 'store') ?? 'http://127.0.0.1:2379');
const id = stringFlag(values, 'id') ?? 'bench-c1';
const opened = await openTxStore(spec, id);
const store = new CountingTxStore(opened.store);
const log = stderrLogger(`coordinator ${id}`);
const server = new CoordinatorServer({ config: makeCoordinatorConfig({ id }), store, log, tls, ...benchCoordinatorTokens(values, log) });
const port = await server.start({ port: intFlag(values, 'port', 7070), host: '127.0.0.1' });

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void server
    .stop()
    .then(() => opened.close())
    .finally(() => process.exit(0));
};
serveReports(() => ({ counts: store.counts, metricsText: server.service.metricsText() }), stop);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, stop);
log('info', 'listening', { port, pid: process.pid, store: spec.endpoints, kind: spec.kind });
sendReady(port);
