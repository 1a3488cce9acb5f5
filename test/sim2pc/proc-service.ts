/**
 * What the simulated processes share: a request client and HTTP per
 * incarnation (`NetProc`); the calls standing for the REST contract of
 * docs/API.md; and for a coordinator or participant (`ServiceProc`) the real
 * StoreClient under the real BuiltinTxStore, answers from the real service
 * (errors mapped as the routes map them) and a logger reporting to the world.
 */
import type { Decision, JsonValue, Participant, VoteValue } from '../../coordinator/protocol/index.js';
import { BatchingTxStore, DEFAULT_BATCH_LIMITS } from '../../coordinator/txstore/batching.js';
import { BuiltinTxStore, type TxStore } from '../../coordinator/txstore/index.js';
import { AssertionError } from '../../lib/assert.js';
import { errorReply } from '../../lib/http.js';
import type { Logger } from '../../lib/logger.js';
import { parseSse, StoreClient, type ClientOptions } from '../../store/client/index.js';
import { SimHttpClient, isStreamChunk, type SimStreamChunk } from './http.js';
import { mutatedStore } from './knobs.js';
import { RpcClient, type Net, type Packet } from './net.js';
import { Proc, type World } from './world.js';

export type CoordinatorCall =
  /** Begin under an Idempotency-Key, so a retry at another coordinator names the same transaction. */
  | { readonly kind: 'coord'; readonly op: 'begin'; readonly key: string; readonly participants: readonly Participant[]; readonly timeoutMs: number }
  | { readonly kind: 'coord'; readonly op: 'enlist'; readonly txId: string; readonly participant: Participant }
  | { readonly kind: 'coord'; readonly op: 'commit'; readonly txId: string }
  | { readonly kind: 'coord'; readonly op: 'abort'; readonly txId: string; readonly reason?: string };

/** A result, or the error code and status the routes would send. */
export type Answer<T> = T | { readonly ok: false; readonly code: string; readonly status: number };

export type CoordinatorAnswer = Answer<{ readonly ok: true; readonly id: string; readonly outcome?: 'committed' | 'aborted' }>;

export type ParticipantCall =
  | { readonly kind: 'work'; readonly txId: string; readonly work: JsonValue }
  | { readonly kind: 'prepare'; readonly txId: string; readonly deadline: number }
  | { readonly kind: 'decision'; readonly txId: string; readonly decision: Decision };

export type ParticipantAnswer = Answer<{ readonly ok: true; readonly vote?: VoteValue }>;

/** A participant's URL in the frozen list; the simulation routes it to the process of that name. */
export function participantUrl(name: string): string {
  return `http://${name}.sim:7100`;
}

export function participantAddress(url: string): string {
  return new URL(url).hostname.replace(/\.sim$/, '');
}

/** How a process reaches the store (StoreClient's limits, plus the group commit of BatchingTxStore). */
export type StoreAccessOptions = Required<Pick<ClientOptions, 'requestTimeoutMs' | 'deadlineMs' | 'maxAttempts'>> & {
  readonly endpoints: readonly string[];
  /** Batches in flight of the process's group commit; 0: none, every write alone. */
  readonly batchInflight: number;
};

/** A process on the network: replies go to its request client, stream chunks to its HTTP client. */
export abstract class NetProc extends Proc {
  protected rpc!: RpcClient;
  protected http!: SimHttpClient;

  constructor(
    name: string,
    world: World,
    protected readonly net: Net,
    private readonly requestTimeoutMs: number,
    skipTickChance = 0,
  ) {
    super(name, world, skipTickChance);
    net.register(name, (p) => this.receive(p));
  }

  /** The per-incarnation clients; subclasses call it first in onStart. */
  protected connect(): void {
    this.rpc = new RpcClient(this, this.net);
    this.http = new SimHttpClient(this, this.net, this.rpc, this.requestTimeoutMs);
  }

  /** A request, or a Raft message, for the live incarnation. */
  protected abstract onPacket(p: Packet): void;

  private receive(p: Packet): void {
    if (!this.alive) return;
    const pl = p.payload;
    if (pl.kind !== 'resp') this.onPacket(p);
    else if (isStreamChunk(p)) this.http.onChunk(pl.body as SimStreamChunk);
    else this.rpc.onReply(pl.rid, pl.body);
  }
}

export abstract class ServiceProc<Call, Result> extends NetProc {
  constructor(
    name: string,
    world: World,
    net: Net,
    private readonly store: StoreAccessOptions,
  ) {
    super(name, world, net, store.requestTimeoutMs);
  }

  /** Answers one call from the real service; undefined while the service is not up (routes would be down). */
  protected abstract call(call: Call): Promise<Result> | undefined;

  /** This incarnation's store: the real client over simulated HTTP, on its timers, under the run's mutation. */
  protected txStore(role: 'coordinator' | 'participant'): TxStore {
    const http = this.http;
    const client = new StoreClient({
      endpoints: this.store.endpoints.map((id) => `http://${id}`),
      clientId: `${this.name}-${this.incarnation}`,
      requestTimeoutMs: this.store.requestTimeoutMs,
      deadlineMs: this.store.deadlineMs,
      maxAttempts: this.store.maxAttempts,
      http,
      openStream: async (url, signal) => {
        const r = await http.openStream(url, {}, signal);
        return 'body' in r ? { status: 200, messages: parseSse(r.body) } : r;
      },
      timers: this.timers,
      random: this.world.random,
    });
    const store = new BuiltinTxStore(client);
    const batched = this.store.batchInflight === 0 ? store : new BatchingTxStore(store, this.timers, { ...DEFAULT_BATCH_LIMITS, maxInflight: this.store.batchInflight });
    return mutatedStore(batched, role, this.world.mutation);
  }

  protected logger(): Logger {
    return (level, message, fields) => {
      if (level === 'error' || fields?.['error'] instanceof AssertionError) this.world.runtimeError(this.name, message, fields);
      if (this.world.tracing && level !== 'debug') this.world.trace(`${this.name} ${level}: ${message}${fields === undefined ? '' : ` ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`}`);
    };
  }

  protected onPacket(p: Packet): void {
    if (p.payload.kind === 'req') void this.serve(p.from, p.payload.rid, p.payload.body as Call);
  }

  private async serve(from: string, rid: string, call: Call): Promise<void> {
    const inc = this.incarnation;
    const answer = await this.answer(call);
    if (this.world.tracing) this.world.trace(`${this.name} answers ${from}: ${JSON.stringify(call)} -> ${JSON.stringify(answer)}`);
    if (this.isLive(inc)) this.net.send(this.name, from, { kind: 'resp', rid, body: answer });
  }

  private async answer(call: Call): Promise<Answer<Result>> {
    try {
      return (await this.call(call)) ?? { ok: false, code: 'not_ready', status: 503 };
    } catch (e) {
      // As the routes answer: an AppError's code and status; anything else is a 500, a bug reported to the simulation.
      const r = errorReply(e, (err) => this.world.runtimeError(this.name, 'internal error answering a call', { error: err }));
      return { ok: false, code: (r.body as { readonly error: { readonly code: string } }).error.code, status: r.status };
    }
  }
}
