/**
 * The coordinator as a process:
 *   raft2pc coordinator --port P --store http://127.0.0.1:2379,... [--id c1]
 *   raft2pc coordinator --port P --store etcd://10.0.0.1:2379,10.0.0.2:2379,...
 *   (or npm run coordinator -- ...; `--help` lists every flag)
 *
 * The store is the built-in one (http://...) or an existing etcd cluster
 * (etcd://...); without --store, RAFT2PC_STORE or TWOPC_STORE names it.
 * Failpoints for crash tests come from TWOPC_FAILPOINTS (lib/failpoints.ts).
 * SIGTERM or SIGINT drains the API (requests in flight finish, up to
 * --shutdown-timeout-ms), then stops the runtime and closes the store.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, serviceLogger, UsageError } from '../../lib/cli.js';
import { Failpoints } from '../../lib/failpoints.js';
import { onShutdownSignals, SHUTDOWN_FLAGS, stopThenClose } from '../../lib/shutdown.js';
import { serviceTls, TLS_FLAGS } from '../../lib/tls.js';
import { CallToken, TokenAuth } from '../../lib/token-auth.js';
import type { Logger } from '../../lib/logger.js';
import { DEFAULT_COORDINATOR_CONFIG, DEFAULT_SWEEP_ELECTION_TTL_MS, makeCoordinatorConfig, type CoordinatorConfig } from '../runtime/index.js';
import { openTxStore, STORE_ACCESS_FLAGS, STORE_FLAG, storeAccessEnv } from '../txstore/index.js';
import { parseRegistry } from '../runtime/registry.js';
import { CoordinatorServer, type CoordinatorServerOptions } from './server.js';
import { storeUsageSource } from './store-usage.js';

const MAX_PORT = 65_535;

type Limit = 'defaultTimeoutMs' | 'recoveryIntervalMs' | 'retentionMs' | 'ackWaitMs' | 'maxLiveTxs' | 'maxParticipants' | 'retentionMaxBytes' | 'storeHighWaterPercent' | 'storeQuotaBytes' | 'storeUsageCheckMs';

/** A limit of CoordinatorConfig, with its default; makeCoordinatorConfig checks the range. */
const limit = (field: Limit, description: string) => ({ type: 'int', default: DEFAULT_COORDINATOR_CONFIG[field], min: 0, description }) as const;

const LIMIT_FLAGS = {
  'default-timeout-ms': limit('defaultTimeoutMs', "a transaction's timeout when its begin names none, in ms"),
  'recovery-interval-ms': limit('recoveryIntervalMs', 'how often the store is scanned for unfinished transactions, in ms'),
  'retention-ms': limit('retentionMs', 'how long a finished transaction stays readable before collection, in ms'),
  'ack-wait-ms': limit('ackWaitMs', 'how long a decision waits for every acknowledgement before it is collected anyway, in ms'),
  'max-live-txs': limit('maxLiveTxs', 'most transactions held in memory at once'),
  'max-participants': limit('maxParticipants', 'most participants in one transaction'),
  'retention-max-bytes': limit('retentionMaxBytes', "the compacted records' budget in bytes (this process's): past it the oldest are deleted first"),
  'store-high-water-percent': limit('storeHighWaterPercent', "new begins get 429 store_nearly_full while the store holds more than this percentage of its quota"),
  'store-quota-bytes': limit('storeQuotaBytes', "etcd's --quota-backend-bytes, for back-pressure (the built-in store reports its own quota)"),
  'store-usage-check-ms': limit('storeUsageCheckMs', "how often the store's fill level is read for back-pressure, in ms (also the 429's Retry-After)"),
} as const;


export const coordinatorCommand = defineCommand({
  name: 'coordinator',
  summary: 'run a 2PC coordinator: the transactions API over the store',
  flags: {
    port: { type: 'int', default: 7070, min: 0, max: MAX_PORT, description: 'the port to listen on (0: any free port)' },
    host: { type: 'string', default: '127.0.0.1', description: 'the address to listen on' },
    store: STORE_FLAG,
    ...STORE_ACCESS_FLAGS,
    id: { type: 'string', placeholder: 'ID', description: "this coordinator's id, in its logs and the store's client ids (default: c-<random>)" },
    ...LIMIT_FLAGS,
    participant: { type: 'list', placeholder: 'NAME=URL,...', description: 'register participants by name (repeatable): begin and enlist then accept only these names, and the coordinator calls only these URLs; default: clients give URLs (a trusted network)' },
    'sweep-election': { type: 'string', placeholder: 'NAME', description: 'elect one coordinator among those given the same NAME to run the recovery sweep (a recipes Election on a session lease); default: every coordinator sweeps' },
    'sweep-election-ttl-ms': { type: 'int', default: DEFAULT_SWEEP_ELECTION_TTL_MS, min: 0, description: "the sweep election's session lease TTL, in ms: a dead leader is replaced about this long after it stops" },
    'auth-tokens': { type: 'string', placeholder: 'FILE', description: 'require bearer tokens from this token file (JSON of sha256 hashes and roles; raft2pc token create makes one); reread on SIGHUP and change; default: no auth' },
    'call-token-file': { type: 'string', placeholder: 'FILE', description: "this coordinator's own token (a coordinator role), sent on prepare and decision calls to participants; reread on SIGHUP and change" },
    ...TLS_FLAGS,
    ...LOG_FLAGS,
    ...SHUTDOWN_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const id = values.id ?? `c-${randomBytes(3).toString('hex')}`;
    let config: CoordinatorConfig;
    try {
      config = makeCoordinatorConfig({
        id,
        defaultTimeoutMs: values['default-timeout-ms'],
        recoveryIntervalMs: values['recovery-interval-ms'],
        retentionMs: values['retention-ms'],
        ackWaitMs: values['ack-wait-ms'],
        maxLiveTxs: values['max-live-txs'],
        maxParticipants: values['max-participants'],
        retentionMaxBytes: values['retention-max-bytes'],
        storeHighWaterPercent: values['store-high-water-percent'],
        storeQuotaBytes: values['store-quota-bytes'],
        storeUsageCheckMs: values['store-usage-check-ms'],
        sweepElection: values['sweep-election'] === undefined ? null : { name: values['sweep-election'], ttlMs: values['sweep-election-ttl-ms'] },
        participantRegistry: values.participant === undefined || values.participant.length === 0 ? null : parseRegistry(values.participant),
      });
    } catch (e) {
      throw new UsageError(undefined, e instanceof Error ? e.message : String(e));
    }
    // Before the store opens: its client (openTxStore) and the usage probe take the process's CA and certificate.
    const tls = serviceTls(values, values.host);
    const failpoints = Failpoints.fromEnv();
    const spec = values.store;
    const log = serviceLogger(values, 'coordinator', { coordinator: id });
    // openTxStore gives the built-in store's client a fresh id per process: the store deduplicates
    // writes by (client id, sequence), and a restarted process starts its sequences again.
    const tokens = openTokens(values['auth-tokens'], values['call-token-file'], log);
    const opened = await openTxStore(spec, id, storeAccessEnv(values));
    const storeUsage = storeUsageSource(spec, config.storeQuotaBytes);
    const coordinator = new CoordinatorServer({ config, store: opened.store, failpoints, log, storeUsage, tls, ...tokens.options });
    const bound = await coordinator.start({ port: values.port, host: values.host });
    onShutdownSignals({
      servers: [coordinator.httpServer as Server],
      timeoutMs: values['shutdown-timeout-ms'],
      log,
      cleanup: stopThenClose(() => coordinator.stop(), () => {
        tokens.stop();
        return opened.close();
      }),
    });
    log('info', 'listening', { port: bound, store: spec.kind, endpoints: spec.endpoints, pid: process.pid, auth: tokens.options.auth !== undefined });
    ctx.out(`coordinator ${id} listening on ${bound}`);
  },
});

/** The token file and the call token, read now (a bad file is a usage error: exit 2) and watched for changes. */
function openTokens(authFile: string | undefined, callTokenFile: string | undefined, log: Logger): { options: Pick<CoordinatorServerOptions, 'auth' | 'callToken'>; stop: () => void } {
  const read = <T>(flag: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new UsageError(flag, e instanceof Error ? e.message : String(e));
    }
  };
  const auth = authFile === undefined ? undefined : read('--auth-tokens', () => TokenAuth.open(authFile, { log }));
  const call = callTokenFile === undefined ? undefined : read('--call-token-file', () => new CallToken(callTokenFile, { log }));
  const stops = [auth?.watch(), call?.watch()];
  return {
    options: { ...(auth === undefined ? {} : { auth }), ...(call === undefined ? {} : { callToken: () => call.get() }) },
    stop: () => {
      for (const s of stops) s?.();
    },
  };
}

if (isEntryPoint(import.meta.url)) runMain(coordinatorCommand);
