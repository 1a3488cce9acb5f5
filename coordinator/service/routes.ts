/**
 * The coordinator's REST routes (docs/API.md, "Coordinator contract"),
 * every body and query checked with the ajv schemas of openapi.ts (which
 * also builds the document served at /openapi.json). Status codes: 201 begin, 200
 * otherwise; 400 bad input, 404 unknown transaction, 409 state conflicts
 * (tx_not_active, already_committed, participant_conflict), 413 body too
 * large, 429 store_nearly_full on begin (back-pressure, with Retry-After),
 * 503 store unavailable or too many transactions (with Retry-After),
 * 504 when the answer did not come in time (every call is idempotent: retry).
 * Each route only checks its input and calls the service (service.ts).
 */
import express, { type Request } from 'express';
import { AppError } from '../../lib/errors.js';
import { isValidTxId, type JsonObject, type ListedState } from '../protocol/index.js';
import { check, errorMiddleware, jsonBody, notFound, route } from '../../lib/express.js';
import { boundedJsonDepth, jsonOnly } from '../../lib/http-guard.js';
import type { Logger } from '../../lib/logger.js';
import { readinessStatus } from '../../lib/readiness.js';
import { abortBody, beginBody, commitBody, coordinatorOpenApi, enlistBody, faultsBody, listQuery } from './openapi.js';
import type { CoordinatorService } from './service.js';

/** The `:id` path parameter, checked against the protocol's id rule. */
function txIdParam(req: Request): string {
  const id = req.params['id'];
  if (typeof id !== 'string' || !isValidTxId(id)) throw new AppError('invalid_tx_id', 400, 'transaction id must match [A-Za-z0-9][A-Za-z0-9._-]* and be at most 128 characters');
  return id;
}

/** What the routes use of the service. */
export type CoordinatorApi = Pick<CoordinatorService, 'config' | 'liveCount' | 'metrics' | 'readiness' | 'begin' | 'enlist' | 'commit' | 'abort' | 'get' | 'list'>;

export interface CoordinatorAppOptions {
  readonly log: Logger;
  /**
   * Fault injection (chaos runs only): the participant base URLs the hints
   * treat as unreachable, edited by `/v1/admin/faults`. Undefined: that route
   * does not exist.
   */
  readonly blockedHintUrls?: Set<string>;
}

export function coordinatorApp(service: CoordinatorApi, opts: CoordinatorAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // Also on the server (lib/http-guard.ts); here for an app mounted on another server.
  app.use(jsonOnly);
  app.use(jsonBody(service.config.maxBodyBytes), boundedJsonDepth);
  writeRoutes(app, service);
  readRoutes(app, service);
  if (opts.blockedHintUrls !== undefined) faultRoutes(app, service.config.id, opts.blockedHintUrls);
  const openApi = coordinatorOpenApi(service.config, { faultRoutes: opts.blockedHintUrls !== undefined });
  app.get('/openapi.json', (_req, res) => void res.json(openApi));
  app.use(notFound);
  app.use(errorMiddleware((e) => opts.log('error', 'internal error', { error: e })));
  return app;
}

/** Begin, enlist, commit, abort. */
function writeRoutes(app: express.Express, service: CoordinatorApi): void {
  app.post(
    '/v1/transactions',
    route(async (req, res) => {
      const body = check<{ timeoutMs?: number; participants?: unknown[]; metadata?: JsonObject }>(beginBody, req.body);
      const key = req.get('idempotency-key');
      res.status(201).json(await service.begin(body, key));
    }),
  );

  app.post(
    '/v1/transactions/:id/participants',
    route(async (req, res) => {
      const id = txIdParam(req);
      res.json(await service.enlist(id, check(enlistBody, req.body)));
    }),
  );

  app.post(
    '/v1/transactions/:id/commit',
    route(async (req, res) => {
      const id = txIdParam(req);
      check(commitBody, req.body);
      res.json(await service.commit(id));
    }),
  );

  app.post(
    '/v1/transactions/:id/abort',
    route(async (req, res) => {
      const id = txIdParam(req);
      const body = check<{ reason?: string }>(abortBody, req.body);
      res.json(await service.abort(id, body.reason));
    }),
  );
}

/** The listing, one transaction, health and metrics. */
function readRoutes(app: express.Express, service: CoordinatorApi): void {
  app.get(
    '/v1/transactions',
    route(async (req, res) => {
      const q = check<{ state?: ListedState; limit?: string; after?: string }>(listQuery, { ...(req.query as Record<string, unknown>) });
      const limit = q.limit === undefined ? undefined : Number(q.limit);
      if (limit !== undefined && (limit < 1 || limit > service.config.listMaxLimit)) {
        res.status(400).json({ error: { code: 'invalid_request', message: `limit must be from 1 to ${service.config.listMaxLimit}` } });
        return;
      }
      res.json(await service.list({ ...(q.state === undefined ? {} : { state: q.state }), ...(limit === undefined ? {} : { limit }), ...(q.after === undefined ? {} : { after: q.after }) }));
    }),
  );

  app.get(
    '/v1/transactions/:id',
    route(async (req, res) => {
      res.json(await service.get(txIdParam(req)));
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, id: service.config.id, liveTransactions: service.liveCount });
  });

  app.get(
    '/readyz',
    route(async (_req, res) => {
      const readiness = await service.readiness();
      res.status(readinessStatus(readiness)).json(readiness);
    }),
  );

  app.get(
    '/metrics',
    route(async (_req, res) => {
      res.type(service.metrics.contentType).send(await service.metrics.render());
    }),
  );
}

/** Chaos runs only: cut this coordinator off from chosen participants. */
function faultRoutes(app: express.Express, coordinatorId: string, blocked: Set<string>): void {
  const state = (): { id: string; blockedUrls: string[] } => ({ id: coordinatorId, blockedUrls: [...blocked].sort() });
  app.get('/v1/admin/faults', (_req, res) => void res.json(state()));
  app.put(
    '/v1/admin/faults',
    route(async (req, res) => {
      const body = check<{ blockedUrls: string[] }>(faultsBody, req.body);
      blocked.clear();
      for (const url of body.blockedUrls) blocked.add(url.replace(/\/+$/, ''));
      res.json(state());
    }),
  );
  app.delete('/v1/admin/faults', (_req, res) => {
    blocked.clear();
    res.json(state());
  });
}
