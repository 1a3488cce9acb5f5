/**
 * One watch over a key prefix (`tx/`), shared by everything a process
 * drives: each coordinator and each participant opens one stream, not one
 * per transaction. Events arrive in revision order with no gaps (the store's
 * promise, kept across reconnects by the client).
 *
 * Whoever registers interest in a transaction AFTER the watch started must
 * close the gap itself: register first, then read a snapshot at revision R
 * and apply only watched events newer than R (the runtimes do this). If the
 * store answers `compacted` (this watcher fell further behind than the kept
 * history), the watcher restarts from the current revision and calls
 * `onResync`, and every holder re-reads what it cares about.
 */
import type { Random } from '../../lib/random.js';
import type { Logger } from '../../lib/logger.js';
import { backoffDelayMs, sleep, type BackoffPolicy } from '../../lib/retry.js';
import { TxStoreError, type TxStore, type TxWatchEvent } from './txstore.js';

export interface PrefixWatcherOptions {
  readonly store: TxStore;
  readonly prefix: string;
  readonly onEvent: (e: TxWatchEvent) => void;
  /** History was lost: re-read every key of interest from the store. */
  readonly onResync: () => void;
  readonly random: Random;
  readonly log: Logger;
  readonly backoff?: BackoffPolicy;
}

export class PrefixWatcher {
  private readonly ac = new AbortController();
  private next = 0;
  private loop: Promise<void> | undefined;
  /** Revision of the last event delivered. */
  delivered = 0;

  constructor(private readonly opts: PrefixWatcherOptions) {}

  /** Pins the start revision (so nothing after this call is missed) and starts streaming. */
  async start(): Promise<number> {
    this.next = (await this.currentRevision()) + 1;
    this.delivered = this.next - 1;
    this.loop = this.run();
    return this.next - 1;
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }

  private async currentRevision(): Promise<number> {
    return (await this.opts.store.range(this.opts.prefix, { limit: 1 })).revision;
  }

  private async run(): Promise<void> {
    const policy = this.opts.backoff ?? { maxAttempts: Infinity, baseMs: 50, maxMs: 2_000 };
    let failures = 0;
    while (!this.ac.signal.aborted) {
      try {
        for await (const e of this.opts.store.watch(this.opts.prefix, { fromRevision: this.next, signal: this.ac.signal })) {
          failures = 0;
          this.next = e.revision + 1;
          this.delivered = e.revision;
          this.opts.onEvent(e);
        }
      } catch (e) {
        if (this.ac.signal.aborted) return;
        if (e instanceof TxStoreError && e.code === 'compacted') {
          this.opts.log('warn', 'watch history compacted; resynchronizing', { prefix: this.opts.prefix, from: this.next });
          try {
            this.next = (await this.currentRevision()) + 1;
            this.opts.onResync();
            continue;
          } catch (e2) {
            e = e2;
          }
        }
        this.opts.log('warn', 'watch failed; retrying', { prefix: this.opts.prefix, error: e });
        await sleep(backoffDelayMs(failures++, policy, this.opts.random), this.ac.signal);
      }
    }
  }
}
