/**
 * Express glue for the express services (the demo's banks and web app, a
 * host that mounts `participantRouter`): JSON bodies with a byte cap, ajv
 * validation, and one place that turns any error into
 * `{"error": {"code", "message", ...}}`. Bad input is always a 4xx with a
 * clear code; a 500 means a bug. The coordinator and the participant routes
 * themselves run on lib/http.ts (docs/DECISIONS.md).
 */
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { isAppError } from './errors.js';

// The validators live with the OpenAPI builder (no express needed to check a body); here for the express routes.
export { ajv, check } from './openapi.js';

/** JSON bodies of any content type (clients forget the header), capped at `maxBytes`; an empty body reads as {}. */
export function jsonBody(maxBytes: number): RequestHandler {
  const parse = express.json({ limit: maxBytes, type: () => true, strict: false });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if (err !== undefined) return next(err);
      if (req.body === undefined) req.body = {};
      next();
    });
  };
}

/** Wraps an async handler so its rejection reaches the error middleware (express 5 does this too; explicit here). */
export function route(h: (req: Request, res: Response) => Promise<void> | void): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => h(req, res))
      .catch(next);
  };
}

export function sendErrorBody(res: Response, e: unknown, log?: (e: unknown) => void): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (isAppError(e)) {
    const retry = e.details['retryAfterSeconds'];
    if (typeof retry === 'number') res.setHeader('retry-after', String(retry));
    res.status(e.status).json(e.toBody());
    return;
  }
  const bp = e as { type?: unknown; status?: unknown; limit?: unknown } | null;
  if (bp !== null && typeof bp === 'object') {
    // body-parser's and the router's errors carry a 4xx status: bad input, never a 500.
    if (bp.type === 'entity.too.large') {
      res.status(413).json({ error: { code: 'body_too_large', message: `request body exceeds ${String(bp.limit)} bytes`, limitBytes: bp.limit } });
      return;
    }
    if (bp.type === 'entity.parse.failed') {
      res.status(400).json({ error: { code: 'invalid_json', message: 'request body is not valid JSON' } });
      return;
    }
    if (e instanceof URIError) {
      res.status(400).json({ error: { code: 'invalid_path', message: 'the path is not valid percent-encoding' } });
      return;
    }
    if (typeof bp.status === 'number' && bp.status >= 400 && bp.status < 500) {
      res.status(bp.status).json({ error: { code: 'bad_request', message: String((e as Error).message) } });
      return;
    }
  }
  log?.(e);
  res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
}

export function errorMiddleware(log?: (e: unknown) => void): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => sendErrorBody(res, err, log);
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}` } });
};
