/**
 * The coordinator's and the participant's hot routes served three ways, for
 * bench/http/frameworks.ts: express as the product served them before
 * (coordinator/service/routes.ts, participant/routes.ts: the same middleware
 * stack), lib/http.ts's Router, and fastify with its own JSON-schema
 * validation. Every variant checks the body against the product's own
 * schemas (coordinator/service/openapi.ts, participant/openapi.ts), refuses
 * nesting past MAX_JSON_DEPTH and sits behind the same HTTP guard
 * (lib/http-guard.ts); the business call is a stub that answers a fixed
 * body, so only the HTTP layer differs. A fourth variant, `product`, is
 * the product's own routes after the switch (coordinatorApp and
 * participantHandler over stubs), to show they cost what `lib` costs.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type RequestHandler } from 'express';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { AppError, isAppError } from '../../lib/errors.js';
import { check, errorMiddleware, jsonBody, notFound, route } from '../../lib/express.js';
import { boundedJsonDepth, createGuardedServer, jsonDepthExceeds, jsonOnly, MAX_JSON_DEPTH, PLAIN_HTTP } from '../../lib/http-guard.js';
import { nodeListener, Router, type RouteContext } from '../../lib/http.js';
import { silentLogger } from '../../lib/logger.js';
import { schemaOf } from '../../lib/openapi.js';
import { isValidTxId } from '../../coordinator/protocol/index.js';
import { beginBody, commitBody } from '../../coordinator/service/openapi.js';
import { workBody } from '../../participant/openapi.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/index.js';
import { coordinatorApp, type CoordinatorApi } from '../../coordinator/service/routes.js';
import { DEFAULT_PARTICIPANT_CONFIG } from '../../participant/config.js';
import { participantHandler } from '../../participant/http-handler.js';
import type { ParticipantNode } from '../../participant/participant.js';

/** `product`: the product's own routes after the switch (coordinatorApp, participantHandler) over a stubbed service. */
export const FRAMEWORKS = ['express', 'lib', 'fastify', 'product'] as const;
export type Framework = (typeof FRAMEWORKS)[number];
export const SERVICES = ['coordinator', 'participant'] as const;
export type Service = (typeof SERVICES)[number];

/** The products' body cap (CoordinatorConfig and ParticipantConfig default to 256 KiB). */
export const MAX_BODY_BYTES = 256 * 1024;

/** The stubbed business calls: a fixed answer, asynchronously, as the service's promise would. */
const stub = {
  begin: async (_body: unknown, _key: string | undefined) => ({ id: 'tbench0000000000000000', state: 'active', deadline: 1_900_000_000_000 }),
  commit: async (id: string) => ({ id, outcome: 'committed', votes: { a: 'yes', b: 'yes' } }),
  work: async (txId: string) => ({ txId, accepted: true }),
};

function txIdOf(id: string | undefined): string {
  if (id === undefined || !isValidTxId(id)) throw new AppError('invalid_tx_id', 400, 'transaction id must match [A-Za-z0-9][A-Za-z0-9._-]* and be at most 128 characters');
  return id;
}

function depthChecked(body: unknown): unknown {
  if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) throw new AppError('json_too_deep', 400, `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, { limit: MAX_JSON_DEPTH });
  return body;
}

// ---------------------------------------------------------------------------
// express, as the product served these routes before

function expressCoordinator(): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(jsonOnly);
  app.use(jsonBody(MAX_BODY_BYTES), boundedJsonDepth);
  app.post(
    '/v1/transactions',
    route(async (req, res) => {
      const body = check(beginBody, req.body);
      res.status(201).json(await stub.begin(body, req.get('idempotency-key')));
    }),
  );
  app.post(
    '/v1/transactions/:id/commit',
    route(async (req, res) => {
      const id = txIdOf(req.params['id'] as string | undefined);
      check(commitBody, req.body);
      res.json(await stub.commit(id));
    }),
  );
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.use(notFound);
  app.use(errorMiddleware());
  return app;
}

function expressParticipant(): RequestListener {
  const r = express.Router();
  const ready: RequestHandler = (_req, _res, next) => next();
  r.get('/v1/participant/metrics', (_req, res) => void res.type('text/plain').send('# none\n'));
  r.get('/readyz', (_req, res) => void res.json({ ready: true }));
  r.use(['/2pc', '/v1/participant'], jsonOnly, ready, jsonBody(MAX_BODY_BYTES), boundedJsonDepth);
  r.post(
    '/2pc/work',
    route(async (req, res) => {
      const body = check<{ txId: string }>(workBody, req.body);
      res.json(await stub.work(body.txId));
    }),
  );
  const app = express();
  app.disable('x-powered-by');
  app.use(r);
  app.use(errorMiddleware());
  return app;
}

// ---------------------------------------------------------------------------
// lib/http.ts's Router

/** An empty body reads as {}, as the express stack's did. */
const bodyOf = (ctx: RouteContext): unknown => depthChecked(ctx.body === undefined ? {} : ctx.body);

function libListener(router: Router): RequestListener {
  const inner = nodeListener(router, MAX_BODY_BYTES);
  return (req, res) => jsonOnly(req, res, () => inner(req, res));
}

function libCoordinator(): RequestListener {
  const r = new Router({ maxBodyBytes: MAX_BODY_BYTES });
  r.on('POST', '/v1/transactions', async (ctx) => ({ status: 201, body: await stub.begin(check(beginBody, bodyOf(ctx)), ctx.headers['idempotency-key']) }), { body: true });
  r.on(
    'POST',
    '/v1/transactions/:id/commit',
    async (ctx) => {
      const id = txIdOf(ctx.params['id']);
      check(commitBody, bodyOf(ctx));
      return { status: 200, body: await stub.commit(id) };
    },
    { body: true },
  );
  r.on('GET', '/healthz', () => ({ status: 200, body: { ok: true } }));
  return libListener(r);
}

function libParticipant(): RequestListener {
  const r = new Router({ maxBodyBytes: MAX_BODY_BYTES });
  r.on('GET', '/v1/participant/metrics', () => ({ status: 200, text: '# none\n' }));
  r.on('GET', '/readyz', () => ({ status: 200, body: { ready: true } }));
  r.on('POST', '/2pc/work', async (ctx) => ({ status: 200, body: await stub.work(check<{ txId: string }>(workBody, bodyOf(ctx)).txId) }), { body: true });
  return libListener(r);
}

// ---------------------------------------------------------------------------
// fastify, validating with its own ajv from the same schemas

function fastifyError(e: FastifyError | AppError): { status: number; body: unknown } {
  if (isAppError(e)) return { status: e.status, body: e.toBody() };
  const f = e as FastifyError;
  if (f.validation !== undefined) return { status: 400, body: { error: { code: 'invalid_request', message: f.message } } };
  if (f.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { error: { code: 'body_too_large', message: `request body exceeds ${MAX_BODY_BYTES} bytes`, limitBytes: MAX_BODY_BYTES } } };
  if (f.statusCode === 400) return { status: 400, body: { error: { code: 'invalid_json', message: 'request body is not valid JSON' } } };
  if (typeof f.statusCode === 'number' && f.statusCode < 500) return { status: f.statusCode, body: { error: { code: 'bad_request', message: f.message } } };
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}

/** Fastify's ajv set as the product's: refuse unknown fields (not strip them), no type coercion. */
function fastifyApp(serverFactory: (handler: RequestListener) => ReturnType<typeof createGuardedServer>): FastifyInstance {
  const app = Fastify({
    bodyLimit: MAX_BODY_BYTES,
    serverFactory: (handler) => serverFactory(handler as RequestListener),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, strict: true, allowUnionTypes: true } },
  });
  app.setErrorHandler((e, _req, reply) => {
    const { status, body } = fastifyError(e as FastifyError);
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => void reply.status(404).send({ error: { code: 'not_found', message: `no route for ${req.method} ${req.url}` } }));
  app.addHook('preValidation', async (req) => {
    depthChecked(req.body);
  });
  return app;
}

function fastifyCoordinator(app: FastifyInstance): void {
  app.post('/v1/transactions', { schema: { body: schemaOf(beginBody) } }, async (req, reply) => {
    const key = req.headers['idempotency-key'];
    void reply.status(201);
    return stub.begin(req.body, typeof key === 'string' ? key : undefined);
  });
  app.post<{ Params: { id: string } }>('/v1/transactions/:id/commit', { schema: { body: schemaOf(commitBody) } }, async (req) => stub.commit(txIdOf(req.params.id)));
  app.get('/healthz', async () => ({ ok: true }));
}

function fastifyParticipant(app: FastifyInstance): void {
  app.get('/v1/participant/metrics', async (_req, reply) => reply.type('text/plain').send('# none\n'));
  app.get('/readyz', async () => ({ ready: true }));
  app.post<{ Body: { txId: string } }>('/2pc/work', { schema: { body: schemaOf(workBody) } }, async (req) => stub.work(req.body.txId));
}

// ---------------------------------------------------------------------------
// the product's own routes over stubs of the service and the node (only what the hot routes call answers)

function productCoordinator(): RequestListener {
  const api = { config: makeCoordinatorConfig({ id: 'bench' }), begin: stub.begin, commit: stub.commit } as unknown as CoordinatorApi;
  return coordinatorApp(api, { log: silentLogger });
}

function productParticipant(): RequestListener {
  const node = { name: 'a', config: DEFAULT_PARTICIPANT_CONFIG, logger: silentLogger, assertServing: () => undefined, receiveWork: stub.work } as unknown as ParticipantNode;
  return participantHandler(node) as RequestListener;
}

// ---------------------------------------------------------------------------

/** Serves one variant guarded on 127.0.0.1:port; resolves once it listens. */
export async function serveVariant(framework: Framework, service: Service, port: number): Promise<{ close(): Promise<void> }> {
  const guarded = (listener: RequestListener) => createGuardedServer(listener, { tls: PLAIN_HTTP, log: silentLogger });
  if (framework === 'fastify') {
    const app = fastifyApp(guarded);
    if (service === 'coordinator') fastifyCoordinator(app);
    else fastifyParticipant(app);
    await app.listen({ port, host: '127.0.0.1' });
    return { close: () => app.close() };
  }
  const builders = { express: [expressCoordinator, expressParticipant], lib: [libCoordinator, libParticipant], product: [productCoordinator, productParticipant] } as const;
  const listener = builders[framework][service === 'coordinator' ? 0 : 1]();
  const server = guarded(listener as (req: IncomingMessage, res: ServerResponse) => void);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
