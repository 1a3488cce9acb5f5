/**
 * The participant's REST glue, mounted by the embedding service:
 *
 *   POST /2pc/work      {txId, work}        -> 200 {txId, accepted: true}   (durable before the answer)
 *   POST /2pc/prepare   {txId, deadline?}   -> 200 {txId, vote}             (the vote the store holds)
 *   POST /2pc/decision  {txId, decision}    -> 200 {txId, decision, phase}  (checked against the store)
 *   GET  /v1/participant/transactions?phase=&limit=   the local log, newest first
 *   GET  /v1/participant/metrics                      Prometheus text
 *
 * Until start-up recovery has finished every call answers 503 not_ready.
 * Each route only checks its body and calls the node's public method of
 * the same meaning (the simulation calls those methods directly).
 */
import express, { type RequestHandler } from 'express';
import { ajv, check, errorMiddleware, jsonBody, route } from '../lib/express.js';
import type { Decision, JsonValue } from '../coordinator/protocol/index.js';
import type { ParticipantPhase } from './machine.js';
import type { ParticipantNode } from './participant.js';

const txId = { type: 'string', minLength: 1, maxLength: 128 } as const;

/** Transactions one listing answers: by default, and at most. */
const LIST_DEFAULT_LIMIT = 100;
const LIST_MAX_LIMIT = 1_000;

const workBody = ajv.compile({
  type: 'object',
  properties: { txId, work: {} },
  required: ['txId', 'work'],
  additionalProperties: false,
});

const prepareBody = ajv.compile({
  type: 'object',
  properties: { txId, deadline: { type: 'integer', minimum: 0 } },
  required: ['txId'],
  additionalProperties: false,
});

const decisionBody = ajv.compile({
  type: 'object',
  properties: { txId, decision: { enum: ['commit', 'abort'] } },
  required: ['txId', 'decision'],
  additionalProperties: false,
});

const listQuery = ajv.compile({
  type: 'object',
  properties: {
    phase: { enum: ['new', 'received', 'prepared', 'refused', 'committed', 'aborted'] },
    limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
  },
  additionalProperties: false,
});

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
  r.use(['/2pc', '/v1/participant'], ready, jsonBody(opts.maxBodyBytes ?? node.config.maxBodyBytes));

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

  r.get('/v1/participant/metrics', (_req, res) => {
    res.type('text/plain; version=0.0.4').send(node.registry.render());
  });

  return r;
}

/** A ready-made app with only the participant routes and the JSON error mapping. */
export function participantApp(node: ParticipantNode): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(participantRouter(node));
  app.use(errorMiddleware((e) => node.logger('error', 'internal error', { error: e })));
  return app;
}
