/**
 * What the store API's route modules share. Kept apart from api.ts so the
 * route modules import this file and never each other (no import cycles).
 */
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { JsonReply, PlainRequest } from '../../lib/http.js';
import type { Random } from '../../lib/random.js';
import type { KvResult, RequestId } from '../kv/index.js';
import type { PeerTransport } from '../node/io.js';
import type { StoreNode } from '../node/node.js';
import { kvFailureToError } from './errors.js';

/** A node on any transport: the process's TCP one or a simulated one. */
export type ApiNode = StoreNode<PeerTransport>;

/** Runs `run` on the leader: here when this node leads, else by forwarding `req` (with `body`) to it. */
export type OnLeader = (req: PlainRequest, body: unknown, run: () => Promise<Record<string, unknown>>) => Promise<Record<string, unknown>>;

export interface RouteDeps {
  readonly node: ApiNode;
  /** Stamps writes (`nowMs`, for session expiry): the node's clock. */
  readonly clock: Clock;
  /** Chooses lease ids. */
  readonly random: Random;
  readonly onLeader: OnLeader;
}

export function parseRequestId(header: string | readonly string[] | undefined): RequestId | undefined {
  if (header === undefined) return undefined;
  const text = typeof header === 'string' ? header : header[0];
  const m = /^([^:\s]{1,128}):(\d{1,15})$/.exec(text ?? '');
  const seq = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(seq) || seq < 1) {
    throw new AppError('invalid_request_id', 400, 'Request-Id must be <clientId>:<sequence> with a positive sequence');
  }
  return { clientId: m[1] as string, seq };
}

export function ok(body: unknown): JsonReply {
  return { status: 200, body };
}

/** A KV result's fields, or its failure as the contract's HTTP error. */
export function unwrap(result: KvResult): Record<string, unknown> {
  if (!result.ok && result.error.code === 'permission_denied') {
    // Refused at apply (the auth table changed after the check): the same answer as a refusal before proposing.
    const { code, message, ...details } = result.error;
    throw new AppError(code, 403, message, details);
  }
  if (!result.ok) throw kvFailureToError(result);
  return result as unknown as Record<string, unknown>;
}
