/**
 * What a simulated coordinator and participant process share: a store
 * client's HTTP over the network (http.ts), calls that arrive as packets and
 * are answered from the real service's methods (as express routes would
 * answer them, errors mapped the same way), and a logger that reports a
 * runtime's errors to the simulation.
 */
import { AssertionError } from '../../lib/assert.js';
import { isAppError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { SimHttpClient, isStreamChunk, type SimStreamChunk } from './http.js';
import { RpcClient, type Net, type Packet } from './net.js';
import { Proc, type World } from './world.js';

/** A runtime logged an error, or an assertion at any level: the simulation judges it. */
export type ErrorReport = (who: string, message: string, fields: Readonly<Record<string, unknown>> | undefined) => void;

/** An answer as routes.ts would send it: a result, or an error's code and status. */
export type Answer<T> = T | { readonly ok: false; readonly code: string; readonly status: number };

export abstract class ServiceProc<Call, Result> extends Proc {
  protected rpc!: RpcClient;
  protected http!: SimHttpClient;

  constructor(
    name: string,
    world: World,
    protected readonly net: Net,
    private readonly report: ErrorReport,
    private readonly requestTimeoutMs: number,
  ) {
    super(name, world);
    net.register(name, (p) => this.receive(p));
  }

  /** The per-incarnation clients; subclasses call it first in onStart. */
  protected connect(): void {
    this.rpc = new RpcClient(this, this.net);
    this.http = new SimHttpClient(this, this.net, this.rpc, this.requestTimeoutMs);
  }

  /** Answers one call from the real service; undefined while the service is not up (routes would be down). */
  protected abstract call(call: Call): Promise<Result> | undefined;

  protected logger(): Logger {
    return (level, message, fields) => {
      if (level === 'error' || fields?.['error'] instanceof AssertionError) this.report(this.name, message, fields);
      if (this.world.tracing && level !== 'debug') this.world.trace(`${this.name} ${level}: ${message}${fields === undefined ? '' : ` ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`}`);
    };
  }

  private receive(p: Packet): void {
    if (!this.alive) return;
    const pl = p.payload;
    if (pl.kind === 'resp') {
      if (isStreamChunk(p)) this.http.onChunk(pl.body as SimStreamChunk);
      else this.rpc.onReply(pl.rid, pl.body);
    } else if (pl.kind === 'req') {
      void this.serve(p.from, pl.rid, pl.body as Call);
    }
  }

  private async serve(from: string, rid: string, call: Call): Promise<void> {
    const inc = this.incarnation;
    const answer = await this.answer(call);
    this.trace(() => `answers ${from}: ${JSON.stringify(call)} -> ${JSON.stringify(answer)}`);
    if (this.isLive(inc)) this.net.send(this.name, from, { kind: 'resp', rid, body: answer });
  }

  private async answer(call: Call): Promise<Answer<Result>> {
    try {
      return (await this.call(call)) ?? { ok: false, code: 'not_ready', status: 503 };
    } catch (e) {
      if (isAppError(e)) return { ok: false, code: e.code, status: e.status };
      // routes would answer 500: a bug, not an expected failure.
      this.report(this.name, 'internal error answering a call', { error: e });
      return { ok: false, code: 'internal', status: 500 };
    }
  }
}
