/**
 * The simulated world every 2PC actor lives in: one clock, one ordered queue
 * of future events, one SeededRandom, and the base class of a process that
 * can crash at any moment and restart from what it made durable.
 *
 * Time is simulated milliseconds. Events at the same millisecond run in the
 * order they were scheduled (a sequence number breaks ties), so a seed
 * replays exactly. Nothing here reads the wall clock or Math.random.
 */
import type { SeededRandom } from '../../lib/random.js';
import { sleepWith, type Cancel, type Timers } from '../../lib/timers.js';

/** Epoch ms at simulated time 0: what the machines see as `nowMs`. */
export const T0 = 1_700_000_000_000;

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A binary min-heap of events by (time, sequence). */
export class EventQueue {
  private readonly heap: Scheduled[] = [];
  private seq = 0;
  /** Simulated ms; moves only forward, to the time of the event being run. */
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  at(atMs: number, fn: () => void): void {
    const item: Scheduled = { at: Math.max(atMs, this.now), seq: this.seq++, fn };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, h[parent] as Scheduled)) break;
      h[i] = h[parent] as Scheduled;
      i = parent;
    }
    h[i] = item;
  }

  /** Removes and returns the next event due at or before `untilMs`, advancing the clock to it. */
  pop(untilMs: number): (() => void) | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined || top.at > untilMs) return undefined;
    const last = h.pop() as Scheduled;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let best = last;
        if (l < h.length && before(h[l] as Scheduled, best)) {
          m = l;
          best = h[l] as Scheduled;
        }
        if (r < h.length && before(h[r] as Scheduled, best)) m = r;
        if (m === i) break;
        h[i] = h[m] as Scheduled;
        i = m;
      }
      h[i] = last;
    }
    this.now = top.at;
    return top.fn;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Named counters, printed in the CLI's totals (coverage of failpoints, faults, outcomes). */
export class Counters {
  readonly values = new Map<string, number>();
  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }
  get(name: string): number {
    return this.values.get(name) ?? 0;
  }
}

/** What every actor shares. */
export interface World {
  readonly queue: EventQueue;
  readonly random: SeededRandom;
  readonly counters: Counters;
  /** True when a trace is kept: build trace lines only then. */
  readonly tracing: boolean;
  trace(line: string): void;
  /** Feeds the run's digest (every packet and event time): two runs of one seed must agree on it. */
  digest(text: string): void;
  /** A failpoint's chance of crashing its process at this hit (0 when faults are off). */
  failpointChance(name: string): number;
  /** Called when a process dies (failpoint or injected crash); the fault injector schedules its restart. */
  onCrash(proc: Proc, reason: string): void;
}

/**
 * A process: volatile state dies with it, durable state is whatever the
 * subclass keeps outside its volatile fields (its simulated disk). Every
 * callback it schedules, every packet it receives and every disk write it
 * makes is tied to its incarnation, so nothing from before a crash has any
 * effect after it: a crash needs no unwinding, the dead incarnation's code
 * simply never hears from the world again.
 */
export abstract class Proc {
  private incarnationNo = 0;
  private up = false;
  /** The Timers the real runtime of this incarnation is given. */
  timers: SimTimers;

  constructor(
    readonly name: string,
    protected readonly world: World,
  ) {
    this.timers = new SimTimers(this, world, 0);
  }

  get alive(): boolean {
    return this.up;
  }

  get incarnation(): number {
    return this.incarnationNo;
  }

  /** True while incarnation `inc` of this process is the running one. */
  isLive(inc: number): boolean {
    return this.up && this.incarnationNo === inc;
  }

  /** A line in the run's trace (built only when tracing). */
  trace(line: () => string): void {
    if (this.world.tracing) this.world.trace(`${this.name} ${line()}`);
  }

  count(name: string, by = 1): void {
    this.world.counters.inc(name, by);
  }

  /** Runs `fn` after `delayMs` unless this incarnation died. */
  after(delayMs: number, fn: () => void): Cancel {
    return this.timers.after(delayMs, fn);
  }

  start(): void {
    this.incarnationNo++;
    this.up = true;
    this.timers = new SimTimers(this, this.world, this.incarnationNo);
    this.onStart();
  }

  kill(reason: string): void {
    if (!this.up) return;
    this.up = false;
    this.incarnationNo++;
    this.onKill();
    this.world.trace(`${this.name} crashes (${reason})`);
    this.world.onCrash(this, reason);
  }

  /**
   * A named crash point (the runtimes' failpoints, through their
   * FailpointHook): the process may die right here. Nothing is thrown: the
   * code after the hit runs on in a dead incarnation whose writes, sends and
   * timers the world ignores, which is what a SIGKILL leaves of it.
   */
  failpoint(name: string): void {
    if (!this.up) return;
    this.world.counters.inc(`hit ${name}`);
    const p = this.world.failpointChance(name);
    if (p <= 0 || !this.world.random.chance(p)) return;
    this.world.counters.inc(`crash ${name}`);
    this.kill(`failpoint ${name}`);
  }

  protected abstract onStart(): void;
  protected abstract onKill(): void;
}

/**
 * lib/timers.ts's Timers on simulated time, for one process incarnation:
 * `soon` runs after the current event (and its promise callbacks), `after`
 * at a later simulated millisecond; nothing runs once the incarnation died.
 */
export class SimTimers implements Timers {
  constructor(
    private readonly proc: Proc,
    private readonly world: World,
    private readonly inc: number,
  ) {}

  nowMs(): number {
    return T0 + this.world.queue.now;
  }

  monotonicMs(): number {
    return this.world.queue.now;
  }

  after(delayMs: number, fn: () => void): Cancel {
    let cancelled = false;
    this.world.queue.at(this.world.queue.now + Math.max(0, Math.round(delayMs)), () => {
      if (!cancelled && this.proc.isLive(this.inc)) fn();
    });
    return () => {
      cancelled = true;
    };
  }

  every(intervalMs: number, fn: () => void): Cancel {
    let cancelled = false;
    const tick = (): void => {
      if (cancelled) return;
      this.after(intervalMs, tick);
      fn();
    };
    this.after(intervalMs, tick);
    return () => {
      cancelled = true;
    };
  }

  soon(fn: () => void): void {
    this.after(0, fn);
  }

  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, delayMs, signal);
  }
}
