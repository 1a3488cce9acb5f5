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
 *
 * The routes run on lib/http.ts's Router over node:http, not express: on
 * the real routes express cost this service 2 to 4 times the CPU per
 * request (docs/BENCHMARKS.md, "HTTP frameworks"; docs/DECISIONS.md).
 * What express gave is kept: a path or method with no route is 404
 * not_found, an empty body reads as {}, a repeated query name is refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../../lib/errors.js';
import { boundedJsonBody, expressStyleRoutes, httpApp, nodeListener, queryObject, Router, type HttpApp, type JsonReply, type RouteContext } from '../../lib/http.js';
import { jsonOnly } from '../../lib/http-guard.js';
import type { Logger } from '../../lib/logger.js';
import { check } from '../../lib/openapi.js';
import { readinessStatus } from '../../lib/readiness.js';
import { bearerAdmission, routePolicyLookup, type TokenAuth } from '../../lib/token-auth.js';
import { isValidTxId, type JsonObject, type ListedState } from '../protocol/index.js';
import { abortBody, beginBody, commitBody, COORDINATOR_ROUTE_POLICIES, coordinatorOpenApi, enlistBody, faultsBody, listQuery } from './openapi.js';
import type { CoordinatorService } from './service.js';

export { COORDINATOR_ROUTE_POLICIES } from './openapi.js';

/** The `:id` path parameter, checked against the protocol's id rule. */
function txIdParam(ctx: RouteContext): string {
  const id = ctx.params['id'];
  if (id === undefined || !isValidTxId(id)) throw new AppError('invalid_tx_id', 400, 'transaction id must match [A-Za-z0-9][A-Za-z0-9._-]* and be at most 128 characters');
  return id;
}

/** What the routes use of the service. */
export type CoordinatorApi = Pick<CoordinatorService, 'config' | 'liveCount' | 'metrics' | 'readiness' | 'begin' | 'enlist' | 'commit' | 'abort' | 'get' | 'list'> & {
  /** The recovery sweep election, when configured (`sweep` in /healthz). */
  readonly recovery?: Pick<CoordinatorService['recovery'], 'sweepStatus'>;
};

export interface CoordinatorAppOptions {
  readonly log: Logger;
  /**
   * Fault injection (chaos runs only): the participant base URLs the hints
   * treat as unreachable, edited by `/v1/admin/faults`. Undefined: that route
   * does not exist.
   */
  readonly blockedHintUrls?: Set<string>;
  /**
   * Bearer tokens (lib/token-auth.ts): every request is checked against its
   * route's policy (openapi.ts COORDINATOR_ROUTE_POLICIES) before its body is read.
   * Undefined: no auth, anyone the TLS settings let through may call.
   */
  readonly auth?: Pick<TokenAuth, 'check'>;
}

const ok = (body: unknown): JsonReply => ({ status: 200, body });
const BODY = { body: true } as const;

/** The coordinator's routes on a Router (what `coordinatorApp` serves; a test may dispatch to it directly). */
export function coordinatorRouter(service: CoordinatorApi, opts: CoordinatorAppOptions): Router {
  const r = new Router({ maxBodyBytes: service.config.maxBodyBytes });
  writeRoutes(r, service);
  readRoutes(r, service);
  if (opts.blockedHintUrls !== undefined) faultRoutes(r, service.config.id, opts.blockedHintUrls);
  const openApi = coordinatorOpenApi(service.config, { faultRoutes: opts.blockedHintUrls !== undefined });
  r.on('GET', '/openapi.json', () => ok(openApi));
  return r;
}

/** The routes as a node:http listener (serve it with lib/http-guard.ts's `listenGuarded`; supertest drives it as is). */
export function coordinatorApp(service: CoordinatorApi, opts: CoordinatorAppOptions): HttpApp {
  const router = coordinatorRouter(service, opts);
  // The one place tokens are checked: after the route matched (a 404 stays a 404), before the body is read.
  const admit = opts.auth === undefined ? {} : { admit: bearerAdmission(opts.auth, routePolicyLookup(router, COORDINATOR_ROUTE_POLICIES)) };
  const inner = nodeListener(expressStyleRoutes(router), service.config.maxBodyBytes, { onInternalError: (e) => opts.log('error', 'internal error', { error: e }), ...admit });
  // The media-type rule (415) is also on the server (lib/http-guard.ts); here for a listener served by another.
  const listener = (req: IncomingMessage, res: ServerResponse): void => jsonOnly(req, res, () => inner(req, res));
  return httpApp(listener, router);
}

/** Begin, enlist, commit, abort. */
function writeRoutes(r: Router, service: CoordinatorApi): void {
  r.on(
    'POST',
    '/v1/transactions',
    async (ctx) => {
      const body = check<{ timeoutMs?: number; participants?: unknown[]; metadata?: JsonObject }>(beginBody, boundedJsonBody(ctx));
      return { status: 201, body: await service.begin(body, ctx.headers['idempotency-key']) };
    },
    BODY,
  );
  r.on(
    'POST',
    '/v1/transactions/:id/participants',
    async (ctx) => {
      const body = boundedJsonBody(ctx);
      return ok(await service.enlist(txIdParam(ctx), check(enlistBody, body)));
    },
    BODY,
  );
  r.on(
    'POST',
    '/v1/transactions/:id/commit',
    async (ctx) => {
      const body = boundedJsonBody(ctx);
      const id = txIdParam(ctx);
      check(commitBody, body);
      return ok(await service.commit(id));
    },
    BODY,
  );
  r.on(
    'POST',
    '/v1/transactions/:id/abort',
    async (ctx) => {
      const raw = boundedJsonBody(ctx);
      const id = txIdParam(ctx);
      const body = check<{ reason?: string }>(abortBody, raw);
      return ok(await service.abort(id, body.reason));
    },
    BODY,
  );
}

/** The listing, one transaction, health and metrics. */
function readRoutes(r: Router, service: CoordinatorApi): void {
  r.on('GET', '/v1/transactions', async (ctx) => {
    const q = check<{ state?: ListedState; limit?: string; after?: string }>(listQuery, { ...queryObject(ctx.query) });
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (limit !== undefined && (limit < 1 || limit > service.config.listMaxLimit)) throw new AppError('invalid_request', 400, `limit must be from 1 to ${service.config.listMaxLimit}`);
    return ok(await service.list({ ...(q.state === undefined ? {} : { state: q.state }), ...(limit === undefined ? {} : { limit }), ...(q.after === undefined ? {} : { after: q.after }) }));
  });
  r.on('GET', '/v1/transactions/:id', async (ctx) => ok(await service.get(txIdParam(ctx))));
  r.on('GET', '/healthz', () => {
    // `sweep` only with the sweep election on: who leads the recovery sweep, its term and fencing token.
    const sweep = service.recovery?.sweepStatus() ?? null;
    return ok({ ok: true, id: service.config.id, liveTransactions: service.liveCount, ...(sweep === null ? {} : { sweep }) });
  });
  r.on('GET', '/readyz', async () => {
    const readiness = await service.readiness();
    return { status: readinessStatus(readiness), body: readiness };
  });
  r.on('GET', '/metrics', async () => ({ status: 200, text: await service.metrics.render(), headers: { 'content-type': service.metrics.contentType } }));
}

/** Chaos runs only: cut this coordinator off from chosen participants. */
function faultRoutes(r: Router, coordinatorId: string, blocked: Set<string>): void {
  const state = (): JsonReply => ok({ id: coordinatorId, blockedUrls: [...blocked].sort() });
  r.on('GET', '/v1/admin/faults', state);
  r.on(
    'PUT',
    '/v1/admin/faults',
    (ctx) => {
      const body = check<{ blockedUrls: string[] }>(faultsBody, boundedJsonBody(ctx));
      blocked.clear();
      for (const url of body.blockedUrls) blocked.add(url.replace(/\/+$/, ''));
      return state();
    },
    BODY,
  );
  r.on('DELETE', '/v1/admin/faults', () => {
    blocked.clear();
    return state();
  });
}
