/**
 * The store's public API (docs/API.md, "The store contract") with no
 * transport: plain requests in, replies out. Every node serves every call:
 * writes on a follower are forwarded to the leader; linearizable reads are
 * served locally after a ReadIndex round; during an election the answer is
 * 503 no_leader.
 *
 * server.ts puts it behind node:http; the deterministic simulation
 * (test/sim2pc) calls it over its simulated network (`serve`, `openWatch`),
 * so both run the same routes, checks, forwarding and watches.
 */
import { randomInt } from 'node:crypto';
import { faultInjectionEnabled } from '../../lib/faults.js';
import type { HttpRequester } from '../../lib/http-client.js';
import { Router, errorReply, serveWire, type PlainRequest, type Reply, type RouteMatch, type Routes, type WireRequest, type WireResponse } from '../../lib/http.js';
import type { Random } from '../../lib/random.js';
import type { Timers } from '../../lib/timers.js';
import { addLeaseRoutes, addMemberRoutes } from './admin.js';
import { addAlarmRoutes, quotaView } from './alarms.js';
import { addAuthRoutes } from './auth.js';
import { AuthRouter, authorizeWatch } from './auth-check.js';
import { addBatchRoutes } from './batch.js';
import { ok, type ApiNode, type RouteDeps } from './common.js';
import { addFaultRoutes, type FaultSlot } from './faults.js';
import { LeaderForwarder } from './forward.js';
import { addKvReadRoutes, addKvWriteRoutes } from './kv.js';
import { addHealthRoutes } from './health.js';
import { addSnapshotRoutes } from './snapshots.js';
import { storeMetrics } from './metrics.js';
import { storeOpenApi } from './openapi.js';
import { WatchHub, defaultWatchLimits, type WatchLimits, type WatchRequest, type WatchSink } from './watch.js';

/** What the process's TCP transport adds: a fault filter slot (chaos runs) and a drop counter (metrics). */
export interface TransportHooks extends FaultSlot {
  droppedMessages(): number;
}

export interface StoreApiOptions {
  readonly node: ApiNode;
  /** Carries follower-to-leader forwards; its owner closes it. */
  readonly forwarder: HttpRequester;
  /** One forward's timeout. Default: FORWARD_TIMEOUT_MS (10 s). */
  readonly forwardTimeoutMs?: number;
  /** Write stamps (`nowMs`) and the watch keepalive. Default: the node's timers. */
  readonly timers?: Timers;
  /** Lease ids. Default: node:crypto. */
  readonly random?: Random;
  /** The TCP transport's extras; without them /metrics counts no dropped messages and there are no fault routes. */
  readonly transport?: TransportHooks;
  /** Serve /v1/admin/faults (needs `transport`). Default: RAFT2PC_FAULTS=1 (lib/faults.ts). */
  readonly faultRoutes?: boolean;
  readonly watchLimits?: WatchLimits;
  /** The process id `/v1/status` reports. Default: this process's; a simulated node has its own. */
  readonly pid?: number;
  /** Add the default process metrics to /metrics: true when the node is its own process (server.ts). Default false. */
  readonly processMetrics?: boolean;
}

/** Lease ids from node:crypto, as before injection; the range fits randomInt's 2^48 limit. */
const cryptoRandom: Random = {
  int: (n) => randomInt(n),
  float: () => randomInt(2 ** 48) / 2 ** 48,
};

export class StoreApi implements Routes {
  readonly router: Router;
  readonly watches: WatchHub;
  private readonly node: ApiNode;
  private readonly onApplied: (appliedIndex: number, events: boolean) => void;
  /** Requests dispatched to a route (watches included, each once), for store_http_requests_total. */
  private requestCount = 0;

  constructor(opts: StoreApiOptions) {
    const { node } = opts;
    this.node = node;
    const timers = opts.timers ?? node.timers;
    const deps: RouteDeps = { node, clock: timers, random: opts.random ?? cryptoRandom, onLeader: new LeaderForwarder(node, opts.forwarder, opts.forwardTimeoutMs).onLeader };
    // Every route registers through the AuthRouter: its policy (auth-check.ts) is checked before its handler.
    this.router = new AuthRouter({ maxBodyBytes: node.cfg.maxBodyBytes }, deps);
    this.watches = new WatchHub(node, timers, opts.watchLimits ?? defaultWatchLimits);
    addHealthRoutes(this.router, node, timers);
    this.addStatusRoutes(opts.transport, opts.pid ?? process.pid, opts.processMetrics ?? false);
    addKvReadRoutes(this.router, deps);
    addKvWriteRoutes(this.router, deps);
    addBatchRoutes(this.router, deps);
    this.router.on('GET', '/v1/watch', async (req) => {
      // With auth on, the watch is checked against the table as of now (a ReadIndex round), not a lagging copy.
      if (node.kvState.auth.enabled) await node.linearizableBarrier();
      authorizeWatch(deps, req, req.query);
      return this.watches.reply(req);
    });
    addLeaseRoutes(this.router, deps);
    addMemberRoutes(this.router, deps);
    addAlarmRoutes(this.router, deps);
    addAuthRoutes(this.router, deps);
    addSnapshotRoutes(this.router, deps);
    const faults = opts.transport !== undefined && (opts.faultRoutes ?? faultInjectionEnabled());
    if (opts.transport && faults) addFaultRoutes(this.router, node.cfg.id, opts.transport);
    // Built when first asked for: a node restarts far more often than its document is read (the simulation restarts thousands).
    let openApi: ReturnType<typeof storeOpenApi> | undefined;
    this.router.on('GET', '/openapi.json', () => ok((openApi ??= storeOpenApi({ maxBodyBytes: node.cfg.maxBodyBytes, faultRoutes: faults }))));
    this.onApplied = (_index, events) => {
      if (events) this.watches.pump();
    };
    node.onApplied = this.onApplied;
  }

  private addStatusRoutes(transport: TransportHooks | undefined, pid: number, processMetrics: boolean): void {
    const node = this.node;
    const r = this.router;
    const metrics = storeMetrics(node, { droppedMessages: () => transport?.droppedMessages() ?? 0, processMetrics, requests: () => this.requestCount });
    r.on('GET', '/metrics', async () => ({ status: 200, text: await metrics.render(), headers: { 'content-type': metrics.contentType } }));
    r.on('GET', '/v1/status', () => {
      const st = node.raftStatus();
      return ok({
        id: st.id,
        pid,
        role: st.role,
        term: st.term,
        leaderId: st.leaderId === '' ? null : st.leaderId,
        commitIndex: st.commitIndex,
        appliedIndex: node.applied,
        revision: node.kvState.revision,
        ...quotaView(node),
        members: node.memberList().map((m) => ({ ...m, learner: st.conf.learners.includes(m.id) })),
      });
    });
  }

  /** Finds the route (404, 405, 400 invalid_path as AppError); a transport reads the body only if the route takes one. */
  match(method: string, path: string): RouteMatch {
    this.requestCount++;
    return this.router.match(method, path);
  }

  /** Answers a request whose body is already parsed; throws AppError as the routes do. */
  dispatch(req: PlainRequest): Promise<Reply> {
    return this.router.dispatch(req);
  }

  /** `dispatch` with errors mapped to their JSON replies (errorReply): never rejects. */
  async handle(req: PlainRequest): Promise<Reply> {
    try {
      return await this.dispatch(req);
    } catch (e) {
      return errorReply(e);
    }
  }

  /**
   * One request as text, answered as text (status, headers, body): what the
   * node:http server does, without sockets; the body is parsed and capped as
   * there. A watch is refused here (406): open it with `openWatch`.
   */
  serve(r: WireRequest): Promise<WireResponse> {
    return serveWire(this, this.node.cfg.maxBodyBytes, r);
  }

  /**
   * Opens a watch into `sink`, as `GET /v1/watch` with this query and
   * headers does. A refused request throws AppError before `sink` is touched
   * (its wire answer: `encodeReply(errorReply(e))`).
   */
  openWatch(req: WatchRequest, sink: WatchSink): void {
    this.watches.open(req, sink);
  }

  /** Ends every watch, stops the keepalive timer and unhooks from the node. */
  close(): void {
    this.watches.close();
    if (this.node.onApplied === this.onApplied) this.node.onApplied = undefined;
  }
}
