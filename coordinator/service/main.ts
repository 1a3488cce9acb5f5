/**
 * `npm run coordinator -- --port P --store http://127.0.0.1:2379,... [--id c1]`
 * `npm run coordinator -- --port P --store etcd://10.0.0.1:2379,10.0.0.2:2379,...`
 *
 * The store is the built-in one (http://...) or an existing etcd cluster
 * (etcd://...); without --store, the TWOPC_STORE environment variable names it.
 * Optional: --host H, --default-timeout-ms, --recovery-interval-ms,
 * --retention-ms, --ack-wait-ms, --max-live-txs, --max-participants,
 * --log-level debug|info|warn|error. Failpoints for crash tests come from
 * the TWOPC_FAILPOINTS environment variable (lib/failpoints.ts).
 */
import { randomBytes } from 'node:crypto';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { makeCoordinatorConfig, type CoordinatorConfig } from '../runtime/index.js';
import { Failpoints } from '../../lib/failpoints.js';
import { stderrLogger, type LogLevel } from '../../lib/logger.js';
import { openTxStore, STORE_ENV, storeSpecFrom, type StoreSpec } from '../txstore/index.js';
import { CoordinatorServer } from './server.js';

const { values } = parseFlags({
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string' },
  id: { type: 'string' },
  'default-timeout-ms': { type: 'string' },
  'recovery-interval-ms': { type: 'string' },
  'retention-ms': { type: 'string' },
  'ack-wait-ms': { type: 'string' },
  'max-live-txs': { type: 'string' },
  'max-participants': { type: 'string' },
  'log-level': { type: 'string' },
});

function fail(message: string): never {
  process.stderr.write(`coordinator: ${message}\n`);
  process.exit(2);
}

let spec: StoreSpec;
try {
  spec = storeSpecFrom(stringFlag(values, 'store')) ?? fail(`--store http://host:port,... (built-in store) or etcd://host:port,... is required, or ${STORE_ENV}`);
} catch (e) {
  fail(String((e as Error).message));
}
const DEFAULT_PORT = 7070;
const port = intFlag(values, 'port', DEFAULT_PORT);
const id = stringFlag(values, 'id') ?? `c-${randomBytes(3).toString('hex')}`;

const overrides: Partial<Record<keyof CoordinatorConfig, number>> = {};
const numeric: [string, keyof CoordinatorConfig][] = [
  ['default-timeout-ms', 'defaultTimeoutMs'],
  ['recovery-interval-ms', 'recoveryIntervalMs'],
  ['retention-ms', 'retentionMs'],
  ['ack-wait-ms', 'ackWaitMs'],
  ['max-live-txs', 'maxLiveTxs'],
  ['max-participants', 'maxParticipants'],
];
for (const [flag, key] of numeric) if (values[flag] !== undefined) overrides[key] = intFlag(values, flag, 0);

let config: CoordinatorConfig;
try {
  config = makeCoordinatorConfig({ ...overrides, id });
} catch (e) {
  fail(String((e as Error).message));
}

let failpoints: Failpoints;
try {
  failpoints = Failpoints.fromEnv();
} catch (e) {
  fail(String((e as Error).message));
}

const log = stderrLogger(`coordinator ${id}`, (stringFlag(values, 'log-level') ?? 'info') as LogLevel);
// openTxStore gives the built-in store's client a fresh id per process: the store deduplicates
// writes by (client id, sequence), and a restarted process starts its sequences again.
const opened = await openTxStore(spec, id);
const server = new CoordinatorServer({ config, store: opened.store, failpoints, log });

const bound = await server.start({ port, host: stringFlag(values, 'host') ?? '127.0.0.1' });
log('info', 'listening', { port: bound, store: spec.kind, endpoints: spec.endpoints, pid: process.pid });
process.stdout.write(`coordinator ${id} listening on ${bound}\n`);

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    void server
      .stop()
      .finally(() => opened.close())
      .finally(() => process.exit(0));
  });
}
