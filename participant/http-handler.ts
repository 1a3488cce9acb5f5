/**
 * The participant routes as a plain `node:http` handler, for a service that
 * does not use express:
 *
 *   const handle = participantHandler(node);
 *   http.createServer((req, res) => handle(req, res, () => myRoutes(req, res)));
 *
 * The routes are routes.ts's, written once on lib/http.ts's Router; no
 * express runs here (the benchmark's participants serve this way). A request
 * they do not serve goes to `next` when given (the service's own routes),
 * else it is answered 404 with the JSON error body. The routes refuse
 * non-JSON state-changing requests (415) themselves; serve the handler with
 * `listenGuarded` (lib/http-guard.ts) for the size limits, the bound on
 * requests in flight, the timeouts and HTTPS.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jsonOnly } from '../lib/http-guard.js';
import { expressStyleRoutes, nodeListener } from '../lib/http.js';
import { participantAdmission, participantRoutes } from './routes.js';
import type { ParticipantNode } from './participant.js';

export type ParticipantHttpHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

/** jsonOnly as a yes/no: it answers a refused request itself and calls `next` at once otherwise. */
function admitJson(req: IncomingMessage, res: ServerResponse): boolean {
  let admitted = false;
  jsonOnly(req, res, () => {
    admitted = true;
  });
  return admitted;
}

export function participantHandler(node: ParticipantNode): ParticipantHttpHandler {
  const router = participantRoutes(node, { openApi: true });
  const routes = expressStyleRoutes(router);
  const onInternalError = (e: unknown): void => node.logger('error', 'internal error', { error: e });
  // With a token file, the token check after the 415 rule, before the body (routes.ts PARTICIPANT_ROUTE_POLICIES).
  const tokens = participantAdmission(node, router);
  const admit = tokens === undefined ? admitJson : (req: IncomingMessage, res: ServerResponse): boolean => admitJson(req, res) && tokens(req, res);
  const standalone = nodeListener(routes, node.config.maxBodyBytes, { onInternalError, admit });
  return (req, res, next) => {
    if (next === undefined) standalone(req, res);
    else nodeListener(routes, node.config.maxBodyBytes, { onInternalError, admit, unrouted: () => next() })(req, res);
  };
}
