/**
 * The seeded fault schedule, as pure data: no timers, no processes. Two
 * lanes run side by side, each a sequence of faults that never overlap
 * within the lane:
 *
 * - the store lane acts on the store nodes, one at a time, so a majority of
 *   the store stays up and connected (the run checks that the system keeps
 *   working, not only that it stays safe);
 * - the service lane acts on the coordinators and banks, one at a time, so
 *   at least one coordinator is always up.
 *
 * A lane's first faults go once through every enabled kind, in an order the
 * seed picks, so that even a short run injects every kind; after that kinds
 * are drawn at random. The same seed gives the same sequence of faults
 * (kinds, targets, durations); when each one fires depends on how long the
 * previous one took to heal, so timing does not replay.
 */
import { SeededRandom } from '../lib/random.js';
import type { FaultKind } from './options.js';

export type Lane = 'store' | 'service';

export interface PlannedFault {
  readonly lane: Lane;
  /** Position in its lane's sequence, from 0. */
  readonly index: number;
  readonly kind: FaultKind;
  /**
   * The process it hits. On the store lane, "leader" means whichever node
   * leads when the fault fires. For a service-lane partition, the coordinator
   * whose hints to `blocked` banks are cut.
   */
  readonly target: string;
  /** Service-lane partition only: the banks the coordinator cannot reach. */
  readonly blocked: readonly string[];
  /** Quiet time before the fault. */
  readonly gapMs: number;
  /** How long it lasts: down, paused or cut off. */
  readonly holdMs: number;
  /** Disk faults: bytes cut off the end of the last WAL segment. */
  readonly tearBytes: number;
}

/** Duration ranges in ms, [min, max). Pauses exceed the store's election timeout (500-1000 ms). */
const RANGES = Object.freeze({
  gap: [1_000, 4_000],
  kill: [500, 3_000],
  storePause: [800, 4_000],
  servicePause: [600, 4_000],
  storePartition: [1_000, 5_000],
  servicePartition: [1_500, 6_000],
  disk: [300, 2_000],
  tearBytes: [1, 17],
} as const);

/** The kinds each lane can inject: a disk fault needs a WAL, so only store nodes get it. */
export const LANE_KINDS: Readonly<Record<Lane, readonly FaultKind[]>> = { store: ['kill', 'pause', 'partition', 'disk'], service: ['kill', 'pause', 'partition'] };

export interface LaneTargets {
  readonly store: readonly string[];
  readonly coordinators: readonly string[];
  readonly banks: readonly string[];
}

/** Different lanes draw from unrelated streams of the one seed. */
const LANE_SALT: Readonly<Record<Lane, number>> = { store: 0x5170_4e00, service: 0x5e41_1ce0 };

export class FaultPlan {
  private readonly rnd: SeededRandom;
  private readonly kinds: readonly FaultKind[];
  private readonly firstRound: FaultKind[];
  private next = 0;

  constructor(
    readonly lane: Lane,
    seed: number,
    enabled: readonly FaultKind[],
    private readonly targets: LaneTargets,
  ) {
    this.rnd = new SeededRandom((seed ^ LANE_SALT[lane]) >>> 0);
    const hasTargets = lane === 'store' ? targets.store.length > 0 : targets.coordinators.length + targets.banks.length > 0;
    this.kinds = hasTargets ? LANE_KINDS[lane].filter((k) => enabled.includes(k)) : [];
    this.firstRound = shuffle(this.rnd, this.kinds);
  }

  /** Whether this lane has anything to inject. */
  get empty(): boolean {
    return this.kinds.length === 0;
  }

  /** The lane's next fault; the sequence is endless, the caller stops drawing. */
  draw(): PlannedFault {
    if (this.empty) throw new Error(`the ${this.lane} lane has no fault kind to draw`);
    const index = this.next++;
    const kind = this.firstRound[index] ?? this.rnd.pick(this.kinds);
    const gapMs = between(this.rnd, RANGES.gap);
    return this.lane === 'store' ? this.storeFault(index, kind, gapMs) : this.serviceFault(index, kind, gapMs);
  }

  private storeFault(index: number, kind: FaultKind, gapMs: number): PlannedFault {
    const target = this.rnd.chance(0.5) ? 'leader' : this.rnd.pick(this.targets.store);
    const range = kind === 'kill' ? RANGES.kill : kind === 'pause' ? RANGES.storePause : kind === 'partition' ? RANGES.storePartition : RANGES.disk;
    const holdMs = between(this.rnd, range);
    const tearBytes = kind === 'disk' ? between(this.rnd, RANGES.tearBytes) : 0;
    return { lane: 'store', index, kind, target, blocked: [], gapMs, holdMs, tearBytes };
  }

  private serviceFault(index: number, kind: FaultKind, gapMs: number): PlannedFault {
    if (kind === 'partition' && this.targets.coordinators.length > 0 && this.targets.banks.length > 0) {
      const target = this.rnd.pick(this.targets.coordinators);
      const count = 1 + this.rnd.int(this.targets.banks.length);
      const blocked = shuffle(this.rnd, this.targets.banks).slice(0, count).sort();
      return { lane: 'service', index, kind, target, blocked, gapMs, holdMs: between(this.rnd, RANGES.servicePartition), tearBytes: 0 };
    }
    const target = this.rnd.pick([...this.targets.coordinators, ...this.targets.banks]);
    const holdMs = between(this.rnd, kind === 'pause' ? RANGES.servicePause : RANGES.kill);
    return { lane: 'service', index, kind: kind === 'partition' ? 'kill' : kind, target, blocked: [], gapMs, holdMs, tearBytes: 0 };
  }
}

function between(rnd: SeededRandom, [min, max]: readonly [number, number]): number {
  return min + rnd.int(max - min);
}

function shuffle<T>(rnd: SeededRandom, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** A fault as one line for logs and the progress line. */
export function describeFault(f: PlannedFault, resolvedTarget: string = f.target): string {
  const who = f.target === 'leader' ? `${resolvedTarget} (leader)` : resolvedTarget;
  switch (f.kind) {
    case 'kill':
      return `kill -9 ${who}`;
    case 'pause':
      return `pause ${who}`;
    case 'partition':
      return f.lane === 'store' ? `isolate ${who}` : `cut ${who} -> ${f.blocked.join('+')}`;
    case 'disk':
      return `torn WAL ${who} (-${f.tearBytes} B)`;
  }
}
