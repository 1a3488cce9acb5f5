/**
 * Watches one key on several nodes by polling serializable reads (each node's
 * own replica) at a fine interval, and records per node the send time of the
 * last read that still saw the key and the receive time of the first read
 * that did not. All times are this process's monotonic clock (poll.ts now()).
 *
 * Sound bounds from these samples: the key was deleted on that node after
 * `lastPresentSentAt` and before `firstAbsentAt`. A 404 before the node has
 * shown the key once is replication lag, not a deletion, and is ignored.
 */
import { delay, now } from './poll.js';

export interface Presence {
  /** Receive time of the first read that answered 404, if any. */
  firstAbsentAt?: number;
  /** Send time of the last read that answered 200 (-Infinity if none). */
  lastPresentSentAt: number;
  samples: number;
  errors: number;
  /** Longest time between two consecutive read sends (how fine the polling really was). */
  maxGapMs: number;
}

const active = new Set<PresencePoller>();

/** Stops every poller still running (for afterAll, after a failed test). */
export async function stopAllPollers(): Promise<void> {
  await Promise.all([...active].map((p) => p.stop()));
}

export class PresencePoller {
  readonly byNode = new Map<string, Presence>();
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly key: string,
    private readonly nodes: ReadonlyMap<string, string>,
    private readonly intervalMs = 5,
  ) {}

  start(): this {
    active.add(this);
    for (const [id, url] of this.nodes) {
      const p: Presence = { lastPresentSentAt: -Infinity, samples: 0, errors: 0, maxGapMs: 0 };
      this.byNode.set(id, p);
      this.loops.push(this.run(url, p));
    }
    return this;
  }

  private async run(url: string, p: Presence): Promise<void> {
    const target = `${url}/v1/kv/${encodeURIComponent(this.key)}?consistency=serializable`;
    let prevSent: number | undefined;
    while (!this.stopped && p.firstAbsentAt === undefined) {
      const sent = now();
      if (prevSent !== undefined) p.maxGapMs = Math.max(p.maxGapMs, sent - prevSent);
      prevSent = sent;
      try {
        const res = await fetch(target, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        const received = now();
        p.samples++;
        if (res.status === 200) p.lastPresentSentAt = sent;
        // A 404 before the first 200 is a replica that has not applied the write yet, not a deletion.
        else if (res.status === 404) {
          if (p.lastPresentSentAt > -Infinity) p.firstAbsentAt = received;
        } else p.errors++;
      } catch {
        p.errors++;
      }
      await delay(this.intervalMs);
    }
  }

  /** True once every node has shown the key at least once. */
  allSeen(): boolean {
    return [...this.byNode.values()].every((p) => p.lastPresentSentAt > -Infinity);
  }

  /** True once every node has answered 404 after showing the key. */
  allAbsent(): boolean {
    return [...this.byNode.values()].every((p) => p.firstAbsentAt !== undefined);
  }

  anyAbsent(): boolean {
    return [...this.byNode.values()].some((p) => p.firstAbsentAt !== undefined);
  }

  async stop(): Promise<void> {
    active.delete(this);
    this.stopped = true;
    await Promise.all(this.loops);
  }
}
