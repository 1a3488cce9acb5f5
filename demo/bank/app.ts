/**
 * A bank's HTTP API as an express app, apart from the process (main.ts) so
 * that tests drive it in-process (test/routes/bank.test.ts, supertest):
 * the participant routes, and
 *   GET /v1/accounts         [{id, balance, locked, readLocked}]
 *   GET /v1/summary          name, pid, accounts, total, openingTotal, locks, in-doubt count
 *   GET /v1/audits/{txId}    what an audit read here under its read locks
 *   GET /healthz             200 once recovery is done (503 before)
 */
import express from 'express';
import { AppError } from '../../lib/errors.js';
import { errorMiddleware, notFound, route } from '../../lib/express.js';
import type { Logger } from '../../lib/logger.js';
import { isValidTxId } from '../../coordinator/protocol/index.js';
import { participantRouter, type ParticipantNode } from '../../participant/index.js';
import type { Bank } from './bank.js';

export interface BankAppOptions {
  readonly name: string;
  readonly bank: Bank;
  readonly node: ParticipantNode;
  readonly log: Logger;
  /** The pid the summary and health report. Default: this process's. */
  readonly pid?: number;
}

export function bankApp({ name, bank, node, log, pid = process.pid }: BankAppOptions): express.Express {
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
      pid,
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
    res.status(node.ready ? 200 : 503).json({ ok: node.ready, name, pid });
  });
  app.use(notFound);
  app.use(errorMiddleware((e) => log('error', 'internal error', { error: e })));
  return app;
}
