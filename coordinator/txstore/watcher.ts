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
import { AssertionError } from '../../lib/assert.js';
import type { Random } from '../../lib/random.js';
import type { Logger } from '../../lib/logger.js';
import { backoffDelayMs, type BackoffPolicy } from '../../lib/retry.js';
import type { Timers } from '../../lib/timers.js';
import { isRetryableStoreError, TxStoreError, type TxStore, type TxWatchEvent } from './txstore.js';

export interface PrefixWatcherOptions {
  readonly store: TxStore;
  readonly prefix: string;
  /** Only keys matching one of these patterns (WatchOptions.match). */
  readonly match?: readonly string[];
  readonly onEvent: (e: TxWatchEvent) => void;
  /** History was lost: re-read every key of interest from the store. */
  readonly onResync: () => void;
  readonly random: Random;
  /** The waits between reconnects (a simulation runs them on its own time). */
  readonly timers: Pick<Timers, 'sleep'>;
  readonly log: Logger;
  readonly backoff?: BackoffPolicy;
}

/** Reconnects never stop while the watcher runs; they back off from 50 ms up to 2 s. */
const DEFAULT_WATCH_BACKOFF: BackoffPolicy = Object.freeze({ maxAttempts: Infinity, baseMs: 50, maxMs: 2_000 });

export class PrefixWatcher {
  private readonly ac = new AbortController();
  private next = 0;
  private loop: Promise<void> | undefined;
  /** Revision of the last event delivered. */
  delivered = 0;

  constructor(private readonly opts: PrefixWatcherOptions) {}

  /**
   * Pins the start revision (so nothing after this call is missed) and
   * starts streaming. A store that does not answer yet is waited for, with
   * the reconnect backoff: a process started before its store, or during an
   * election, comes up when the store does (the 2PC simulation found a
   * coordinator that died at start instead).
   */
  async start(): Promise<number> {
    this.next = (await this.pinStart()) + 1;
    this.delivered = this.next - 1;
    this.loop = this.run();
    return this.next - 1;
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }

  private async pinStart(): Promise<number> {
    const policy = this.opts.backoff ?? DEFAULT_WATCH_BACKOFF;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.currentRevision();
      } catch (e) {
        if (this.ac.signal.aborted || !isRetryableStoreError(e)) throw e;
        this.opts.log('warn', 'the store did not answer the watch start; retrying', { prefix: this.opts.prefix, error: e });
        await this.opts.timers.sleep(backoffDelayMs(attempt, policy, this.opts.random), this.ac.signal);
      }
    }
  }

  private async currentRevision(): Promise<number> {
    return (await this.opts.store.range(this.opts.prefix, { limit: 1 })).revision;
  }

  private async run(): Promise<void> {
    const policy = this.opts.backoff ?? DEFAULT_WATCH_BACKOFF;
    let failures = 0;
    while (!this.ac.signal.aborted) {
      try {
        for await (const e of this.opts.store.watch(this.opts.prefix, { fromRevision: this.next, signal: this.ac.signal, ...(this.opts.match === undefined ? {} : { match: this.opts.match }) })) {
          failures = 0;
          this.next = e.revision + 1;
          this.delivered = e.revision;
          this.opts.onEvent(e);
        }
      } catch (e) {
        if (this.ac.signal.aborted) return;
        // A broken invariant in a consumer is a bug, not a watch failure: never retried past (fail-stop).
        if (e instanceof AssertionError) throw e;
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
        await this.opts.timers.sleep(backoffDelayMs(failures++, policy, this.opts.random), this.ac.signal);
      }
    }
  }
}
