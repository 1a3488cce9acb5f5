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
import type { Router } from '../../lib/http.js';
import { SNAPSHOT_ROUTE_PREFIX } from '../node/snapshot-pull.js';
import { ok, type ApiNode } from './common.js';

export function addSnapshotRoutes(r: Router, node: ApiNode): void {
  const gone = (id: string): AppError => new AppError('snapshot_offer_not_found', 404, `no snapshot offer ${id} on this node (expired)`);
  r.on('GET', `${SNAPSHOT_ROUTE_PREFIX}/:id/header`, (req) => {
    const id = req.params['id'] as string;
    const header = node.snapshotOffers?.header(id);
    if (header === undefined) throw gone(id);
    return ok({ ...header });
  });
  r.on('GET', `${SNAPSHOT_ROUTE_PREFIX}/:id/history`, (req) => {
    const id = req.params['id'] as string;
    const from = Number(req.query.get('from') ?? '0');
    if (!Number.isSafeInteger(from) || from < 0) throw new AppError('invalid_request', 400, 'from must be a position, a non-negative integer');
    const page = node.snapshotOffers?.historyPage(id, from);
    if (page === undefined) throw gone(id);
    return ok({ ...page });
  });
  r.on('GET', `${SNAPSHOT_ROUTE_PREFIX}/:id/keys`, (req) => {
    const id = req.params['id'] as string;
    const after = req.query.get('after') ?? undefined;
    const page = node.snapshotOffers?.page(id, after);
    if (page === undefined) throw gone(id);
    return ok({ ...page });
  });
}
