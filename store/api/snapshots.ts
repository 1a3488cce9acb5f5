/**
 * Snapshot streams over HTTP (store/node/snapshot-offers.ts): a follower the
 * leader sent a snapshot message pulls the offered state from here, page by
 * page; each page is bounded by the offer's limits.
 *   GET /internal/v1/snapshots/:id/header              the state besides the keys, and its applied index
 *   GET /internal/v1/snapshots/:id/keys?after=KEY      the next page of keys, in key order
 *   GET /internal/v1/snapshots/:id/history?from=N      the watch history's events from position N
 * 404 snapshot_offer_not_found once the offer expired (unused for its idle time).
 */
import { AppError } from '../../lib/errors.js';
import type { RouteContext, Router } from '../../lib/http.js';
import { SNAPSHOT_ROUTE_PREFIX } from '../node/snapshot-pull.js';
import { authorizePeer } from './auth-check.js';
import { ok, type RouteDeps } from './common.js';

/**
 * With auth on, a page needs the root role or the offer's key (`x-snapshot-key`): the key travels only in
 * the leader's Raft snapshot message, so the follower that was offered the state has it and nobody else.
 */
export function addSnapshotRoutes(r: Router, deps: RouteDeps): void {
  const { node } = deps;
  const gone = (id: string): AppError => new AppError('snapshot_offer_not_found', 404, `no snapshot offer ${id} on this node (expired)`);
  const offerId = (req: RouteContext): string => {
    const id = req.params['id'] as string;
    authorizePeer(deps, req, node.snapshotOffers?.keyOf(id));
    return id;
  };
  r.on('GET', `${SNAPSHOT_ROUTE_PREFIX}/:id/header`, (req) => {
    const id = offerId(req);
    const header = node.snapshotOffers?.header(id);
    if (header === undefined) throw gone(id);
    return ok({ ...header });
  });
  r.on('GET', `${SNAPSHOT_ROUTE_PREFIX}/:id/history`, (req) => {
    const id = offerId(req);
    const from = Number(req.query.get('from') ?? '0');
    if (!Number.isSafeInteger(from) || from < 0) throw new AppError('invalid_request', 400, 'from must be a position, a non-negative integer');
    const page = node.snapshotOffers?.historyPage(id, from);
    if (page === undefined) throw gone(id);
    return ok({ ...page });
  });
  r.on('GET', `${SNAPSHOT_ROUTE_PREFIX}/:id/keys`, (req) => {
    const id = offerId(req);
    const after = req.query.get('after') ?? undefined;
    const page = node.snapshotOffers?.page(id, after);
    if (page === undefined) throw gone(id);
    return ok({ ...page });
  });
}
