/**
 * The simulator's network: a seeded, lossy, reordering transport between
 * in-memory Raft peers. Every fault is drawn from the one SeededRandom the
 * simulator hands in, so a seed replays the same deliveries exactly.
 *
 * Faults modelled: drops, delays (delivery a random number of steps later,
 * which also reorders), duplicates, partitions (symmetric splits and one-way
 * cuts). A partition is checked when a message is delivered, not when it is
 * sent, so messages already in flight when a link is cut are lost too.
 */
import { assert } from '../../lib/assert.js';
import type { SeededRandom } from '../../lib/random.js';
import type { Message, NodeId } from '../../store/raft/index.js';

/** The weather: how badly the network behaves right now. */
export interface NetworkFaults {
  /** Probability that a message is lost. */
  readonly dropChance: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  readonly duplicateChance: number;
  /** Delays are uniform in [0, maxDelaySteps]. */
  readonly maxDelaySteps: number;
  /** Probability that a message is held back much longer than maxDelaySteps. */
  readonly longDelayChance: number;
  readonly longDelaySteps: number;
}

export const CALM: NetworkFaults = { dropChance: 0, duplicateChance: 0, maxDelaySteps: 1, longDelayChance: 0, longDelaySteps: 0 };

/**
 * The weather's verdict on one message: the delay (in steps) of each copy
 * to deliver; none when it is dropped, two when it is duplicated. Shared by
 * this Raft simulator and the 2PC simulation's network (test/sim2pc/net.ts).
 */
export function deliveryDelays(random: SeededRandom, f: NetworkFaults): number[] {
  if (random.chance(f.dropChance)) return [];
  const delay = (): number => random.int(f.maxDelaySteps + 1) + (f.longDelayChance > 0 && random.chance(f.longDelayChance) ? random.int(f.longDelaySteps + 1) : 0);
  const first = delay();
  return random.chance(f.duplicateChance) ? [first, delay()] : [first];
}

/** Shuffles `items` in place (Fisher-Yates, drawing from the end): one draw order for both simulators. */
export function shuffle(items: unknown[], random: SeededRandom): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
}

/** Directed links that lose every message ("from>to"): partitions and one-way cuts. */
export class Links {
  private readonly blocked = new Set<string>();

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  isCut(from: string, to: string): boolean {
    return this.blocked.has(link(from, to));
  }

  /** Symmetric split: no messages between different groups. */
  partition(groups: readonly (readonly string[])[]): void {
    assert(groups.length >= 2, 'a partition needs two groups');
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.blocked.add(link(x, y));
      }
    }
  }

  /** One-way cut: `from` can no longer reach `to`, though `to` still reaches `from`. */
  cutOneWay(from: string, to: string): void {
    this.blocked.add(link(from, to));
  }

  heal(): void {
    this.blocked.clear();
  }

  describe(): string {
    return [...this.blocked].sort().join(' ');
  }
}

/** Messages in flight at once; past it the network drops (a full socket buffer). */
export const maxInFlightMessages = 20_000;

interface InFlight {
  readonly deliverAtStep: number;
  readonly message: Message;
}

export interface Delivery {
  readonly delivered: Message[];
  /** Lost on a cut link; the simulator may tell the sender (reportUnreachable). */
  readonly cut: Message[];
}

export class Network {
  faults: NetworkFaults = CALM;
  private queue: InFlight[] = [];
  readonly links = new Links();
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(private readonly random: SeededRandom) {}

  get inFlight(): number {
    return this.queue.length;
  }

  get partitioned(): boolean {
    return this.links.partitioned;
  }

  /** Hands a message to the network at `nowStep`; false when it was dropped at once. */
  send(m: Message, nowStep: number): boolean {
    this.sent++;
    const delays = this.queue.length >= maxInFlightMessages ? [] : deliveryDelays(this.random, this.faults);
    if (delays.length === 0) {
      this.dropped++;
      return false;
    }
    if (delays.length > 1) this.duplicated++;
    for (const delay of delays) this.queue.push({ deliverAtStep: nowStep + delay, message: m });
    return true;
  }

  /** Removes and returns the messages due at `nowStep`, in delivery order. */
  due(nowStep: number): Delivery {
    const delivered: Message[] = [];
    const cut: Message[] = [];
    const keep: InFlight[] = [];
    for (const item of this.queue) {
      if (item.deliverAtStep > nowStep) {
        keep.push(item);
      } else if (this.links.isCut(item.message.from, item.message.to)) {
        this.dropped++;
        cut.push(item.message);
      } else {
        delivered.push(item.message);
      }
    }
    this.queue = keep;
    // Messages due in the same step arrive in random order.
    shuffle(delivered, this.random);
    return { delivered, cut };
  }

  partition(groups: readonly (readonly NodeId[])[]): void {
    this.links.partition(groups);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.links.cutOneWay(from, to);
  }

  heal(): void {
    this.links.heal();
  }

  describePartition(): string {
    return this.links.describe();
  }
}

function link(from: string, to: string): string {
  return `${from}>${to}`;
}
