/**
 * One lossy network for everything (Raft, store HTTP, hints, the client's
 * calls), with test/sim/network.ts's weather and partitions. `RpcClient`
 * pairs requests with replies and a timeout: a caller gets an answer or nothing.
 */
import type { Message } from '../../store/raft/index.js';
import { CALM, deliveryDelays, Links, type NetworkFaults } from '../sim/network.js';
import type { Cancel } from '../../lib/timers.js';
import type { Proc, World } from './world.js';

/** Milliseconds per delay step of the weather (its delays are counted in steps). */
const msPerDelayStep = 2;
/** Packets in flight at once; past it the network drops (a full socket buffer). */
const maxInFlightPackets = 50_000;

export type Payload =
  | { readonly kind: 'raft'; readonly message: Message }
  | { readonly kind: 'req'; readonly rid: string; readonly body: unknown }
  | { readonly kind: 'resp'; readonly rid: string; readonly body: unknown };

/** What a packet adds to the run's digest: enough to tell two runs apart, cheaper than its JSON. */
function digestOf(p: Payload): string {
  if (p.kind === 'raft') return `${p.message.type}/${p.message.term}`;
  const body = p.body as { readonly status?: number; readonly kind?: string; readonly url?: string } | undefined;
  return `${p.kind}/${p.rid}/${body?.kind ?? ''}${body?.status ?? ''}${body?.url ?? ''}`;
}

export interface Packet {
  readonly from: string;
  readonly to: string;
  readonly payload: Payload;
}

export class Net {
  faults: NetworkFaults = CALM;
  /** Partitions: checked at delivery, so messages in flight when a link is cut are lost too. */
  readonly links = new Links();
  private readonly handlers = new Map<string, (p: Packet) => void>();
  /** Packets sent and not yet delivered or lost. */
  inFlight = 0;
  sent = 0;
  dropped = 0;

  constructor(private readonly world: World) {}

  register(address: string, handler: (p: Packet) => void): void {
    this.handlers.set(address, handler);
  }

  send(from: string, to: string, payload: Payload): void {
    this.sent++;
    this.world.digest(`${from}>${to}:${digestOf(payload)}`);
    const delays = this.inFlight >= maxInFlightPackets ? [] : deliveryDelays(this.world.random, this.faults);
    if (delays.length === 0) this.dropped++;
    for (const steps of delays) this.deliverLater({ from, to, payload }, steps);
  }

  private deliverLater(p: Packet, steps: number): void {
    this.inFlight++;
    this.world.queue.at(this.world.queue.now + 1 + steps * msPerDelayStep, () => {
      this.inFlight--;
      if (this.links.isCut(p.from, p.to)) {
        this.dropped++;
        return;
      }
      this.handlers.get(p.to)?.(p);
    });
  }
}

/**
 * Request/reply over the lossy network for one process incarnation. A reply
 * that comes after the timeout, or to an earlier incarnation, is ignored, as
 * an HTTP client ignores a response to a request it abandoned.
 */
export class RpcClient {
  private readonly pending = new Map<string, { readonly resolve: (body: unknown) => void; readonly cancel: Cancel }>();
  private next = 0;

  constructor(
    private readonly proc: Proc,
    private readonly net: Net,
  ) {
    this.incarnation = proc.incarnation;
  }

  /** The incarnation this client belongs to: a dead one sends nothing (a killed process's code may still run on). */
  private readonly incarnation: number;

  /** Resolves with the reply, or `undefined` on timeout: the request may or may not have been served. */
  call(to: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (!this.proc.isLive(this.incarnation)) return new Promise<unknown>(() => undefined);
    const rid = `${this.proc.name}.${this.proc.incarnation}.${++this.next}`;
    return new Promise<unknown>((resolve) => {
      const cancel = this.proc.after(timeoutMs, () => {
        if (this.pending.delete(rid)) resolve(undefined);
      });
      this.pending.set(rid, { resolve, cancel });
      this.net.send(this.proc.name, to, { kind: 'req', rid, body });
    });
  }

  onReply(rid: string, body: unknown): void {
    const p = this.pending.get(rid);
    if (p === undefined) return;
    this.pending.delete(rid);
    p.cancel();
    p.resolve(body);
  }
}
