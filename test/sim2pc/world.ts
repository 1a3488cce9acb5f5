/**
 * The simulated world: one clock, one queue of events in a fixed order (so a
 * seed replays exactly), and the base class of a process that can crash at
 * any moment and restart from what it made durable.
 */
import { assert } from '../../lib/assert.js';
import type { SeededRandom } from '../../lib/random.js';
import { sleepWith, type Cancel, type Timers } from '../../lib/timers.js';
import type { Checker } from './checker.js';
import type { Knobs, Mutation } from './knobs.js';

/** Epoch ms at simulated time 0: what the machines see as `nowMs`. */
export const T0 = 1_700_000_000_000;

/** The events of one simulated millisecond, in the order they were scheduled. */
interface Bucket {
  readonly fns: (() => void)[];
  next: number;
}

/** Events by simulated millisecond (times are whole ms). Finding the next one walks forward over empty milliseconds, so a run costs its events plus its simulated ms. */
export class EventQueue {
  private readonly buckets = new Map<number, Bucket>();
  /** Simulated ms; moves only forward, to the time of the event being run. */
  now = 0;

  at(atMs: number, fn: () => void): void {
    const t = Math.max(atMs, this.now);
    assert(Number.isInteger(t), `events are scheduled at whole ms, not ${t}`);
    const b = this.buckets.get(t);
    if (b === undefined) this.buckets.set(t, { fns: [fn], next: 0 });
    else b.fns.push(fn);
  }

  /** Removes and returns the next event due at or before `untilMs`, advancing the clock to it. */
  pop(untilMs: number): (() => void) | undefined {
    for (let t = this.now; t <= untilMs; t++) {
      const b = this.buckets.get(t);
      if (b === undefined) continue;
      const fn = b.fns[b.next++];
      if (b.next === b.fns.length) this.buckets.delete(t);
      this.now = t;
      return fn;
    }
    return undefined;
  }
}

/** Named counters, printed in the CLI's totals (coverage of failpoints, faults, outcomes). */
export class Counters {
  readonly values = new Map<string, number>();
  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
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
  /** The seed's knobs, and the bug planted at a seam in this run. */
  readonly knobs: Knobs;
  readonly mutation: Mutation | undefined;
  /** True while faults are injected, false once the simulation healed. */
  readonly chaos: boolean;
  /** Fails the run at the next step (a failure found inside a callback or a rejected promise). */
  fail(e: Error): void;
  /** Runs a check from inside a runtime's callback: a violation fails the run, whatever the runtime does with the throw. */
  check(hook: (checker: Checker) => void): void;
  /** A runtime logged an error, or an assertion at any level: an assertion or a corrupt value is a bug; the rest is counted. */
  runtimeError(who: string, message: string, fields: Readonly<Record<string, unknown>> | undefined): void;
}

/**
 * A process with incarnations: every callback, packet and disk write is tied
 * to one, so a crash needs no unwinding: the dead incarnation's code simply
 * never hears from the world again. Durable state lives outside its volatile
 * fields (its simulated disk).
 */
export abstract class Proc {
  private incarnationNo = 0;
  private up = false;
  /** The Timers the real runtime of this incarnation is given. */
  timers: SimTimers;

  constructor(
    readonly name: string,
    protected readonly world: World,
    /** Chance that a periodic timer firing is missed (a slow clock). */
    private readonly skipTickChance = 0,
  ) {
    this.timers = new SimTimers(this, world, 0, skipTickChance);
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

  /** Runs `fn` after `delayMs` unless this incarnation died. */
  after(delayMs: number, fn: () => void): Cancel {
    return this.timers.after(delayMs, fn);
  }

  start(): void {
    this.incarnationNo++;
    this.up = true;
    this.timers = new SimTimers(this, this.world, this.incarnationNo, this.skipTickChance);
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
   * A runtime's failpoint (its FailpointHook): the process may die here.
   * Nothing is thrown: the code after it runs on in a dead incarnation the
   * world ignores, which is what a SIGKILL leaves of it.
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
 * With `skipTickChance`, `every` misses a firing now and then (a slow clock).
 */
export class SimTimers implements Timers {
  constructor(
    private readonly proc: Proc,
    private readonly world: World,
    private readonly inc: number,
    private readonly skipTickChance = 0,
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
      if (this.skipTickChance === 0 || !this.world.random.chance(this.skipTickChance)) fn();
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
