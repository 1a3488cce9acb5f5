/**
 * Once a second, beside the load: the store's term and leader (elections
 * counted by ElectionCounter) and every process's RSS (VmRSS in
 * /proc/<pid>/status, read by pid). Keeps each process's highest RSS of the
 * current interval, and the samples themselves for the report's chart. A
 * process the soak started that is gone is reported once, by name.
 */
import { readFileSync } from 'node:fs';
import { keepAliveTimers } from '../../lib/timers.js';
import { ElectionCounter, type StoreObserver, type StoreStatus } from './store-status.js';

export interface ProcRef {
  readonly name: string;
  readonly pid: () => number | undefined;
}

export interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly term: number | null;
  readonly leader: string | null;
  /** MB by process name; null where /proc could not tell. */
  readonly rssMb: Readonly<Record<string, number | null>>;
}

/** Resident set size of a process in bytes (VmRSS), or undefined when it is gone or /proc cannot tell. */
export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1_024;
  } catch {
    return undefined;
  }
}

export class Sampler {
  readonly samples: Sample[] = [];
  readonly elections = new ElectionCounter();
  private intervalMax = new Map<string, number>();
  private lastStatus: StoreStatus = { term: null, leader: null, reachable: 0 };
  private readonly gone = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly procs: readonly ProcRef[],
    private readonly store: StoreObserver,
    /** Seconds since the load started. */
    private readonly nowS: () => number,
    /** A process the soak started exited (called once per process). */
    private readonly onGone: (name: string) => void,
    private readonly everyMs = 1_000,
  ) {}

  get status(): StoreStatus {
    return this.lastStatus;
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.sampleOnce();
        await keepAliveTimers.sleep(this.everyMs);
      }
    })();
  }

  async sampleOnce(): Promise<void> {
    const rssMb: Record<string, number | null> = {};
    for (const p of this.procs) {
      const bytes = rssBytes(p.pid());
      rssMb[p.name] = bytes === undefined ? null : bytes / 2 ** 20;
      if (bytes !== undefined) this.intervalMax.set(p.name, Math.max(this.intervalMax.get(p.name) ?? 0, bytes / 2 ** 20));
      else if (!this.gone.has(p.name)) {
        this.gone.add(p.name);
        this.onGone(p.name);
      }
    }
    const status = await this.store.status();
    this.lastStatus = status;
    this.elections.observe(status.term);
    this.samples.push({ t: this.nowS(), term: status.term, leader: status.leader, rssMb });
  }

  /** Each process's highest RSS (MB) since the last call; null for a process never read. */
  takeIntervalRss(): Record<string, number | null> {
    const out = Object.fromEntries(this.procs.map((p) => [p.name, this.intervalMax.get(p.name) ?? null]));
    this.intervalMax = new Map();
    return out;
  }

  /** Processes that exited, by name. */
  get exited(): string[] {
    return [...this.gone];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
