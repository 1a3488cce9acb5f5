/**
 * The store's public HTTP/JSON API (../shared/DESIGN.md, "The store
 * contract"). Every node serves every call: writes on a follower are
 * forwarded to the leader; linearizable reads are served locally after a
 * ReadIndex round; during an election the answer is 503 no_leader.
 */
import http from 'node:http';
import { AppError } from '../../lib/errors.js';
import { HttpClient, type HttpResponse } from '../../lib/http-client.js';
import { Router, readJson, requestUrl, type JsonReply, type RouteContext } from '../../lib/http.js';
import type { KvResult, KvWriteCommand, RequestId } from '../kv/index.js';
import { checkCommand } from '../kv/validate.js';
import { NoLeaderError, type StoreNode } from '../node/node.js';
import { kvFailureToError } from './errors.js';
import { casBody, checkBody, putBody, txnBody } from './schemas.js';
import { renderMetrics } from './metrics.js';
import { WatchHub } from './watch.js';
import { addAdminRoutes } from './admin.js';
import { faultInjectionEnabled } from '../../lib/faults.js';
import { addFaultRoutes } from './faults.js';

const FORWARDED_HEADER = 'x-forwarded-by';
/** Forwarded writes give up after this long; the client may retry with the same Request-Id. */
const FORWARD_TIMEOUT_MS = 10_000;

export function parseRequestId(header: string | string[] | undefined): RequestId | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  const m = /^([^:\s]{1,128}):(\d{1,15})$/.exec(text ?? '');
  const seq = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(seq) || seq < 1) {
    throw new AppError('invalid_request_id', 400, 'Request-Id must be <clientId>:<sequence> with a positive sequence');
  }
  return { clientId: m[1] as string, seq };
}

function ok(body: unknown): JsonReply {
  return { status: 200, body };
}

function unwrap(result: KvResult): Record<string, unknown> {
  if (!result.ok) throw kvFailureToError(result);
  return result as unknown as Record<string, unknown>;
}

/**
 * `leaderClient` carries follower-to-leader forwards over keep-alive
 * connections (lib/http-client.ts says why not fetch); its owner closes it.
 */
export function createStoreRouter(node: StoreNode, leaderClient: HttpClient): Router {
  const maxBody = node.cfg.maxBodyBytes;

  /** Runs `run` on the leader, forwarding the request there when this node is not the leader. */
  async function onLeader(ctx: RouteContext, body: unknown, run: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
    return node.isLeader() ? run() : forward(ctx, body);
  }

  /** A KV write: checked here (bad input never reaches the log), then proposed on the leader. */
  async function write(ctx: RouteContext, cmd: KvWriteCommand, body: unknown): Promise<Record<string, unknown>> {
    const requestId = parseRequestId(ctx.req.headers['request-id']);
    const checked = checkCommand(cmd, node.kvState.config);
    if ('ok' in checked && checked.ok === false) throw kvFailureToError(checked);
    return onLeader(ctx, body, async () => {
      const stamped: KvWriteCommand = requestId ? { ...cmd, requestId, nowMs: Date.now() } : { ...cmd, nowMs: Date.now() };
      return unwrap(await node.write(stamped));
    });
  }

  async function forward(ctx: RouteContext, body: unknown): Promise<Record<string, unknown>> {
    const leader = node.leader();
    // One hop only: a node that was told it is leader but is not, answers no_leader. The header
    // counts only when it names another member (a client that sends one is not a forwarding node).
    const forwardedBy = ctx.req.headers[FORWARDED_HEADER];
    const forwarded = typeof forwardedBy === 'string' && forwardedBy !== node.cfg.id && node.memberList().some((m) => m.id === forwardedBy);
    if (!leader || leader.id === node.cfg.id || forwarded) throw new NoLeaderError();
    const headers: Record<string, string> = { 'content-type': 'application/json', [FORWARDED_HEADER]: node.cfg.id };
    const rid = ctx.req.headers['request-id'];
    if (typeof rid === 'string') headers['request-id'] = rid;
    // Only the path and query go to the leader: the client's request target never picks the host.
    const target = requestUrl(ctx.req);
    let res: HttpResponse;
    try {
      res = await leaderClient.request({
        method: ctx.req.method ?? 'POST',
        url: `${leader.clientUrl}${target.pathname}${target.search}`,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        timeoutMs: FORWARD_TIMEOUT_MS,
      });
    } catch (e) {
      throw new AppError('no_leader', 503, `the leader ${leader.id} did not answer: ${String(e)}`, { retryAfterSeconds: 1 });
    }
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(res.text) as Record<string, unknown>;
    } catch {
      throw new AppError('no_leader', 503, `the leader ${leader.id} sent a non-JSON answer (${res.status})`, { retryAfterSeconds: 1 });
    }
    if (res.status >= 400) {
      const err = (payload['error'] ?? {}) as Record<string, unknown>;
      const { code, message, ...details } = err;
      throw new AppError(String(code ?? 'upstream_error'), res.status, String(message ?? 'leader error'), details);
    }
    return payload;
  }

  async function barrier(ctx: RouteContext): Promise<void> {
    const consistency = ctx.query.get('consistency') ?? 'linearizable';
    if (consistency === 'serializable') return;
    if (consistency !== 'linearizable') throw new AppError('invalid_request', 400, 'consistency must be linearizable or serializable');
    await node.linearizableBarrier();
  }

  const r = new Router();
  r.on('GET', '/healthz', () => ok({ ok: true, id: node.cfg.id }));
  r.on('GET', '/metrics', ({ res }) => {
    const text = renderMetrics(node);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(text);
    return undefined;
  });
  r.on('GET', '/v1/status', () => {
    const st = node.raftStatus();
    return ok({
      id: st.id,
      pid: process.pid,
      role: st.role,
      term: st.term,
      leaderId: st.leaderId === '' ? null : st.leaderId,
      commitIndex: st.commitIndex,
      appliedIndex: node.applied,
      revision: node.kvState.revision,
      members: node.memberList().map((m) => ({ ...m, learner: st.conf.learners.includes(m.id) })),
    });
  });

  r.on('GET', '/v1/kv', async (ctx) => {
    const prefix = ctx.query.get('prefix') ?? '';
    const limitText = ctx.query.get('limit');
    const after = ctx.query.get('after');
    let limit: number | undefined;
    if (limitText !== null) {
      limit = Number(limitText);
      if (!/^\d+$/.test(limitText) || limit < 1) throw new AppError('invalid_request', 400, 'limit must be a positive integer');
    }
    await barrier(ctx);
    const query = { prefix, ...(limit === undefined ? {} : { limit }), ...(after === null ? {} : { after }) };
    const res = unwrap(node.kvState.range(query));
    return ok({ kvs: res['kvs'], more: res['more'], revision: res['revision'] });
  });

  r.on('GET', '/v1/kv/*key', async (ctx) => {
    const key = ctx.params['key'] as string;
    await barrier(ctx);
    const res = unwrap(node.kvState.get(key));
    const kv = res['kv'];
    if (kv === null) throw new AppError('key_not_found', 404, `key ${JSON.stringify(key)} not found`, { key });
    return ok(kv);
  });

  r.on('PUT', '/v1/kv/*key', async (ctx) => {
    const body = checkBody<{ value: string; lease?: number }>(putBody, await readJson(ctx.req, maxBody));
    const key = ctx.params['key'] as string;
    const cmd: KvWriteCommand = body.lease === undefined ? { type: 'put', key, value: body.value } : { type: 'put', key, value: body.value, lease: body.lease };
    const res = await write(ctx, cmd, body);
    return ok({ revision: res['revision'], previous: res['previous'] ?? null });
  });

  r.on('POST', '/v1/kv/*path', async (ctx) => {
    const path = ctx.params['path'] as string;
    if (!path.endsWith('/cas') || path.length <= 4) throw new AppError('not_found', 404, 'POST on a key must be /v1/kv/{key}/cas');
    const key = path.slice(0, -4);
    const body = checkBody<{ expected: string | null; value: string; lease?: number }>(casBody, await readJson(ctx.req, maxBody));
    const base = { type: 'cas' as const, key, expected: body.expected, value: body.value };
    const res = await write(ctx, body.lease === undefined ? base : { ...base, lease: body.lease }, body);
    return ok({ succeeded: res['succeeded'], previous: res['previous'] ?? null, revision: res['revision'] });
  });

  r.on('DELETE', '/v1/kv/*key', async (ctx) => {
    const key = ctx.params['key'] as string;
    const res = await write(ctx, { type: 'delete', key }, undefined);
    return ok({ deleted: res['deleted'], previous: res['previous'] ?? null, revision: res['revision'] });
  });

  r.on('POST', '/v1/txn', async (ctx) => {
    const body = checkBody<{ compare?: unknown[]; success?: unknown[]; failure?: unknown[] }>(txnBody, await readJson(ctx.req, maxBody));
    const cmd = { type: 'txn', compare: body.compare ?? [], success: body.success ?? [], failure: body.failure ?? [] } as unknown as KvWriteCommand;
    const res = await write(ctx, cmd, body);
    return ok({ succeeded: res['succeeded'], revision: res['revision'], results: res['results'] });
  });

  const hub = new WatchHub(node);
  node.onApplied = (_index, events) => {
    if (events) hub.pump();
  };
  r.on('GET', '/v1/watch', hub.handle);
  addAdminRoutes(r, { node, onLeader });
  if (faultInjectionEnabled()) addFaultRoutes(r, node);
  return r;
}

export async function listenStoreApi(node: StoreNode, host: string, port: number): Promise<http.Server> {
  const leaderClient = new HttpClient({ requestTimeoutMs: FORWARD_TIMEOUT_MS });
  const router = createStoreRouter(node, leaderClient);
  const server = http.createServer({ keepAliveTimeout: 30_000 }, router.handle);
  server.once('close', () => leaderClient.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
