/**
 * `npm run coordinator -- --port P --store http://127.0.0.1:2379,... [--id c1]`
 *
 * Optional: --host H, --default-timeout-ms, --recovery-interval-ms,
 * --retention-ms, --ack-wait-ms, --max-live-txs, --max-participants,
 * --log-level debug|info|warn|error. Failpoints for crash tests come from
 * the TWOPC_FAILPOINTS environment variable (failpoints.ts).
 */
import { randomBytes } from 'node:crypto';
import { intFlag, parseFlags, stringFlag } from '../lib/args.js';
import { StoreClient } from '../store/client/index.js';
import { makeCoordinatorConfig, type CoordinatorConfig } from './config.js';
import { Failpoints } from './failpoints.js';
import { stderrLogger, type LogLevel } from './logger.js';
import { CoordinatorService } from './service.js';
import { BuiltinTxStore } from './store.js';

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

const storeFlag = stringFlag(values, 'store') ?? fail('--store http://host:port,... is required');
const endpoints = storeFlag.split(',').map((s) => s.trim()).filter((s) => s !== '');
if (endpoints.length === 0) fail('--store needs at least one endpoint');
const port = intFlag(values, 'port', 7070);
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

const log = stderrLogger(`coordinator ${id}`, (stringFlag(values, 'log-level') ?? 'info') as LogLevel);
// A fresh client id per process: the store deduplicates writes by (client id, sequence), and a
// restarted process starts its sequences again.
const client = new StoreClient({ endpoints, clientId: `${id}-${randomBytes(6).toString('hex')}` });
const service = new CoordinatorService({ config, store: new BuiltinTxStore(client), failpoints: Failpoints.fromEnv(), log });

const bound = await service.start({ port, host: stringFlag(values, 'host') ?? '127.0.0.1' });
log('info', 'listening', { port: bound, store: endpoints, pid: process.pid });
process.stdout.write(`coordinator ${id} listening on ${bound}\n`);

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    void service.stop().finally(() => process.exit(0));
  });
}
