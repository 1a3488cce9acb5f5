/**
 * `POST /v1/batch`: many independent writes (put, CAS, delete, txn) in one
 * request. Each is its own Raft entry with its own result, exactly as if it
 * had come alone; they share the HTTP round, the forwarding hop and the log
 * batch (one append, one fsync), which is what a busy coordinator or
 * participant needs: the writes of many transactions at the cost of one
 * request (issue 17, "batch across transactions").
 *
 * Every item is checked before any is proposed: one bad item refuses the
 * whole batch with 400 and nothing is written. After that the items are
 * independent: one may fail (a full store, a lost leader) while another
 * commits, and each answer says which. Each item carries its own Request-Id,
 * so a client that retries the batch, or the items whose answer it did not
 * get, applies each at most once.
 */
import { AppError } from '../../lib/errors.js';
import type { RouteContext, Router } from '../../lib/http.js';
import type { KvWriteCommand, RequestId } from '../kv/index.js';
import { checkCommand } from '../kv/validate.js';
import { authorizeCommand, stampWrite } from './auth-check.js';
import { kvFailureToError } from './errors.js';
import { ok, parseRequestId, unwrap, type RouteDeps } from './common.js';
import { batchBody, checkBody } from './schemas.js';

/** Items in one batch at most (also in the schema): a bound on one request's work and answer. */
export const MAX_BATCH_ITEMS = 256;

type BatchItem =
  | { type: 'put'; requestId?: string; key: string; value: string; lease?: number }
  | { type: 'cas'; requestId?: string; key: string; expected: string | null; value: string; lease?: number }
  | { type: 'delete'; requestId?: string; key: string }
  | { type: 'txn'; requestId?: string; compare?: unknown[]; success?: unknown[]; failure?: unknown[] };

/** The fields each write answers with, as the single-write routes (kv.ts) answer them. */
const ANSWER_FIELDS: Readonly<Record<BatchItem['type'], readonly string[]>> = {
  put: ['revision', 'previous'],
  cas: ['succeeded', 'previous', 'revision'],
  delete: ['deleted', 'previous', 'revision'],
  txn: ['succeeded', 'revision', 'results'],
};

function toCommand(item: BatchItem): KvWriteCommand {
  const lease = 'lease' in item && item.lease !== undefined ? { lease: item.lease } : {};
  switch (item.type) {
    case 'put':
      return { type: 'put', key: item.key, value: item.value, ...lease };
    case 'cas':
      return { type: 'cas', key: item.key, expected: item.expected, value: item.value, ...lease };
    case 'delete':
      return { type: 'delete', key: item.key };
    case 'txn':
      return { type: 'txn', compare: item.compare ?? [], success: item.success ?? [], failure: item.failure ?? [] } as unknown as KvWriteCommand;
  }
}

/** Checks every item (bad input never reaches the log): the commands and their Request-Ids, or a 400 naming the item. */
function checkItems(deps: RouteDeps, items: readonly BatchItem[]): { cmd: KvWriteCommand; requestId: RequestId | undefined }[] {
  const seen = new Set<string>();
  return items.map((item, index) =>
    forItem(index, () => {
      const cmd = toCommand(item);
      const checked = checkCommand(cmd, deps.node.kvState.config);
      if ('ok' in checked && checked.ok === false) throw kvFailureToError(checked);
      const requestId = parseRequestId(item.requestId);
      if (item.requestId !== undefined && seen.has(item.requestId)) throw new AppError('duplicate_request_id', 400, 'two items carry the same requestId');
      if (item.requestId !== undefined) seen.add(item.requestId);
      return { cmd, requestId };
    }),
  );
}

function answer(type: BatchItem['type'], result: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of ANSWER_FIELDS[type]) out[f] = result[f] ?? null;
  return out;
}

function failure(e: unknown): { error: Record<string, unknown> } {
  if (e instanceof AppError) return { error: { code: e.code, status: e.status, message: e.message, ...e.details } };
  // Not a typed failure: say nothing internal, as every other route does (lib/http.ts errorReply).
  return { error: { code: 'internal', status: 500, message: 'internal error' } };
}

/** Runs `f` for item `index`; a refusal names the item (`details.item`). */
function forItem<T>(index: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AppError) throw new AppError(e.code, e.status, `item ${index}: ${e.message}`, { ...e.details, item: index });
    throw e;
  }
}

function authorizeItem(deps: RouteDeps, req: RouteContext, cmd: KvWriteCommand, index: number): void {
  forItem(index, () => authorizeCommand(deps, req, cmd));
}

function stampItem(deps: RouteDeps, req: RouteContext, cmd: KvWriteCommand, requestId: RequestId | undefined, index: number): KvWriteCommand {
  return forItem(index, () => stampWrite(deps, req, cmd, requestId));
}

export function addBatchRoutes(r: Router, deps: RouteDeps): void {
  r.on(
    'POST',
    '/v1/batch',
    async (req) => {
      const body = checkBody<{ items: BatchItem[] }>(batchBody, req.body);
      const checked = checkItems(deps, body.items);
      // With auth on, every item's keys are checked before any is proposed (auth-check.ts): one refused item refuses the batch.
      checked.forEach(({ cmd }, index) => authorizeItem(deps, req, cmd, index));
      const res = await deps.onLeader(req, body, async () => {
        // Stamped (and checked again) each as a single write is; proposed in one event-loop turn: one log batch, one fsync.
        const stamped = checked.map(({ cmd, requestId }, index) => stampItem(deps, req, cmd, requestId, index));
        const settled = await Promise.allSettled(stamped.map((cmd) => deps.node.write(cmd)));
        const results = settled.map((s, i) => {
          if (s.status === 'rejected') return failure(s.reason);
          try {
            return answer(body.items[i]!.type, unwrap(s.value));
          } catch (e) {
            return failure(e);
          }
        });
        return { results };
      });
      return ok({ results: res['results'] });
    },
    { body: true },
  );
}
