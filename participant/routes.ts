/**
 * The participant's REST glue, mounted by the embedding service:
 *
 *   POST /2pc/work      {txId, work}        -> 200 {txId, accepted: true}   (durable before the answer)
 *   POST /2pc/prepare   {txId, deadline?}   -> 200 {txId, vote}             (the vote the store holds)
 *   POST /2pc/decision  {txId, decision}    -> 200 {txId, decision, phase}  (checked against the store)
 *   GET  /v1/participant/transactions?phase=&limit=   the local log, newest first
 *   GET  /v1/participant/metrics                      Prometheus text (served while recovering too)
 *   GET  /readyz        200 once the log is open and recovery finished, else 503 {ready: false, reason}
 *   GET  /openapi.json  this API as OpenAPI 3.1 (participantApp; openapi.ts builds it for a host to serve)
 *
 * Until start-up recovery has finished every other call answers 503 not_ready.
 * Each route only checks its body and calls the node's public method of
 * the same meaning (the simulation calls those methods directly).
 */
import express, { type RequestHandler } from 'express';
import { AppError } from '../lib/errors.js';
import { check, errorMiddleware, jsonBody, notFound, route } from '../lib/express.js';
import { boundedJsonDepth, jsonOnly } from '../lib/http-guard.js';
import { errorText, notReady, readinessStatus, ready, type Readiness } from '../lib/readiness.js';
import type { Decision, JsonValue } from '../coordinator/protocol/index.js';
import type { ParticipantPhase } from './machine.js';
import { decisionBody, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, listQuery, participantOpenApi, prepareBody, workBody } from './openapi.js';
import type { ParticipantNode } from './participant.js';

/** The routes as an express router; `maxBodyBytes` (default: the node's config) caps every body, work included. */
export function participantRouter(node: ParticipantNode, opts: { readonly maxBodyBytes?: number } = {}): express.Router {
  const r = express.Router();
  const ready: RequestHandler = (_req, _res, next) => {
    try {
      node.assertServing();
      next();
    } catch (e) {
      next(e);
    }
  };
  // Before the readiness gate: a scrape or a probe during recovery is answered.
  r.get(
    '/v1/participant/metrics',
    route(async (_req, res) => {
      res.type(node.metrics.contentType).send(await node.metrics.render());
    }),
  );
  r.get('/readyz', (_req, res) => {
    const readiness = participantReadiness(node);
    res.status(readinessStatus(readiness)).json(readiness);
  });
  // The media-type rule (415) here too, for a host that serves these routes on a server of its own.
  r.use(['/2pc', '/v1/participant'], jsonOnly, ready, jsonBody(opts.maxBodyBytes ?? node.config.maxBodyBytes), boundedJsonDepth);

  r.post(
    '/2pc/work',
    route(async (req, res) => {
      const body = check<{ txId: string; work: JsonValue }>(workBody, req.body);
      res.json(await node.receiveWork(body.txId, body.work));
    }),
  );

  r.post(
    '/2pc/prepare',
    route(async (req, res) => {
      const body = check<{ txId: string; deadline?: number }>(prepareBody, req.body);
      res.json(await node.prepare(body.txId, body.deadline));
    }),
  );

  r.post(
    '/2pc/decision',
    route(async (req, res) => {
      const body = check<{ txId: string; decision: Decision }>(decisionBody, req.body);
      res.json(await node.decisionHint(body.txId, body.decision));
    }),
  );

  r.get(
    '/v1/participant/transactions',
    route((req, res) => {
      const q = check<{ phase?: ParticipantPhase; limit?: string }>(listQuery, { ...(req.query as Record<string, unknown>) });
      const limit = Math.min(LIST_MAX_LIMIT, Math.max(1, q.limit === undefined ? LIST_DEFAULT_LIMIT : Number(q.limit)));
      res.json({ participant: node.name, transactions: node.transactions({ limit, ...(q.phase === undefined ? {} : { phase: q.phase }) }) });
    }),
  );

  return r;
}

/** Ready once the node serves (its log is open, recovery finished, not stopped or failed); else the 503's reason. */
export function participantReadiness(node: Pick<ParticipantNode, 'name' | 'assertServing'>): Readiness {
  const id = { participant: node.name };
  try {
    node.assertServing();
    return ready(id);
  } catch (e) {
    return notReady(errorText(e), e instanceof AppError ? { ...id, code: e.code } : id);
  }
}

/** A ready-made app with only the participant routes, its OpenAPI document (/openapi.json) and the JSON error mapping. */
export function participantApp(node: ParticipantNode, opts: { readonly fallThrough?: boolean } = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(participantRouter(node));
  const openApi = participantOpenApi(node.config);
  app.get('/openapi.json', (_req, res) => void res.json(openApi));
  // Standalone, an unknown route is a JSON 404; inside a host (http-handler.ts) it goes on to the host's routes.
  if (opts.fallThrough !== true) app.use(notFound);
  app.use(errorMiddleware((e) => node.logger('error', 'internal error', { error: e })));
  return app;
}
