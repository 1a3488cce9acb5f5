/**
 * One bank as a process (the demo supervisor starts three):
 *
 *   node --import tsx demo/bank/main.ts --name bank-a --port 7111 \
 *     --store http://127.0.0.1:7121,... --data-dir data/demo/banks/bank-a \
 *     --accounts alice=1000,bob=1000 [--audit-wait-ms 1500] [--host 127.0.0.1]
 *   (`--help` lists every flag)
 *
 * Routes (app.ts): the participant routes (/2pc/work, /2pc/prepare,
 * /2pc/decision, /v1/participant/...), /v1/accounts, /v1/summary,
 * /v1/audits/{txId} and /healthz.
 * `--accounts` is used only when the bank's data dir holds no balances yet.
 * SIGTERM or SIGINT lets requests in flight finish (up to
 * --shutdown-timeout-ms), then stops the participant and closes the store.
 */
import { join } from 'node:path';
import { defineCommand, isEntryPoint, LOG_FLAGS, runMain, serviceLogger } from '../../lib/cli.js';
import { Failpoints } from '../../lib/failpoints.js';
import { listenGuarded } from '../../lib/http-guard.js';
import { onShutdownSignals, SHUTDOWN_FLAGS, stopThenClose } from '../../lib/shutdown.js';
import { serviceTls, TLS_FLAGS } from '../../lib/tls.js';
import { openTxStore, STORE_ACCESS_FLAGS, STORE_FLAG, storeAccessEnv } from '../../coordinator/txstore/index.js';
import { ParticipantNode } from '../../participant/index.js';
import { bankApp } from './app.js';
import { Bank } from './bank.js';
import { isAccountId, isBankName, MAX_BALANCE } from './work.js';

function parseBankName(text: string): string {
  if (!isBankName(text)) throw new Error(`${JSON.stringify(text)} must match [a-z][a-z0-9-]*`);
  return text;
}

/** `id=amount,...` to opening balances. */
function parseAccounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').filter((s) => s !== '')) {
    const [id, amount] = part.split('=');
    const n = Number(amount);
    if (id === undefined || !isAccountId(id) || !Number.isSafeInteger(n) || n < 0 || n > MAX_BALANCE) throw new Error(`bad entry "${part}" (want id=amount, 0 <= amount <= ${MAX_BALANCE})`);
    out[id] = n;
  }
  if (Object.keys(out).length === 0) throw new Error('names no account');
  return out;
}

export const bankCommand = defineCommand({
  name: 'bank',
  summary: "run one of the demo's banks: a participant holding accounts",
  flags: {
    name: { type: 'string', required: true, parse: parseBankName, placeholder: 'NAME', description: "the bank's name (bank-a), as transfers enlist it" },
    port: { type: 'int', default: 7111, min: 0, max: 65_535, description: 'the port to listen on' },
    host: { type: 'string', default: '127.0.0.1', description: 'the address to listen on' },
    store: STORE_FLAG,
    ...STORE_ACCESS_FLAGS,
    'data-dir': { type: 'string', placeholder: 'DIR', description: 'where the balances and the participant log live (default: data/demo/banks/<name>)' },
    accounts: { type: 'string', default: 'alice=1000,bob=1000,carol=1000,dave=1000', parse: parseAccounts, placeholder: 'id=amount,...', description: 'the opening balances, used when the data dir holds none' },
    'audit-wait-ms': { type: 'int', default: 1_500, min: 0, description: "how long an audit's prepare waits for prepared transfers to finish before it votes no, in ms" },
    'auth-tokens': { type: 'string', placeholder: 'FILE', description: 'require bearer tokens on the participant routes, from this token file (raft2pc token create); prepare and decision then need a coordinator token; default: no auth' },
    ...TLS_FLAGS,
    ...LOG_FLAGS,
    ...SHUTDOWN_FLAGS,
  },
  async run(values, _positionals, ctx) {
    const { name, port, host, store: spec } = values;
    const dataDir = values['data-dir'] ?? join('data', 'demo', 'banks', name);
    const log = serviceLogger(values, 'bank', { participant: name });
    const tls = serviceTls(values, host);
    /** Fail-stop: a participant that cannot trust its log exits, and the restart recovers from disk. */
    const exitOnFatal = (e: unknown): never => {
      log('error', 'the participant failed; exiting so a restart recovers from disk', { error: e });
      process.exit(1);
    };
    const bank = await Bank.open({ name, dataDir, openingBalances: values.accounts, auditWaitMs: values['audit-wait-ms'] });
    const opened = await openTxStore(spec, name, storeAccessEnv(values));
    // A short retention keeps the participant log small under a steady load.
    const node = await ParticipantNode.open({
      name,
      store: opened.store,
      logPath: join(dataDir, 'participant-log.json'),
      service: bank,
      failpoints: Failpoints.fromEnv(),
      logger: log,
      onFatal: exitOnFatal,
      config: { logRetentionMs: 120_000, logCompactIntervalMs: 10_000, ...(values['auth-tokens'] === undefined ? {} : { authTokensFile: values['auth-tokens'] }) },
    }).catch(exitOnFatal);
    bank.setSettledCheck((txId) => {
      const r = node.log.get(txId);
      return r === undefined || r.ackedAt !== undefined;
    });

    const app = bankApp({ name, bank, node, log });

    // Listen first (health says 503 until ready), then recover: in-doubt locks come back before anything is served.
    const server = await listenGuarded(app, host, port, { tls, log });
    onShutdownSignals({
      servers: [server],
      timeoutMs: values['shutdown-timeout-ms'],
      log,
      cleanup: stopThenClose(() => node.stop(), () => opened.close()),
    });
    await node.start().catch(exitOnFatal);
    const inDoubt = node.transactions({ phase: 'prepared', limit: 1_000 }).length;
    log('info', 'ready', { port, pid: process.pid, total: bank.total(), inDoubt });
    ctx.out(`bank ${name} listening on ${port}`);
  },
});

if (isEntryPoint(import.meta.url)) runMain(bankCommand);
