/**
 * The shared prefix watch of a simulated process, mirroring
 * coordinator/txstore/watcher.ts: pin the start revision with a read, then deliver
 * every change under the prefix in revision order, resuming by revision
 * from any node (the history is the committed log, so there is no gap and
 * no duplicate); on `compacted` restart from the current revision and tell
 * the owner to re-read what it cares about.
 *
 * The real watch is a server-sent event stream; here it is a poll every
 * `pollMs` (each poll a request that can be lost like any other), which
 * gives the same order and the same guarantees.
 */
import type { Random } from '../../lib/random.js';
import { backoffDelayMs } from '../../lib/retry.js';
import type { TxWatchEvent } from '../../coordinator/txstore/txstore.js';
import type { SimStore } from './store-client.js';
import type { Proc } from './world.js';

export interface WatcherOptions {
  readonly prefix: string;
  readonly pollMs: number;
  /** Events per poll. */
  readonly pageEvents: number;
  readonly onEvent: (e: TxWatchEvent) => void;
  readonly onResync: () => void;
}

const failureBackoff = { maxAttempts: Infinity, baseMs: 20, maxMs: 500 };

export class SimWatcher {
  private next = 0;
  private failures = 0;

  constructor(
    private readonly proc: Proc,
    private readonly store: SimStore,
    private readonly random: Random,
    private readonly opts: WatcherOptions,
  ) {}

  /** Pins the start revision (nothing after it is missed), then calls `started` and streams. */
  start(started: () => void): void {
    this.pinRevision(() => {
      started();
      this.poll();
    });
  }

  private pinRevision(then: () => void): void {
    this.store.range(this.opts.prefix, { limit: 1 }, (o) => {
      if (!o.ok) {
        this.proc.after(backoffDelayMs(this.failures++, failureBackoff, this.random), () => this.pinRevision(then));
        return;
      }
      this.failures = 0;
      this.next = o.value.revision + 1;
      then();
    });
  }

  private poll(): void {
    this.store.events(this.opts.prefix, this.next, this.opts.pageEvents, (o) => {
      if (!o.ok) {
        if (o.code === 'compacted') {
          this.proc.count('watch resyncs');
          this.proc.trace(() => `watch compacted at ${this.next}: resync`);
          this.pinRevision(() => {
            this.opts.onResync();
            this.poll();
          });
          return;
        }
        this.proc.after(backoffDelayMs(this.failures++, failureBackoff, this.random), () => this.poll());
        return;
      }
      this.failures = 0;
      const r = o.value;
      for (const e of r.events) {
        if (e.revision < this.next) continue; // a duplicated reply: already delivered
        this.next = e.revision + 1;
        this.opts.onEvent({ type: e.type, key: e.key, value: e.type === 'delete' ? null : e.value, revision: e.revision });
      }
      this.next = Math.max(this.next, r.nextRevision);
      if (r.more) this.poll();
      else this.proc.after(this.opts.pollMs, () => this.poll());
    });
  }
}
