/** Leases, membership and leadership routes of the store API. */
import { AppError } from '../../lib/errors.js';
import type { RouteContext, Router } from '../../lib/http.js';
import type { Random } from '../../lib/random.js';
import type { MemberAddress } from '../node/config.js';
import { authorizeCommand, callerOf } from './auth-check.js';
import { ok, parseRequestId, unwrap, type RouteDeps } from './common.js';
import { checkBody, leaseGrantBody, memberAddBody, transferBody } from './schemas.js';

/** Lease ids are drawn from [1, 2^47): positive, safe integers, and 0 means "no lease". */
const LEASE_ID_LIMIT = 2 ** 47;

function leaseIdParam(req: RouteContext): number {
  const text = req.params['id'] ?? '';
  const id = Number(text);
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(id) || id < 1) throw new AppError('invalid_lease_id', 400, 'a lease id is a positive integer');
  return id;
}

function newLeaseId(random: Random): number {
  return 1 + random.int(LEASE_ID_LIMIT - 1);
}

export function addLeaseRoutes(r: Router, deps: RouteDeps): void {
  const { node, clock, random, onLeader } = deps;
  r.on('GET', '/v1/leases', () => ok({ leases: node.kvState.leases().map((l) => ({ ...l, remainingMs: node.leases.remainingMs(l.id) ?? null })) }));

  const grant = async (req: RouteContext): Promise<Record<string, unknown>> => {
    const body = checkBody<{ ttlMs: number; id?: number }>(leaseGrantBody, req.body);
    // The id is chosen here, before proposing, so a forwarded retry keeps it.
    const withId = { ...body, id: body.id ?? newLeaseId(random) };
    // A retry with the same Request-Id (maybe via another node, with another id) is answered from the session.
    const requestId = parseRequestId(req.headers['request-id']);
    return onLeader(req, withId, async () => {
      const res = unwrap(await node.write({ type: 'leaseGrant', id: withId.id, ttlMs: withId.ttlMs, nowMs: clock.nowMs(), ...(requestId ? { requestId } : {}) }));
      return { id: res['id'], ttlMs: res['ttlMs'] };
    });
  };
  r.on('POST', '/v1/leases', async (req) => ok(await grant(req)), { body: true });

  r.on('POST', '/v1/leases/:id/keepalive', async (req) => {
    const id = leaseIdParam(req);
    return ok(await onLeader(req, undefined, async () => node.leases.keepAlive(id)));
  });

  r.on('DELETE', '/v1/leases/:id', async (req) => {
    const id = leaseIdParam(req);
    // Revoking deletes the lease's keys: the caller needs write on each (auth-check.ts).
    authorizeCommand(deps, req, { type: 'leaseRevoke', id });
    const requestId = parseRequestId(req.headers['request-id']);
    const revoke = async (): Promise<Record<string, unknown>> => {
      // Checked again on the leader and stamped: if the auth table changes before the revoke applies, the apply checks again.
      authorizeCommand(deps, req, { type: 'leaseRevoke', id });
      const caller = callerOf(deps, req);
      const stamp = caller === undefined ? {} : { caller: { user: caller.user, authRevision: node.kvState.auth.revision } };
      const res = unwrap(await node.write({ type: 'leaseRevoke', id, nowMs: clock.nowMs(), ...(requestId ? { requestId } : {}), ...stamp }));
      return { revoked: true, id, revision: res['revision'] };
    };
    return ok(await onLeader(req, undefined, revoke));
  });
}

export function addMemberRoutes(r: Router, { node, onLeader }: RouteDeps): void {
  r.on('GET', '/v1/members', () => {
    const st = node.raftStatus();
    const members = node.memberList().map((m) => ({ ...m, role: st.conf.learners.includes(m.id) ? 'learner' : 'voter', leader: m.id === st.leaderId }));
    return ok({ members });
  });

  const add = async (req: RouteContext): Promise<Record<string, unknown>> => {
    const body = checkBody<MemberAddress & { learner?: boolean }>(memberAddBody, req.body);
    const member: MemberAddress = { id: body.id, clientUrl: body.clientUrl, peerAddress: body.peerAddress };
    if (!/^[^:]+:\d+$/.test(member.peerAddress)) throw new AppError('invalid_request', 400, 'peerAddress must be host:port');
    return onLeader(req, body, async () => {
      await node.changeMembership({ op: body.learner === false ? 'addVoter' : 'addLearner', id: member.id, context: JSON.stringify(member) });
      return { added: member, learner: body.learner !== false };
    });
  };
  r.on('POST', '/v1/members', async (req) => ok(await add(req)), { body: true });

  r.on('POST', '/v1/members/:id/promote', async (req) => {
    const id = req.params['id'] as string;
    const promote = async (): Promise<Record<string, unknown>> => {
      const member = node.memberList().find((m) => m.id === id);
      if (!member) throw new AppError('member_not_found', 404, `no member ${id}`);
      await node.changeMembership({ op: 'addVoter', id, context: JSON.stringify(member) });
      return { promoted: id };
    };
    return ok(await onLeader(req, undefined, promote));
  });

  r.on('DELETE', '/v1/members/:id', async (req) => {
    const id = req.params['id'] as string;
    const remove = async (): Promise<Record<string, unknown>> => {
      if (!node.memberList().some((m) => m.id === id)) throw new AppError('member_not_found', 404, `no member ${id}`);
      await node.changeMembership({ op: 'remove', id });
      return { removed: id };
    };
    return ok(await onLeader(req, undefined, remove));
  });

  r.on('POST', '/v1/leader/transfer', async (req) => {
    const body = checkBody<{ to: string }>(transferBody, req.body);
    return ok(await onLeader(req, body, async () => ({ leaderId: await node.transferLeadership(body.to) })));
  }, { body: true });
}
