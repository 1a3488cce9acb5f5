/**
 * One bank as a process (the demo supervisor starts three):
 *
 *   node --import tsx demo/bank/main.ts --name bank-a --port 7111 \
 *     --store http://127.0.0.1:7121,... --data-dir data/demo/banks/bank-a \
 *     --accounts alice=1000,bob=1000 [--audit-wait-ms 1500] [--host 127.0.0.1]
 *
 * Routes: the participant routes (/2pc/work, /2pc/prepare, /2pc/decision,
 * /v1/participant/...), and
 *   GET /v1/accounts         [{id, balance, locked, readLocked}]
 *   GET /v1/summary          name, pid, accounts, total, openingTotal, locks, in-doubt count
 *   GET /v1/audits/{txId}    what an audit read here under its read locks
 *   GET /healthz             200 once recovery is done (503 before)
 * `--accounts` is used only when the bank's data dir holds no balances yet.
 */
import { join } from 'node:path';
import express from 'express';
import { AppError } from '../../lib/errors.js';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { Failpoints } from '../../lib/failpoints.js';
import { errorMiddleware, notFound, route } from '../../lib/express.js';
import { stderrLogger } from '../../lib/logger.js';
import { openTxStore, storeSpecFrom } from '../../coordinator/txstore/index.js';
import { isValidTxId } from '../../coordinator/protocol/index.js';
import { ParticipantNode, participantRouter } from '../../participant/index.js';
import { Bank } from './bank.js';
import { isAccountId, isBankName, MAX_BALANCE } from './work.js';

function fail(message: string): never {
  process.stderr.write(`bank: ${message}\n`);
  process.exit(2);
}

const { values } = parseFlags({
  name: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string' },
  'data-dir': { type: 'string' },
  accounts: { type: 'string' },
  'audit-wait-ms': { type: 'string' },
});

const name = stringFlag(values, 'name') ?? fail('--name is required');
if (!isBankName(name)) fail(`--name ${name} must match [a-z][a-z0-9-]*`);
const port = intFlag(values, 'port', 7111);
const host = stringFlag(values, 'host') ?? '127.0.0.1';
const dataDir = stringFlag(values, 'data-dir') ?? join('data', 'demo', 'banks', name);
const spec = storeSpecFrom(stringFlag(values, 'store')) ?? fail('--store http://host:port,... (or TWOPC_STORE) is required');

function parseAccounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').filter((s) => s !== '')) {
    const [id, amount] = part.split('=');
    const n = Number(amount);
    if (id === undefined || !isAccountId(id) || !Number.isSafeInteger(n) || n < 0 || n > MAX_BALANCE) fail(`bad --accounts entry "${part}" (want id=amount)`);
    out[id] = n;
  }
  if (Object.keys(out).length === 0) fail('--accounts names no account');
  return out;
}

const log = stderrLogger(`bank ${name}`);
/** Fail-stop: a participant that cannot trust its log exits, and the restart recovers from disk. */
function exitOnFatal(e: unknown): never {
  log('error', 'the participant failed; exiting so a restart recovers from disk', { error: e });
  process.exit(1);
}
const bank = await Bank.open({
  name,
  dataDir,
  openingBalances: parseAccounts(stringFlag(values, 'accounts') ?? 'alice=1000,bob=1000,carol=1000,dave=1000'),
  auditWaitMs: intFlag(values, 'audit-wait-ms', 1_500),
});
const opened = await openTxStore(spec, name);
// A short retention keeps the participant log small under a steady load.
const node = await ParticipantNode.open({
  name,
  store: opened.store,
  logPath: join(dataDir, 'participant-log.json'),
  service: bank,
  failpoints: Failpoints.fromEnv(),
  logger: log,
  onFatal: exitOnFatal,
  config: { logRetentionMs: 120_000, logCompactIntervalMs: 10_000 },
}).catch(exitOnFatal);
bank.setSettledCheck((txId) => {
  const r = node.log.get(txId);
  return r === undefined || r.ackedAt !== undefined;
});

const app = express();
app.disable('x-powered-by');
app.set('query parser', 'simple');
app.use(participantRouter(node));
const ready: express.RequestHandler = (_req, _res, next) => {
  next(node.ready ? undefined : new AppError('not_ready', 503, 'the bank is recovering; retry shortly', { retryAfterSeconds: 1 }));
};
app.get('/v1/accounts', ready, (_req, res) => {
  res.json(bank.accounts());
});
app.get('/v1/summary', ready, (_req, res) => {
  const accounts = bank.accounts();
  res.json({
    name,
    pid: process.pid,
    accounts,
    total: bank.total(),
    openingTotal: bank.openingTotal,
    locked: accounts.reduce((s, a) => s + a.locked, 0),
    ...bank.locks(),
    inDoubt: node.transactions({ phase: 'prepared', limit: 1_000 }).length,
  });
});
app.get(
  '/v1/audits/:txId',
  ready,
  route((req, res) => {
    const txId = String(req.params['txId']);
    if (!isValidTxId(txId)) throw new AppError('invalid_tx_id', 400, 'not a transaction id');
    const read = bank.auditRead(txId);
    if (read === undefined) throw new AppError('audit_not_found', 404, `no audit ${txId} read this bank (or it was forgotten)`);
    res.json({ bank: name, ...read });
  }),
);
app.get('/healthz', (_req, res) => {
  res.status(node.ready ? 200 : 503).json({ ok: node.ready, name, pid: process.pid });
});
app.use(notFound);
app.use(errorMiddleware((e) => log('error', 'internal error', { error: e })));

// Listen first (health says 503 until ready), then recover: in-doubt locks come back before anything is served.
const server = app.listen(port, host);
await new Promise<void>((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
await node.start().catch(exitOnFatal);
const inDoubt = node.transactions({ phase: 'prepared', limit: 1_000 }).length;
log('info', 'ready', { port, pid: process.pid, total: bank.total(), inDoubt });
process.stdout.write(`bank ${name} listening on ${port}\n`);

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close();
    void node
      .stop()
      .then(() => opened.close())
      .finally(() => process.exit(0));
  });
}
