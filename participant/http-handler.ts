/**
 * The participant routes as a plain `node:http` handler, for a service that
 * does not use express:
 *
 *   const handle = participantHandler(node);
 *   http.createServer((req, res) => handle(req, res, () => myRoutes(req, res)));
 *
 * The routes are the express ones (routes.ts), written once; express stays
 * inside. A request they do not serve goes to `next` when given (the
 * service's own routes), else it is answered 404 with the JSON error body.
 * The routes refuse non-JSON state-changing requests (415) themselves; serve
 * the handler with `listenGuarded` (lib/http-guard.ts) for the size limits,
 * the bound on requests in flight, the timeouts and HTTPS.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { notFound } from '../lib/express.js';
import { participantApp } from './routes.js';
import type { ParticipantNode } from './participant.js';

export type ParticipantHttpHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

/** An express app is callable with a third argument (its final handler), though its type omits it. */
type AppWithNext = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

export function participantHandler(node: ParticipantNode): ParticipantHttpHandler {
  const app = participantApp(node, { fallThrough: true });
  const handle = app as unknown as AppWithNext;
  return (req, res, next) => {
    // Express swaps the prototypes of req and res for its own; a request it passes on gets the originals back.
    const reqProto: unknown = Object.getPrototypeOf(req);
    const resProto: unknown = Object.getPrototypeOf(res);
    handle(req, res, () => {
      if (next === undefined) return notFound(req as express.Request, res as express.Response, () => undefined);
      Object.setPrototypeOf(req, reqProto as object);
      Object.setPrototypeOf(res, resProto as object);
      next();
    });
  };
}
