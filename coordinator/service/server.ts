/**
 * The coordinator as a process serves it: the CoordinatorService on the
 * system's timers and randomness, hints over HTTP, and the REST routes on a
 * node:http server. Only this file (and main.ts) listens on a socket; a
 * simulation builds the CoordinatorService itself (service.ts).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { faultInjectionEnabled } from '../../lib/faults.js';
import type { HttpApp } from '../../lib/http.js';
import { listenGuarded, PLAIN_HTTP, type HttpGuardLimits } from '../../lib/http-guard.js';
import type { TlsSettings } from '../../lib/tls.js';
import type { TokenAuth } from '../../lib/token-auth.js';
import { NO_FAILPOINTS, type FailpointHook } from '../../lib/failpoints.js';
import type { Logger } from '../../lib/logger.js';
import { systemRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import { HttpHintSender, type CoordinatorConfig } from '../runtime/index.js';
import type { TxStore } from '../txstore/index.js';
import { coordinatorApp } from './routes.js';
import { CoordinatorService } from './service.js';
import type { StoreUsageSource } from './store-usage.js';

/**
 * Requests wait for the store up to their own timeouts (requestTimeoutMs,
 * commit grace), so idle keep-alive sockets must outlive that; the headers
 * timeout exceeds the keep-alive timeout (a proxy's idle connection is never
 * cut by ours first), and the whole-request timeout the headers one (Node's rule).
 */
const SERVER_LIMITS: Partial<HttpGuardLimits> = { keepAliveTimeoutMs: 65_000, headersTimeoutMs: 66_000, requestTimeoutMs: 120_000 };

export interface CoordinatorServerOptions {
  readonly config: CoordinatorConfig;
  readonly store: TxStore;
  readonly log: Logger;
  /** Default: none (the process entry passes `Failpoints.fromEnv()`). */
  readonly failpoints?: FailpointHook;
  /** The store's fill level for back-pressure on begins (store-usage.ts); default: none. */
  readonly storeUsage?: StoreUsageSource;
  /** Serve `/v1/admin/faults`; default: RAFT2PC_FAULTS=1 in the environment (lib/faults.ts). */
  readonly faultInjection?: boolean;
  /** HTTPS and the client side of hints; default: plain HTTP on loopback. */
  readonly tls?: TlsSettings;
  /** Bearer tokens its clients must show (routes.ts COORDINATOR_ROUTE_POLICIES); default: none, no auth. */
  readonly auth?: Pick<TokenAuth, 'check'>;
  /** The token this coordinator shows participants on prepare and decision calls; default: none. */
  readonly callToken?: () => string | undefined;
  /** Over the coordinator's own (SERVER_LIMITS) and lib/http-guard.ts's. */
  readonly limits?: Partial<HttpGuardLimits>;
}

export interface ListenOptions {
  /** 0: any free port. */
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
}

export class CoordinatorServer {
  readonly hints: HttpHintSender;
  readonly service: CoordinatorService;
  /** The routes as a node:http listener (lib/http.ts), behind the guard once started. */
  readonly app: HttpApp;
  private server: Server | undefined;
  private readonly tls: TlsSettings;
  private readonly log: Logger;
  private readonly limits: Partial<HttpGuardLimits>;

  /** The node:http server once started (graceful shutdown drains it). */
  get httpServer(): Server | undefined {
    return this.server;
  }

  constructor(opts: CoordinatorServerOptions) {
    const c = opts.config;
    this.tls = opts.tls ?? PLAIN_HTTP;
    this.log = opts.log;
    this.limits = { ...SERVER_LIMITS, ...opts.limits };
    this.hints = new HttpHintSender({ timeoutMs: c.hintTimeoutMs, timers: systemTimers, tls: this.tls.client, log: opts.log, ...(opts.callToken === undefined ? {} : { token: opts.callToken }) });
    this.service = new CoordinatorService({
      config: c,
      store: opts.store,
      timers: systemTimers,
      random: systemRandom,
      hints: this.hints,
      failpoints: opts.failpoints ?? NO_FAILPOINTS,
      log: opts.log,
      ...(opts.storeUsage === undefined ? {} : { storeUsage: opts.storeUsage }),
    });
    // A server is its own process (or one of few in a test), so its /metrics carries the process's.
    this.service.metrics.collectProcessMetrics();
    const faults = opts.faultInjection ?? faultInjectionEnabled();
    this.app = coordinatorApp(this.service, { log: opts.log, ...(faults ? { blockedHintUrls: this.hints.blockedUrls } : {}), ...(opts.auth === undefined ? {} : { auth: opts.auth }) });
  }

  /** Starts the service, then listens; returns the bound port. */
  async start(listen: ListenOptions): Promise<number> {
    await this.service.start();
    try {
      this.server = await listenGuarded(this.app, listen.host ?? '127.0.0.1', listen.port, { tls: this.tls, limits: this.limits, log: this.log });
    } catch (e) {
      await this.service.stop();
      throw e;
    }
    const server = this.server;
    return (server.address() as AddressInfo).port;
  }

  /** Stops the service first (waiting requests get their 503 on open connections), then the hints and the server. */
  async stop(): Promise<void> {
    await this.service.stop();
    this.hints.close();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
