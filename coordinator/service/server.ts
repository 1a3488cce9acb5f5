/**
 * The coordinator as a process serves it: the CoordinatorService on the
 * system's timers and randomness, hints over HTTP, and the REST routes on a
 * node:http server. Only this file (and main.ts) listens on a socket; a
 * simulation builds the CoordinatorService itself (service.ts).
 */
import { listening } from '../../lib/shutdown.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { faultInjectionEnabled } from '../../lib/faults.js';
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
 * timeout must exceed the keep-alive timeout (Node's rule).
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const HEADERS_TIMEOUT_MS = 66_000;

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
  readonly app: express.Express;
  private server: Server | undefined;

  /** The node:http server once started (graceful shutdown drains it). */
  get httpServer(): Server | undefined {
    return this.server;
  }

  constructor(opts: CoordinatorServerOptions) {
    const c = opts.config;
    this.hints = new HttpHintSender({ timeoutMs: c.hintTimeoutMs, timers: systemTimers });
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
    this.app = coordinatorApp(this.service, { log: opts.log, ...(faults ? { blockedHintUrls: this.hints.blockedUrls } : {}) });
  }

  /** Starts the service, then listens; returns the bound port. */
  async start(listen: ListenOptions): Promise<number> {
    await this.service.start();
    const server = this.app.listen(listen.port, listen.host ?? '127.0.0.1');
    this.server = server;
    await listening(server);
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.headersTimeout = HEADERS_TIMEOUT_MS;
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
