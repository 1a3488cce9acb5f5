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
 *
 * The routes are written once, on lib/http.ts's Router (`participantRoutes`):
 * `participantHandler` (http-handler.ts) serves them on node:http without
 * express, as the benchmark's participants do (express cost 2 to 4 times
 * the CPU per request, docs/BENCHMARKS.md); `participantRouter` is a thin
 * express adapter over the same routes for a host's own express service.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError } from '../lib/errors.js';
import { errorMiddleware, notFound } from '../lib/express.js';
import { jsonOnly } from '../lib/http-guard.js';
import { boundedJsonBody, plainHeaders, queryObject, readJson, requestTarget, Router, sendReply, type JsonReply, type RouteOptions, type Routes } from '../lib/http.js';
import { check } from '../lib/openapi.js';
import { errorText, notReady, readinessStatus, ready, type Readiness } from '../lib/readiness.js';
import { bearerAdmission, refusalOf, routePolicyLookup, sharedTokenAuth, type RoutePolicy, type TokenAuth } from '../lib/token-auth.js';
import type { Decision, JsonValue } from '../coordinator/protocol/index.js';
import type { ParticipantPhase } from './machine.js';
import { decisionBody, PARTICIPANT_ROUTE_POLICIES, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, listQuery, participantOpenApi, prepareBody, workBody } from './openapi.js';
import type { ParticipantNode } from './participant.js';

export { PARTICIPANT_ROUTE_POLICIES } from './openapi.js';

export interface ParticipantRoutesOptions {
  /** Caps every body, work included; default the node's config. */
  readonly maxBodyBytes?: number;
  /** Also serve the OpenAPI document at GET /openapi.json (participantApp, participantHandler). */
  readonly openApi?: boolean;
}

const ok = (body: unknown): JsonReply => ({ status: 200, body });

/** The node's token table and route policies, or undefined when it has no token file. */
function participantTokens(node: ParticipantNode, routes: Router): { auth: TokenAuth; policyOf: (method: string, path: string) => RoutePolicy } | undefined {
  const file = node.config.authTokensFile;
  if (file === undefined) return undefined;
  return { auth: sharedTokenAuth(file, node.logger), policyOf: routePolicyLookup(routes, PARTICIPANT_ROUTE_POLICIES) };
}

/** The token check of `routes` (before any body is read), for the express adapter; undefined without a token file. */
function participantTokenCheck(node: ParticipantNode, routes: Router): ((method: string, path: string, authorization: string | undefined) => JsonReply | undefined) | undefined {
  const t = participantTokens(node, routes);
  return t === undefined ? undefined : (method, path, authorization) => refusalOf(t.auth, t.policyOf, method, path, authorization);
}

/** The token check as a node:http admission (participantHandler), or undefined without a token file. */
export function participantAdmission(node: ParticipantNode, routes: Router): ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined {
  const t = participantTokens(node, routes);
  return t === undefined ? undefined : bearerAdmission(t.auth, t.policyOf);
}

/** The participant's routes on a Router, written once for node:http (participantHandler) and express (participantRouter). */
export function participantRoutes(node: ParticipantNode, opts: ParticipantRoutesOptions = {}): Router {
  const r = new Router({ maxBodyBytes: opts.maxBodyBytes ?? node.config.maxBodyBytes });
  // Checked before the body is read: until recovery has finished, 503 not_ready.
  const gated: RouteOptions = { guard: () => node.assertServing() };
  const gatedBody: RouteOptions = { ...gated, body: true };
  // Ungated: a scrape or a probe during recovery is answered.
  r.on('GET', '/v1/participant/metrics', async () => ({ status: 200, text: await node.metrics.render(), headers: { 'content-type': node.metrics.contentType } }));
  r.on('GET', '/readyz', () => {
    const readiness = participantReadiness(node);
    return { status: readinessStatus(readiness), body: readiness };
  });
  r.on('POST', '/2pc/work', async (ctx) => {
    const body = check<{ txId: string; work: JsonValue }>(workBody, boundedJsonBody(ctx));
    return ok(await node.receiveWork(body.txId, body.work));
  }, gatedBody);
  r.on('POST', '/2pc/prepare', async (ctx) => {
    const body = check<{ txId: string; deadline?: number }>(prepareBody, boundedJsonBody(ctx));
    return ok(await node.prepare(body.txId, body.deadline));
  }, gatedBody);
  r.on('POST', '/2pc/decision', async (ctx) => {
    const body = check<{ txId: string; decision: Decision }>(decisionBody, boundedJsonBody(ctx));
    return ok(await node.decisionHint(body.txId, body.decision));
  }, gatedBody);
  r.on('GET', '/v1/participant/transactions', (ctx) => {
    const q = check<{ phase?: ParticipantPhase; limit?: string }>(listQuery, { ...queryObject(ctx.query) });
    const limit = Math.min(LIST_MAX_LIMIT, Math.max(1, q.limit === undefined ? LIST_DEFAULT_LIMIT : Number(q.limit)));
    return ok({ participant: node.name, transactions: node.transactions({ limit, ...(q.phase === undefined ? {} : { phase: q.phase }) }) });
  }, gated);
  if (opts.openApi === true) {
    const doc = participantOpenApi(node.config);
    r.on('GET', '/openapi.json', () => ok(doc));
  }
  return r;
}

/** The routes as an express router (a thin adapter over `participantRoutes`); errors go to the host's error middleware. */
export function participantRouter(node: ParticipantNode, opts: { readonly maxBodyBytes?: number } = {}): express.Router {
  const maxBodyBytes = opts.maxBodyBytes ?? node.config.maxBodyBytes;
  const routes = participantRoutes(node, { maxBodyBytes });
  const handler = expressAdapter(routes, maxBodyBytes, participantTokenCheck(node, routes));
  const r = express.Router();
  // One express route per route, so a host (and its tests) sees each in its router.
  for (const { method, pattern } of routes.routeTable()) r[method.toLowerCase() as 'get' | 'post'](pattern, handler);
  return r;
}

/** Runs the lib/http route express matched: the 415 rule, the token check, then the body (or the one a host's parser already read), then the reply. */
function expressAdapter(routes: Routes, maxBodyBytes: number, tokenCheck: ReturnType<typeof participantTokenCheck>): RequestHandler {
  const serve = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const url = requestTarget(req);
      const m = routes.match(req.method, url.pathname);
      const refusal = tokenCheck?.(req.method, url.pathname, req.headers.authorization);
      if (refusal !== undefined) return sendReply(req, res, refusal);
      const parsed: unknown = req.body;
      const body = !m.takesBody ? undefined : parsed !== undefined ? parsed : await readJson(req, maxBodyBytes);
      sendReply(req, res, await m.run({ method: req.method, path: url.pathname, query: url.searchParams, headers: plainHeaders(req.headers), body }));
    } catch (e) {
      next(e);
    }
  };
  // The media-type rule (415) here too, for a host that serves these routes on a server of its own.
  return (req, res, next) => jsonOnly(req, res, () => void serve(req, res, next));
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

/** A ready-made express app with only the participant routes, its OpenAPI document (/openapi.json) and the JSON error mapping. */
export function participantApp(node: ParticipantNode): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(participantRouter(node));
  const openApi = participantOpenApi(node.config);
  app.get('/openapi.json', (_req, res) => void res.json(openApi));
  app.use(notFound);
  app.use(errorMiddleware((e) => node.logger('error', 'internal error', { error: e })));
  return app;
}
