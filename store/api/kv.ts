/** Key-value routes of the store API: reads, writes (put, CAS, delete) and txn. */
import { AppError } from '../../lib/errors.js';
import type { RouteContext, Router } from '../../lib/http.js';
import type { KvWriteCommand } from '../kv/index.js';
import { checkCommand } from '../kv/validate.js';
import { authorizeCommand, checkFresh, stampWrite } from './auth-check.js';
import { kvFailureToError } from './errors.js';
import { ok, parseRequestId, unwrap, type RouteDeps } from './common.js';
import { casBody, checkBody, putBody, txnBody } from './schemas.js';

const CAS_SUFFIX = '/cas';

/** `?consistency=`: linearizable (the default) waits for a ReadIndex round; serializable reads the local replica. */
async function barrier({ node }: RouteDeps, req: RouteContext): Promise<void> {
  const consistency = req.query.get('consistency') ?? 'linearizable';
  if (consistency === 'serializable') return;
  if (consistency !== 'linearizable') throw new AppError('invalid_request', 400, 'consistency must be linearizable or serializable');
  await node.linearizableBarrier();
}

/** A KV write: checked here (bad input never reaches the log, nor a write the caller may not make), then stamped and proposed on the leader. */
async function write(deps: RouteDeps, req: RouteContext, cmd: KvWriteCommand, body: unknown): Promise<Record<string, unknown>> {
  const { node, onLeader } = deps;
  const requestId = parseRequestId(req.headers['request-id']);
  const checked = checkCommand(cmd, node.kvState.config);
  if ('ok' in checked && checked.ok === false) throw kvFailureToError(checked);
  await checkFresh(deps, () => authorizeCommand(deps, req, cmd));
  return onLeader(req, body, async () => unwrap(await node.write(stampWrite(deps, req, cmd, requestId))));
}

export function addKvReadRoutes(r: Router, deps: RouteDeps): void {
  const { node } = deps;
  r.on('GET', '/v1/kv', async (req) => {
    const prefix = req.query.get('prefix') ?? '';
    const limitText = req.query.get('limit');
    const after = req.query.get('after');
    let limit: number | undefined;
    if (limitText !== null) {
      limit = Number(limitText);
      if (!/^\d+$/.test(limitText) || limit < 1) throw new AppError('invalid_request', 400, 'limit must be a positive integer');
    }
    // After the barrier: a linearizable read meets the auth table as of the read (a revoked permission is revoked).
    await barrier(deps, req);
    authorizeCommand(deps, req, { type: 'range', prefix });
    const query = { prefix, ...(limit === undefined ? {} : { limit }), ...(after === null ? {} : { after }) };
    const res = unwrap(node.kvState.range(query));
    return ok({ kvs: res['kvs'], more: res['more'], revision: res['revision'] });
  });

  r.on('GET', '/v1/kv/*key', async (req) => {
    const key = req.params['key'] as string;
    await barrier(deps, req);
    authorizeCommand(deps, req, { type: 'get', key });
    const kv = unwrap(node.kvState.get(key))['kv'];
    if (kv === null) throw new AppError('key_not_found', 404, `key ${JSON.stringify(key)} not found`, { key });
    return ok(kv);
  });
}

export function addKvWriteRoutes(r: Router, deps: RouteDeps): void {
  r.on(
    'PUT',
    '/v1/kv/*key',
    async (req) => {
      const body = checkBody<{ value: string; lease?: number }>(putBody, req.body);
      const key = req.params['key'] as string;
      const cmd: KvWriteCommand = body.lease === undefined ? { type: 'put', key, value: body.value } : { type: 'put', key, value: body.value, lease: body.lease };
      const res = await write(deps, req, cmd, body);
      return ok({ revision: res['revision'], previous: res['previous'] ?? null });
    },
    { body: true },
  );

  // The path is checked before the body is read: POST on a plain key is a 404 whatever it carries.
  const casGuard = (params: Readonly<Record<string, string>>): void => {
    const path = params['path'] as string;
    if (!path.endsWith(CAS_SUFFIX) || path.length <= CAS_SUFFIX.length) throw new AppError('not_found', 404, 'POST on a key must be /v1/kv/{key}/cas');
  };
  r.on(
    'POST',
    '/v1/kv/*path',
    async (req) => {
      const key = (req.params['path'] as string).slice(0, -CAS_SUFFIX.length);
      const body = checkBody<{ expected: string | null; value: string; lease?: number }>(casBody, req.body);
      const base = { type: 'cas' as const, key, expected: body.expected, value: body.value };
      const res = await write(deps, req, body.lease === undefined ? base : { ...base, lease: body.lease }, body);
      return ok({ succeeded: res['succeeded'], previous: res['previous'] ?? null, revision: res['revision'] });
    },
    { body: true, guard: casGuard },
  );

  r.on('DELETE', '/v1/kv/*key', async (req) => {
    const res = await write(deps, req, { type: 'delete', key: req.params['key'] as string }, undefined);
    return ok({ deleted: res['deleted'], previous: res['previous'] ?? null, revision: res['revision'] });
  });

  r.on(
    'POST',
    '/v1/txn',
    async (req) => {
      const body = checkBody<{ compare?: unknown[]; success?: unknown[]; failure?: unknown[] }>(txnBody, req.body);
      const cmd = { type: 'txn', compare: body.compare ?? [], success: body.success ?? [], failure: body.failure ?? [] } as unknown as KvWriteCommand;
      const res = await write(deps, req, cmd, body);
      return ok({ succeeded: res['succeeded'], revision: res['revision'], results: res['results'] });
    },
    { body: true },
  );
}
