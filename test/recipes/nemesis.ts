/**
 * The fencing test's nemesis: seeded faults on real processes, one at a
 * time, each held, lifted, and followed by a wait until the cluster is whole
 * again. Store members (fault-targets.ts) are SIGKILLed and restarted,
 * SIGSTOPped past the lease TTL, or cut from their peers; lock
 * holders (client processes) are SIGSTOPped past their lease, Kleppmann's
 * paused client. Every pause is resumed and every partition healed in
 * `finally`, whatever happens.
 */
import type { Random } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import type { FaultTarget } from './fault-targets.js';

export type FaultKind = 'kill-store' | 'pause-store' | 'partition-store' | 'pause-holder';
export type FaultCounts = Record<FaultKind | 'skipped', number>;

interface PlannedFault {
  readonly gapMs: number;
  readonly kind: FaultKind;
  readonly node: string;
  readonly holdMs: number;
  /** Which lock holder to pause, as a fraction of those holding at the time. */
  readonly pick: number;
}

/** The default mix: lock holders paused as often as the three store faults together. */
export const ALL_FAULTS: readonly FaultKind[] = ['kill-store', 'pause-store', 'partition-store', 'pause-holder', 'pause-holder', 'pause-holder'];
const MAX_FAULTS = 1_000;
/** How long to look for a lock holder to pause: polls of the workers' reported state. */
const HOLDER_POLLS = 100;
const HOLDER_POLL_MS = 20;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited meanwhile
  }
}

export class Nemesis {
  private readonly paused = new Set<number>();
  private readonly partitioned = new Set<string>();
  readonly counts: FaultCounts = { 'kill-store': 0, 'pause-store': 0, 'partition-store': 0, 'pause-holder': 0, skipped: 0 };

  constructor(
    private readonly target: FaultTarget,
    private readonly random: Random,
    private readonly ttlMs: number,
    /** Pids of the client processes holding the lock right now. */
    private readonly holders: () => number[],
    private readonly kinds: readonly FaultKind[] = ALL_FAULTS,
    private readonly log: (line: string) => void = (l) => console.log(l),
  ) {}

  async run(durationMs: number): Promise<FaultCounts> {
    const deadline = Date.now() + durationMs;
    try {
      for (let i = 0; i < MAX_FAULTS && Date.now() < deadline; i++) {
        const f = this.draw();
        await systemTimers.sleep(f.gapMs);
        await this.inject(f);
        await this.target.whole();
      }
    } finally {
      this.healAll();
    }
    return this.counts;
  }

  /** Every random number of one fault, drawn up front: a seed gives the same schedule whatever the processes do. */
  private draw(): PlannedFault {
    const r = this.random;
    return { gapMs: 200 + r.int(600), kind: this.kinds[r.int(this.kinds.length)] as FaultKind, node: this.target.ids[r.int(this.target.ids.length)] as string, holdMs: 1_000 + r.int(2_000), pick: r.float() };
  }

  private async inject({ kind, node, holdMs, pick }: PlannedFault): Promise<void> {
    if ((kind === 'kill-store' && !this.target.killable(node)) || (kind === 'partition-store' && this.target.partition === undefined)) {
      this.counts.skipped++;
      return;
    }
    if (kind === 'kill-store') {
      this.log(`nemesis: SIGKILL ${node}`);
      await this.target.kill(node);
      await systemTimers.sleep(holdMs / 2);
      await this.target.restart(node);
    } else if (kind === 'pause-store') {
      await this.pause(this.target.pid(node), `store ${node}`);
    } else if (kind === 'partition-store') {
      await this.partition(node, holdMs);
    } else {
      const pid = await this.someHolder(pick);
      if (pid === undefined) {
        this.counts.skipped++;
        return;
      }
      await this.pause(pid, `lock holder pid ${pid}`);
    }
    this.counts[kind]++;
  }

  /** A lock holder's pid, waiting a little for one (between holds nobody holds the lock). */
  private async someHolder(pick: number): Promise<number | undefined> {
    for (let i = 0; i < HOLDER_POLLS; i++) {
      const pids = this.holders();
      if (pids.length > 0) return pids[Math.floor(pick * pids.length)];
      await systemTimers.sleep(HOLDER_POLL_MS);
    }
    return undefined;
  }

  /** SIGSTOP past the lease: 2.5 TTLs, then SIGCONT. */
  private async pause(pid: number | undefined, what: string): Promise<void> {
    if (pid === undefined) return;
    this.log(`nemesis: SIGSTOP ${what} for ${Math.round(this.ttlMs * 2.5)} ms`);
    this.paused.add(pid);
    signal(pid, 'SIGSTOP');
    await systemTimers.sleep(this.ttlMs * 2.5);
    signal(pid, 'SIGCONT');
    this.paused.delete(pid);
  }

  private async partition(node: string, holdMs: number): Promise<void> {
    this.log(`nemesis: partition ${node} from its peers`);
    this.partitioned.add(node);
    await this.target.partition?.(node);
    await systemTimers.sleep(holdMs);
    await this.target.heal?.(node);
    this.partitioned.delete(node);
  }

  private healAll(): void {
    for (const pid of this.paused) signal(pid, 'SIGCONT');
    for (const node of this.partitioned) void this.target.heal?.(node).catch(() => undefined);
  }
}
