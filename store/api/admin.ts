/** Leases, membership and leadership routes of the store API. */
import { randomInt } from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import { readJson, type JsonReply, type RouteContext, type Router } from '../../lib/http.js';
import type { KvResult } from '../kv/index.js';
import type { MemberAddress } from '../node/config.js';
import type { StoreNode } from '../node/node.js';
import { kvFailureToError } from './errors.js';
import { checkBody, leaseGrantBody, memberAddBody, transferBody } from './schemas.js';
import { parseRequestId } from './server.js';

export interface AdminDeps {
  readonly node: StoreNode;
  /** Runs the handler on the leader, forwarding the request when this node is not it. */
  readonly onLeader: (ctx: RouteContext, body: unknown, run: () => Promise<Record<string, unknown>>) => Promise<Record<string, unknown>>;
}

function ok(body: unknown): JsonReply {
  return { status: 200, body };
}

function leaseIdParam(ctx: RouteContext): number {
  const text = ctx.params['id'] ?? '';
  const id = Number(text);
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(id) || id < 1) throw new AppError('invalid_lease_id', 400, 'a lease id is a positive integer');
  return id;
}

function unwrap(r: KvResult): Record<string, unknown> {
  if (!r.ok) throw kvFailureToError(r);
  return r as unknown as Record<string, unknown>;
}

export function addAdminRoutes(r: Router, { node, onLeader }: AdminDeps): void {
  const maxBody = node.cfg.maxBodyBytes;

  r.on('GET', '/v1/leases', () => ok({ leases: node.kvState.leases().map((l) => ({ ...l, remainingMs: node.leases.remainingMs(l.id) ?? null })) }));

  r.on('POST', '/v1/leases', async (ctx) => {
    const body = checkBody<{ ttlMs: number; id?: number }>(leaseGrantBody, await readJson(ctx.req, maxBody));
    // The id is chosen here, before proposing, so a forwarded retry keeps it.
    const withId = { ...body, id: body.id ?? randomInt(1, 2 ** 47) };
    // A retry with the same Request-Id (maybe via another node, with another id) is answered from the session.
    const requestId = parseRequestId(ctx.req.headers['request-id']);
    return ok(
      await onLeader(ctx, withId, async () => {
        const res = unwrap(await node.write({ type: 'leaseGrant', id: withId.id, ttlMs: withId.ttlMs, nowMs: Date.now(), ...(requestId ? { requestId } : {}) }));
        return { id: res['id'], ttlMs: res['ttlMs'] };
      }),
    );
  });

  r.on('POST', '/v1/leases/:id/keepalive', async (ctx) => {
    const id = leaseIdParam(ctx);
    return ok(await onLeader(ctx, undefined, async () => node.leases.keepAlive(id)));
  });

  r.on('DELETE', '/v1/leases/:id', async (ctx) => {
    const id = leaseIdParam(ctx);
    const requestId = parseRequestId(ctx.req.headers['request-id']);
    return ok(
      await onLeader(ctx, undefined, async () => {
        const res = unwrap(await node.write({ type: 'leaseRevoke', id, nowMs: Date.now(), ...(requestId ? { requestId } : {}) }));
        return { revoked: true, id, revision: res['revision'] };
      }),
    );
  });

  r.on('GET', '/v1/members', () => {
    const st = node.raftStatus();
    const members = node.memberList().map((m) => ({ ...m, role: st.conf.learners.includes(m.id) ? 'learner' : 'voter', leader: m.id === st.leaderId }));
    return ok({ members });
  });

  r.on('POST', '/v1/members', async (ctx) => {
    const body = checkBody<MemberAddress & { learner?: boolean }>(memberAddBody, await readJson(ctx.req, maxBody));
    const member: MemberAddress = { id: body.id, clientUrl: body.clientUrl, peerAddress: body.peerAddress };
    if (!/^[^:]+:\d+$/.test(member.peerAddress)) throw new AppError('invalid_request', 400, 'peerAddress must be host:port');
    return ok(
      await onLeader(ctx, body, async () => {
        await node.changeMembership({ op: body.learner === false ? 'addVoter' : 'addLearner', id: member.id, context: JSON.stringify(member) });
        return { added: member, learner: body.learner !== false };
      }),
    );
  });

  r.on('POST', '/v1/members/:id/promote', async (ctx) => {
    const id = ctx.params['id'] as string;
    return ok(
      await onLeader(ctx, undefined, async () => {
        const member = node.memberList().find((m) => m.id === id);
        if (!member) throw new AppError('member_not_found', 404, `no member ${id}`);
        await node.changeMembership({ op: 'addVoter', id, context: JSON.stringify(member) });
        return { promoted: id };
      }),
    );
  });

  r.on('DELETE', '/v1/members/:id', async (ctx) => {
    const id = ctx.params['id'] as string;
    return ok(
      await onLeader(ctx, undefined, async () => {
        if (!node.memberList().some((m) => m.id === id)) throw new AppError('member_not_found', 404, `no member ${id}`);
        await node.changeMembership({ op: 'remove', id });
        return { removed: id };
      }),
    );
  });

  r.on('POST', '/v1/leader/transfer', async (ctx) => {
    const body = checkBody<{ to: string }>(transferBody, await readJson(ctx.req, maxBody));
    return ok(await onLeader(ctx, body, async () => ({ leaderId: await node.transferLeadership(body.to) })));
  });
}
