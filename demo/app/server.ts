/**
 * The transfer app's HTTP API and page:
 *
 *   GET  /                                the page (demo/app/page, plain HTML + JS)
 *   GET  /v1/events                       server-sent events: `state` (the PageState) on every poll
 *   GET  /v1/state                        the same state, once
 *   POST /v1/transfers                    {from:{bank,account}, to:{bank,account}, amount} -> {txId, outcome, ...}
 *   POST /v1/audit                        read every account of every bank under locks -> {txId, outcome, banks, total}
 *   GET  /v1/load, POST /v1/load          {action:"start", concurrency?, durationMs?} | {action:"stop"}
 *   POST /v1/processes/{name}/{action}    kill | pause | resume | restart | start, through the supervisor
 *   GET  /healthz
 *
 * Bad input is a 400 with a code (invalid_request, invalid_amount,
 * unknown_bank, unknown_account, same_account); 503 when a needed process
 * does not answer; 504 outcome_unknown when no coordinator gave an outcome.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import { AppError } from '../../lib/errors.js';
import { ajv, check, errorMiddleware, jsonBody, notFound, route } from '../../lib/express.js';
import { boundedJsonDepth, jsonOnly } from '../../lib/http-guard.js';
import { isAmount, MAX_AMOUNT } from '../bank/work.js';
import type { ControlClient } from '../supervisor/control.js';
import type { ProcessAction } from '../supervisor/process.js';
import type { TxFeed } from './feed.js';
import type { LoadRunner } from './load.js';
import type { Monitor } from './monitor.js';
import { pageState, type Auditor } from './state.js';
import type { TransferRequest, TransferService } from './transfers.js';

const PAGE_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'page');
const MAX_EVENT_CLIENTS = 32;
/** A page that stops reading is dropped once this much is queued for it. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const PAGE_ACTIONS: readonly ProcessAction[] = ['kill', 'pause', 'resume', 'restart', 'start'];

const accountRef = {
  type: 'object',
  properties: { bank: { type: 'string', maxLength: 64 }, account: { type: 'string', maxLength: 64 } },
  required: ['bank', 'account'],
  additionalProperties: false,
} as const;

const transferBody = ajv.compile({
  type: 'object',
  properties: { from: accountRef, to: accountRef, amount: {} },
  required: ['from', 'to', 'amount'],
  additionalProperties: false,
});

const loadBody = ajv.compile({
  type: 'object',
  properties: { action: { enum: ['start', 'stop'] }, concurrency: { type: 'integer' }, durationMs: { type: 'integer' } },
  required: ['action'],
  additionalProperties: false,
});

const emptyBody = ajv.compile({ type: 'object', additionalProperties: false });

export interface AppParts {
  readonly monitor: Monitor;
  readonly feed: TxFeed;
  readonly transfers: TransferService;
  readonly load: LoadRunner;
  readonly auditor: Auditor;
  readonly banks: ReadonlyMap<string, string>;
  readonly control?: ControlClient;
}

export interface TransferApp {
  readonly app: express.Express;
  /** Pushes the current state to every page. */
  broadcast(): void;
  /** Ends every event stream (at shutdown). */
  closeStreams(): void;
}

export function transferApp(parts: AppParts): TransferApp {
  const state = (): ReturnType<typeof pageState> => pageState({ ...parts, controllable: parts.control !== undefined });
  const streams = new EventStreams(state);
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, pid: process.pid });
  });
  app.use(express.static(PAGE_DIR, { index: 'index.html', maxAge: 0 }));
  // Also on the server (lib/http-guard.ts); here for an app mounted on another server.
  app.use('/v1', jsonOnly, jsonBody(64 * 1024), boundedJsonDepth);

  app.get('/v1/state', (_req, res) => {
    res.json(state());
  });
  app.get('/v1/events', (req, res) => streams.open(req, res));
  addTransferRoutes(app, parts);
  addProcessRoutes(app, parts);

  app.use(notFound);
  app.use(errorMiddleware((e) => console.error('app internal error:', e)));

  return {
    app,
    broadcast: () => streams.broadcast(),
    closeStreams: () => streams.closeAll(),
  };
}

/** The pages' server-sent event streams: each gets the state on open and on every broadcast. */
class EventStreams {
  private readonly clients = new Set<Response>();

  constructor(private readonly state: () => ReturnType<typeof pageState>) {}

  open(req: Request, res: Response): void {
    if (this.clients.size >= MAX_EVENT_CLIENTS) throw new AppError('too_many_clients', 503, `at most ${MAX_EVENT_CLIENTS} pages at once`, { retryAfterSeconds: 5 });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    res.write(`event: state\ndata: ${JSON.stringify(this.state())}\n\n`);
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  broadcast(): void {
    if (this.clients.size === 0) return;
    const frame = `event: state\ndata: ${JSON.stringify(this.state())}\n\n`;
    for (const res of this.clients) {
      if (res.writableLength > MAX_QUEUED_BYTES) {
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(frame);
    }
  }

  closeAll(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

/** Transfers, audits and the load generator. */
function addTransferRoutes(app: express.Express, parts: AppParts): void {
  app.post(
    '/v1/transfers',
    route(async (req, res) => {
      res.json(await parts.transfers.transfer(validTransfer(req.body, parts)));
    }),
  );

  app.post(
    '/v1/audit',
    route(async (req, res) => {
      check(emptyBody, req.body);
      res.json(await parts.auditor.run(3));
    }),
  );

  app.get('/v1/load', (_req, res) => {
    res.json(parts.load.stats());
  });

  app.post(
    '/v1/load',
    route((req, res) => {
      const body = check<{ action: 'start' | 'stop'; concurrency?: number; durationMs?: number }>(loadBody, req.body);
      res.json(body.action === 'stop' ? parts.load.stop() : parts.load.start(body.concurrency ?? 4, body.durationMs));
    }),
  );
}

/** The page's kill, pause, resume, restart and start buttons, through the supervisor's control API. */
function addProcessRoutes(app: express.Express, parts: AppParts): void {
  app.post(
    '/v1/processes/:name/:action',
    route(async (req, res) => {
      const name = String(req.params['name']);
      const action = String(req.params['action']) as ProcessAction;
      if (!PAGE_ACTIONS.includes(action)) throw new AppError('unknown_action', 400, `action must be one of ${PAGE_ACTIONS.join(', ')}`);
      const control = parts.control;
      if (control === undefined) throw new AppError('no_control', 503, 'this app runs without the supervisor, so it cannot start or stop processes');
      const target = (await control.processes()).find((p) => p.name === name);
      if (target === undefined) throw new AppError('unknown_process', 404, `no process named ${name}`);
      if (target.role === 'app') throw new AppError('not_allowed', 403, 'the transfer app cannot be stopped from its own page');
      res.json(await control.act(name, action));
    }),
  );
}

/** Checks a transfer against the banks and accounts as last seen; throws a 4xx naming the problem. */
function validTransfer(body: unknown, parts: AppParts): TransferRequest {
  const t = check<{ from: { bank: string; account: string }; to: { bank: string; account: string }; amount: unknown }>(transferBody, body);
  if (!isAmount(t.amount)) throw new AppError('invalid_amount', 400, `amount must be a whole number from 1 to ${MAX_AMOUNT}`);
  for (const side of [t.from, t.to]) {
    if (!parts.banks.has(side.bank)) throw new AppError('unknown_bank', 400, `no bank named ${side.bank}; banks: ${[...parts.banks.keys()].join(', ')}`);
    const accounts = parts.monitor.accountsOf(side.bank);
    if (accounts === undefined) throw new AppError('bank_unavailable', 503, `the accounts of ${side.bank} are not known yet (it has not answered)`, { retryAfterSeconds: 1 });
    if (!accounts.includes(side.account)) throw new AppError('unknown_account', 400, `${side.bank} has no account ${side.account}`);
  }
  if (t.from.bank === t.to.bank && t.from.account === t.to.account) throw new AppError('same_account', 400, 'from and to are the same account');
  return { from: t.from, to: t.to, amount: t.amount };
}
