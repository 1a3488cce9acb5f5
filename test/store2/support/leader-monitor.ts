/**
 * Election safety observed from outside: polls GET /v1/status of every node
 * at a fixed interval and records, per term, which nodes said "I am leader"
 * and which leader the others named. At most one leader per term, ever.
 */
import { delay } from './poll.js';

export class LeaderMonitor {
  /** term -> ids of nodes that reported role=leader in that term. */
  readonly selfReported = new Map<number, Set<string>>();
  /** term -> leader ids named by any node (leaderId) in that term. */
  readonly named = new Map<number, Set<string>>();
  samples = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly urls: () => readonly string[],
    private readonly intervalMs = 20,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await Promise.all(this.urls().map((u) => this.sample(u)));
        await delay(this.intervalMs);
      }
    })();
  }

  private async sample(url: string): Promise<void> {
    try {
      const res = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(1_000) });
      const st = (await res.json()) as { id: string; role: string; term: number; leaderId: string | null };
      this.samples++;
      if (st.role === 'leader') add(this.selfReported, st.term, st.id);
      if (st.leaderId !== null) add(this.named, st.term, st.leaderId);
    } catch {
      // down or busy: no sample
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Terms in which more than one leader was seen (self-reported or named). */
  violations(): string[] {
    const out: string[] = [];
    for (const [what, map] of [['self-reported', this.selfReported], ['named', this.named]] as const) {
      for (const [term, ids] of map) if (ids.size > 1) out.push(`term ${term}: ${what} leaders ${[...ids].join(',')}`);
    }
    return out;
  }

  /** term -> leader, for the report. */
  summary(): string {
    return [...this.selfReported.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([t, ids]) => `${t}:${[...ids].join('|')}`)
      .join(' ');
  }
}

function add(map: Map<number, Set<string>>, term: number, id: string): void {
  let s = map.get(term);
  if (!s) map.set(term, (s = new Set()));
  s.add(id);
}
