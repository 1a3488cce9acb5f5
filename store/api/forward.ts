/**
 * Follower-to-leader forwarding: a request that must run on the leader is
 * sent there, one hop, over an injected HttpRequester (lib/http-client.ts's
 * keep-alive HttpClient in a process, the simulated network in test/sim2pc).
 */
import { AppError } from '../../lib/errors.js';
import type { HttpRequester, HttpResponse } from '../../lib/http-client.js';
import type { PlainRequest } from '../../lib/http.js';
import { NoLeaderError } from '../node/node.js';
import type { ApiNode, OnLeader } from './common.js';

export const FORWARDED_HEADER = 'x-forwarded-by';
/** Forwarded writes give up after this long; the client may retry with the same Request-Id. */
export const FORWARD_TIMEOUT_MS = 10_000;
/** What a client is told to wait before retrying when the leader did not answer a forward. */
const NO_LEADER_RETRY_AFTER_SECONDS = 1;

export class LeaderForwarder {
  constructor(
    private readonly node: ApiNode,
    private readonly http: HttpRequester,
    private readonly timeoutMs: number = FORWARD_TIMEOUT_MS,
  ) {}

  readonly onLeader: OnLeader = async (req, body, run) => (this.node.isLeader() ? run() : this.forward(req, body));

  private async forward(req: PlainRequest, body: unknown): Promise<Record<string, unknown>> {
    const node = this.node;
    const leader = node.leader();
    // One hop only: a node that was told it is leader but is not, answers no_leader. The header
    // counts only when it names another member (a client that sends one is not a forwarding node).
    const forwardedBy = req.headers[FORWARDED_HEADER];
    const forwarded = forwardedBy !== undefined && forwardedBy !== node.cfg.id && node.memberList().some((m) => m.id === forwardedBy);
    if (!leader || leader.id === node.cfg.id || forwarded) throw new NoLeaderError();
    const headers: Record<string, string> = { 'content-type': 'application/json', [FORWARDED_HEADER]: node.cfg.id };
    const rid = req.headers['request-id'];
    if (rid !== undefined) headers['request-id'] = rid;
    // The leader checks the caller's token again (auth-check.ts): its table is the one the write will meet.
    const authorization = req.headers['authorization'];
    if (authorization !== undefined) headers['authorization'] = authorization;
    // Only the path and query go to the leader: the client's request target never picks the host.
    const search = req.query.toString();
    let res: HttpResponse;
    try {
      res = await this.http.request({
        method: req.method,
        url: `${leader.clientUrl}${req.path}${search === '' ? '' : `?${search}`}`,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        timeoutMs: this.timeoutMs,
      });
    } catch (e) {
      throw new AppError('no_leader', 503, `the leader ${leader.id} did not answer: ${String(e)}`, { retryAfterSeconds: NO_LEADER_RETRY_AFTER_SECONDS });
    }
    return leaderAnswer(leader.id, res);
  }
}

/** The leader's answer as this node's: its JSON on success, its error (code, status, details) otherwise. */
function leaderAnswer(leaderId: string, res: HttpResponse): Record<string, unknown> {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(res.text) as Record<string, unknown>;
  } catch {
    throw new AppError('no_leader', 503, `the leader ${leaderId} sent a non-JSON answer (${res.status})`, { retryAfterSeconds: NO_LEADER_RETRY_AFTER_SECONDS });
  }
  if (res.status >= 400) {
    const err = (payload['error'] ?? {}) as Record<string, unknown>;
    const { code, message, ...details } = err;
    throw new AppError(String(code ?? 'upstream_error'), res.status, String(message ?? 'leader error'), details);
  }
  return payload;
}
