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
  /** Directed links that lose every message: "from>to". */
  private readonly blocked = new Set<string>();
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(private readonly random: SeededRandom) {}

  get inFlight(): number {
    return this.queue.length;
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  /** Hands a message to the network at `nowStep`; false when it was dropped at once. */
  send(m: Message, nowStep: number): boolean {
    this.sent++;
    const f = this.faults;
    if (this.queue.length >= maxInFlightMessages || this.random.chance(f.dropChance)) {
      this.dropped++;
      return false;
    }
    this.enqueue(m, nowStep);
    if (this.random.chance(f.duplicateChance)) {
      this.duplicated++;
      this.enqueue(m, nowStep);
    }
    return true;
  }

  private enqueue(m: Message, nowStep: number): void {
    const f = this.faults;
    let delay = this.random.int(f.maxDelaySteps + 1);
    if (f.longDelayChance > 0 && this.random.chance(f.longDelayChance)) delay += this.random.int(f.longDelaySteps + 1);
    this.queue.push({ deliverAtStep: nowStep + delay, message: m });
  }

  /** Removes and returns the messages due at `nowStep`, in delivery order. */
  due(nowStep: number): Delivery {
    const delivered: Message[] = [];
    const cut: Message[] = [];
    const keep: InFlight[] = [];
    for (const item of this.queue) {
      if (item.deliverAtStep > nowStep) {
        keep.push(item);
      } else if (this.blocked.has(link(item.message.from, item.message.to))) {
        this.dropped++;
        cut.push(item.message);
      } else {
        delivered.push(item.message);
      }
    }
    this.queue = keep;
    // Messages due in the same step arrive in random order.
    for (let i = delivered.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const t = delivered[i] as Message;
      delivered[i] = delivered[j] as Message;
      delivered[j] = t;
    }
    return { delivered, cut };
  }

  /** Symmetric split: no messages between different groups. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    assert(groups.length >= 2, 'a partition needs two groups');
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.blocked.add(link(x, y));
      }
    }
  }

  /** One-way cut: `from` can no longer reach `to`, though `to` still reaches `from`. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(link(from, to));
  }

  heal(): void {
    this.blocked.clear();
  }

  describePartition(): string {
    return [...this.blocked].sort().join(' ');
  }
}

function link(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
