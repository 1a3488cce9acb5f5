/**
 * Who may call what, when auth is enabled (store/kv/auth.ts has the table).
 * Off, every check passes (etcd's default). On:
 * - every route has a policy (ROUTE_POLICIES); a route not listed is root
 *   only, so a new route is closed until someone opens it on purpose;
 * - `AuthRouter` checks the policy before the handler: a missing or bad
 *   token is 401 `unauthenticated`, an expired or revoked one 401
 *   `token_expired`, a non-root caller on a root route 403
 *   `permission_denied`;
 * - key routes (`kv`) then check each command's keys with
 *   `authorizeCommand`, the one function every read and write route calls
 *   (and the batch route, per item), before anything is proposed.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { Router, type Handler, type PlainRequest, type Reply, type RouteContext, type RouteOptions } from '../../lib/http.js';
import { commandNeeds, deniedBy } from '../kv/auth-needs.js';
import type { KvStateMachine } from '../kv/index.js';
import { readToken } from './auth-token.js';

/**
 * - `public`: anyone (liveness, status, metrics, the API document, the member
 *   list, authenticate, auth status: what etcd serves without auth);
 * - `user`: any authenticated user (leases, like etcd);
 * - `kv`: an authenticated user, then the handler checks the keys;
 * - `peer`: root, or the snapshot offer's key (the handler checks);
 * - `root`: the root role (membership, leadership, alarms, auth management, faults).
 */
export type RoutePolicy = 'public' | 'user' | 'kv' | 'peer' | 'root';

export const ROUTE_POLICIES: Readonly<Record<string, RoutePolicy>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /openapi.json': 'public',
  'GET /v1/status': 'public',
  'GET /v1/members': 'public',
  'POST /v1/auth/authenticate': 'public',
  'GET /v1/auth/status': 'public',
  'GET /v1/kv': 'kv',
  'GET /v1/kv/*key': 'kv',
  'PUT /v1/kv/*key': 'kv',
  'POST /v1/kv/*path': 'kv',
  'DELETE /v1/kv/*key': 'kv',
  'POST /v1/txn': 'kv',
  'POST /v1/batch': 'kv',
  'GET /v1/watch': 'kv',
  'GET /v1/leases': 'user',
  'POST /v1/leases': 'user',
  'POST /v1/leases/:id/keepalive': 'user',
  'DELETE /v1/leases/:id': 'kv',
  'GET /internal/v1/snapshots/:id/header': 'peer',
  'GET /internal/v1/snapshots/:id/history': 'peer',
  'GET /internal/v1/snapshots/:id/keys': 'peer',
};

export function policyOf(method: string, pattern: string): RoutePolicy {
  return ROUTE_POLICIES[`${method} ${pattern}`] ?? 'root';
}

/** What the checks read: the replicated auth table and the wall clock (token expiry). */
export interface AuthDeps {
  readonly node: { readonly kvState: Pick<KvStateMachine, 'auth' | 'leaseKeys'>; linearizableBarrier(): Promise<void> };
  readonly clock: Clock;
}

/**
 * Runs `check`; when it refuses (401, 403), waits until this member has
 * applied everything committed (a ReadIndex round) and checks once more: a
 * follower that has not yet applied a new user, role or permission does not
 * refuse what the leader already allows. A stale table never lets more
 * through: writes are checked again on the leader, reads after their barrier.
 */
export async function checkFresh(deps: AuthDeps, check: () => void): Promise<void> {
  try {
    check();
  } catch (e) {
    // Only what a newer table could change: a missing permission, a signed token naming a user or revision this
    // member has not applied yet. A missing, garbage or expired token is refused at once (no round per refusal).
    const reason = e instanceof AppError ? e.details['reason'] : undefined;
    if (!(e instanceof AppError) || (e.status !== 403 && reason !== 'revoked' && reason !== 'unknown_user')) throw e;
    try {
      await deps.node.linearizableBarrier();
    } catch {
      throw e;
    }
    check();
  }
}

export interface Caller {
  readonly user: string;
  readonly root: boolean;
}

const BEARER = /^Bearer ([!-~]{1,2048})$/;

/** The authenticated caller; undefined when auth is off; 401 when on and the token is missing or bad. */
export function callerOf(deps: AuthDeps, req: PlainRequest): Caller | undefined {
  const auth = deps.node.kvState.auth;
  if (!auth.enabled) return undefined;
  const header = req.headers['authorization'];
  const m = header === undefined ? null : BEARER.exec(header);
  if (m === null) throw new AppError('unauthenticated', 401, 'auth is enabled: send Authorization: Bearer <token> (POST /v1/auth/authenticate gives one)');
  const token = readToken(auth.secret, m[1] as string);
  const user = token === undefined ? undefined : auth.user(token.user);
  if (token === undefined) throw new AppError('unauthenticated', 401, 'the token is not valid on this cluster');
  if (user === undefined) throw new AppError('unauthenticated', 401, 'the token names no user of this cluster', { reason: 'unknown_user' });
  if (token.revision !== user.revision) throw new AppError('token_expired', 401, "the token was revoked (the user's password or roles changed): authenticate again", { reason: 'revoked' });
  if (token.expiresAtMs <= deps.clock.nowMs()) throw new AppError('token_expired', 401, 'the token expired: authenticate again', { reason: 'expired' });
  return { user: user.name, root: auth.isRoot(user.name) };
}

function denied(caller: Caller, what: string): AppError {
  return new AppError('permission_denied', 403, `user ${caller.user} may not ${what}`, { user: caller.user });
}

/** 401/403 unless auth is off or the caller has the root role. */
export function requireRoot(deps: AuthDeps, req: PlainRequest): void {
  const caller = callerOf(deps, req);
  if (caller !== undefined && !caller.root) throw denied(caller, 'do this (root only)');
}

/**
 * 401/403 unless the caller may run `cmd` (a KV command as the routes build
 * it: get, range, put, cas, delete, txn, leaseGrant, leaseRevoke; anything
 * else needs root). Checks every key it touches: compares and gets need
 * read, ranges read on the whole prefix, puts and deletes read and write.
 */
export function authorizeCommand(deps: AuthDeps, req: PlainRequest, cmd: unknown): void {
  const caller = callerOf(deps, req);
  if (caller === undefined || caller.root) return;
  const kv = deps.node.kvState;
  const refused = deniedBy(kv.auth, caller.user, commandNeeds(cmd, (id) => kv.leaseKeys(id)));
  if (refused !== undefined) throw denied(caller, refused);
}

/**
 * A write as the leader proposes it: checked again now, synchronously with
 * the stamp (the table cannot move in between), and stamped with the time
 * and, with auth on, the caller and the table revision it was checked at, so
 * the apply checks again if the table moved. Every write route uses it
 * (kv.ts, batch.ts).
 */
export function stampWrite<C extends object>(deps: AuthDeps, req: PlainRequest, cmd: C, requestId: unknown): C {
  authorizeCommand(deps, req, cmd);
  const caller = callerOf(deps, req);
  const nowMs = deps.clock.nowMs();
  const stamp = caller === undefined ? { nowMs } : { nowMs, caller: { user: caller.user, authRevision: deps.node.kvState.auth.revision } };
  return requestId === undefined ? { ...cmd, ...stamp } : { ...cmd, requestId, ...stamp };
}

/** A watch: read on the key, or on the whole prefix. */
export function authorizeWatch(deps: AuthDeps, req: PlainRequest, query: URLSearchParams): void {
  const key = query.get('key');
  authorizeCommand(deps, req, key !== null ? { type: 'get', key } : { type: 'range', prefix: query.get('prefix') ?? '' });
}

/** A snapshot stream's page: root, or the offer's key (`x-snapshot-key`), which only the Raft message carried. */
export function authorizePeer(deps: AuthDeps, req: PlainRequest, offerKey: string | undefined): void {
  if (!deps.node.kvState.auth.enabled) return;
  const given = req.headers['x-snapshot-key'];
  if (given !== undefined && offerKey !== undefined && given.length === offerKey.length && timingSafeEqual(Buffer.from(given), Buffer.from(offerKey))) return;
  requireRoot(deps, req);
}

/**
 * A Router that checks each route's policy before its handler. Build it with
 * the deps the checks read; every route module registers through it as it
 * would through a plain Router.
 */
export class AuthRouter extends Router {
  constructor(
    opts: { readonly maxBodyBytes?: number },
    private readonly deps: AuthDeps,
  ) {
    super(opts);
  }

  override on(method: string, pattern: string, handler: Handler, options: RouteOptions = {}): this {
    const policy = policyOf(method, `/${pattern.split('/').filter((p) => p !== '').join('/')}`);
    const deps = this.deps;
    const guarded = async (req: RouteContext): Promise<Reply> => {
      await checkFresh(deps, () => (policy === 'root' ? requireRoot(deps, req) : callerOf(deps, req)));
      return handler(req);
    };
    return super.on(method, pattern, policy === 'public' || policy === 'peer' ? handler : guarded, options);
  }
}
