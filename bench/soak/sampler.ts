/**
 * Once a second, beside the load: the store's term and leader (elections
 * counted by ElectionCounter) and every process's RSS (VmRSS in
 * /proc/<pid>/status, read by pid) and RssAnon (the same without file pages:
 * a store node on LMDB maps its database, and VmRSS counts the OS cache's
 * pages of it). Keeps each process's highest of both in the current
 * interval, and the samples themselves for the report's chart. A process the
 * soak started that is gone is reported once, by name.
 */
import { keepAliveTimers } from '../../lib/timers.js';
import { procMemory } from '../proc-memory.js';
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
  /** RssAnon, MB by process name. */
  readonly anonMb: Readonly<Record<string, number | null>>;
}

export class Sampler {
  readonly samples: Sample[] = [];
  readonly elections = new ElectionCounter();
  private intervalMax = new Map<string, number>();
  private intervalAnonMax = new Map<string, number>();
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
    const anonMb: Record<string, number | null> = {};
    for (const p of this.procs) {
      const pid = p.pid();
      const { rssMb: rss, rssAnonMb: anon } = pid === undefined ? { rssMb: null, rssAnonMb: null } : procMemory(pid);
      rssMb[p.name] = rss;
      anonMb[p.name] = rss === null ? null : (anon ?? rss);
      if (rss !== null) {
        this.intervalMax.set(p.name, Math.max(this.intervalMax.get(p.name) ?? 0, rss));
        this.intervalAnonMax.set(p.name, Math.max(this.intervalAnonMax.get(p.name) ?? 0, anon ?? rss));
      } else if (!this.gone.has(p.name)) {
        this.gone.add(p.name);
        this.onGone(p.name);
      }
    }
    const status = await this.store.status();
    this.lastStatus = status;
    this.elections.observe(status.term);
    this.samples.push({ t: this.nowS(), term: status.term, leader: status.leader, rssMb, anonMb });
  }

  /** Each process's highest RSS and RssAnon (MB) since the last call; null for a process never read. */
  takeIntervalRss(): { rssMb: Record<string, number | null>; anonMb: Record<string, number | null> } {
    const of = (m: Map<string, number>): Record<string, number | null> => Object.fromEntries(this.procs.map((p) => [p.name, m.get(p.name) ?? null]));
    const out = { rssMb: of(this.intervalMax), anonMb: of(this.intervalAnonMax) };
    this.intervalMax = new Map();
    this.intervalAnonMax = new Map();
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
