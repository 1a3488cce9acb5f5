/**
 * Graceful shutdown of a service on node:http. On SIGTERM or SIGINT:
 *
 *   1. the servers stop accepting (server.close()) and idle keep-alive
 *      connections close;
 *   2. long-lived streams (SSE watches) end, through the service's hook or
 *      the `isStream` test, since they would otherwise hold their connections
 *      open until the deadline;
 *   3. requests in flight finish, up to the deadline (--shutdown-timeout-ms):
 *      their responses say `connection: close`, and a keep-alive connection
 *      is closed as soon as its request is answered;
 *   4. past the deadline, every connection left is closed;
 *   5. the service's cleanup runs (stop the node or runtime, close stores,
 *      sync logs), then the process exits 0, or 1 if the cleanup failed.
 *
 * A second signal exits at once (128 + the signal's number), for an operator
 * who will not wait.
 */
import { constants } from 'node:os';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FlagSpecs } from './cli.js';
import type { Logger } from './logger.js';
import { systemTimers, type Timers } from './timers.js';

/** The flag every service takes. */
export const SHUTDOWN_FLAGS = {
  'shutdown-timeout-ms': {
    type: 'int',
    default: 10_000,
    min: 0,
    max: 600_000,
    description: 'on SIGTERM or SIGINT, how long requests in flight may take to finish before their connections are closed, in ms',
  },
} as const satisfies FlagSpecs;

export interface ShutdownOptions {
  readonly servers: readonly Server[];
  /** How long requests in flight may take once shutdown begins. */
  readonly timeoutMs: number;
  readonly log: Logger;
  /** The service's own cleanup, once no connection is left: stop the node or runtime, close stores, sync logs. */
  readonly cleanup: () => Promise<void>;
  /** Ends the service's long-lived streams (SSE); runs right after the servers stop accepting. */
  readonly closeStreams?: () => void;
  /** Requests that are long-lived streams: their responses are ended when shutdown begins. */
  readonly isStream?: (req: IncomingMessage) => boolean;
  /** Default: SIGTERM and SIGINT. */
  readonly signals?: readonly NodeJS.Signals[];
  /** Default: the system's (unref'd: the deadline never keeps the process alive by itself). */
  readonly timers?: Timers;
  /** Default: process.exit. */
  readonly exit?: (code: number) => void;
}

/** The signal's conventional exit status: 128 + its number (130 for SIGINT, 143 for SIGTERM). */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

export class GracefulShutdown {
  private readonly inFlight = new Map<ServerResponse, IncomingMessage>();
  private draining: Promise<number> | undefined;
  private readonly timers: Timers;
  private readonly exit: (code: number) => void;

  constructor(private readonly opts: ShutdownOptions) {
    this.timers = opts.timers ?? systemTimers;
    this.exit = opts.exit ?? ((code) => process.exit(code));
    for (const server of opts.servers) {
      // First in line, so a request that arrives while draining is told before any handler answers it.
      server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.track(req, res));
    }
  }

  /** Installs the signal handlers; returns this. */
  install(): this {
    for (const signal of this.opts.signals ?? (['SIGTERM', 'SIGINT'] as const)) {
      process.on(signal, () => {
        if (this.draining !== undefined) {
          this.opts.log('warn', `${signal} again: exiting now`);
          this.exit(signalExitCode(signal));
          return;
        }
        void this.shutdown(signal).then((code) => this.exit(code));
      });
    }
    return this;
  }

  /** Requests being served right now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Drains and cleans up (once; later calls share the first); resolves to the exit code. */
  shutdown(reason: string): Promise<number> {
    this.draining ??= this.drainThenCleanUp(reason);
    return this.draining;
  }

  private track(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight.set(res, req);
    if (this.draining !== undefined) this.closeAfter(res);
    res.once('close', () => this.inFlight.delete(res));
  }

  /** This response is the connection's last: say so while we still can, and close the connection once it is sent. */
  private closeAfter(res: ServerResponse): void {
    if (!res.headersSent) res.setHeader('connection', 'close');
    res.once('finish', () => this.timers.soon(() => this.closeIdle()));
  }

  private closeIdle(): void {
    for (const server of this.opts.servers) server.closeIdleConnections();
  }

  private async drainThenCleanUp(reason: string): Promise<number> {
    const { log, timeoutMs } = this.opts;
    log('info', 'shutting down: no new connections; requests in flight may finish', { reason, inFlight: this.inFlight.size, timeoutMs });
    const closed = Promise.all(this.opts.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.closeIdle();
    for (const [res, req] of this.inFlight) {
      this.closeAfter(res);
      if (this.opts.isStream?.(req) === true) res.end();
    }
    this.opts.closeStreams?.();
    let cancelDeadline = (): void => {};
    const deadline = new Promise<'deadline'>((resolve) => (cancelDeadline = this.timers.after(timeoutMs, () => resolve('deadline'))));
    if ((await Promise.race([closed, deadline])) === 'deadline') {
      log('warn', 'shutdown deadline passed: closing the connections left', { inFlight: this.inFlight.size, timeoutMs });
      for (const server of this.opts.servers) server.closeAllConnections();
      await closed;
    }
    cancelDeadline();
    try {
      await this.opts.cleanup();
      log('info', 'stopped');
      return 0;
    } catch (e) {
      log('error', 'cleanup failed during shutdown', { error: e });
      return 1;
    }
  }
}

/** Installs graceful shutdown for a service's servers (see GracefulShutdown). */
export function onShutdownSignals(opts: ShutdownOptions): GracefulShutdown {
  return new GracefulShutdown(opts).install();
}

/** Resolves once `server` listens; rejects on a listen error (EADDRINUSE and the like). */
export function listening<S extends Server>(server: S): Promise<S> {
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}

/** A cleanup that stops the service, then closes what it ran on even if stopping failed. */
export function stopThenClose(stop: () => Promise<void>, close: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await stop();
    } finally {
      await close();
    }
  };
}
