/**
 * A steady random load of transfers (the page's "Run load" button): a few
 * workers, each running one transfer at a time between two random accounts
 * of any banks, until stopped or until the duration cap. Counts what
 * happened and the rate over the last few seconds.
 */
import { AppError } from '../../lib/errors.js';
import { systemRandom, type Random } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import type { AccountRef, TransferRequest, TxOutcome } from './transfers.js';

export interface LoadStats {
  readonly running: boolean;
  readonly concurrency: number;
  readonly started: number;
  readonly committed: number;
  readonly aborted: number;
  /** Transfers that got no outcome (no coordinator answered in time). */
  readonly failed: number;
  /** Transfers finished per second, over the last RATE_WINDOW_MS. */
  readonly ratePerSec: number;
  readonly startedAt: number | null;
  readonly stoppedAt: number | null;
  readonly lastAbortReason: string | null;
  readonly lastError: string | null;
}

export const MAX_CONCURRENCY = 16;
export const MAX_LOAD_DURATION_MS = 30 * 60_000;
const RATE_WINDOW_MS = 5_000;
const MAX_AMOUNT = 100;

export class LoadRunner {
  private ac: AbortController | undefined;
  private workers: Promise<void>[] = [];
  private concurrency = 0;
  private counts = { started: 0, committed: 0, aborted: 0, failed: 0 };
  private finishedAt: number[] = [];
  private startedAt: number | null = null;
  private stoppedAt: number | null = null;
  private lastAbortReason: string | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly transfer: (r: TransferRequest) => Promise<TxOutcome>,
    /** Every account the load may use, as last seen. */
    private readonly accounts: () => readonly AccountRef[],
    private readonly random: Random = systemRandom,
  ) {}

  get running(): boolean {
    return this.workers.length > 0;
  }

  start(concurrency: number, durationMs: number = MAX_LOAD_DURATION_MS): LoadStats {
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) throw new AppError('invalid_concurrency', 400, `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
    if (!Number.isInteger(durationMs) || durationMs < 1 || durationMs > MAX_LOAD_DURATION_MS) throw new AppError('invalid_duration', 400, `durationMs must be an integer from 1 to ${MAX_LOAD_DURATION_MS}`);
    if (this.running) throw new AppError('load_running', 409, 'a load is running already; stop it first');
    const ac = new AbortController();
    this.ac = ac;
    this.concurrency = concurrency;
    this.counts = { started: 0, committed: 0, aborted: 0, failed: 0 };
    this.finishedAt = [];
    this.lastAbortReason = null;
    this.lastError = null;
    this.startedAt = Date.now();
    this.stoppedAt = null;
    const endAt = Date.now() + durationMs;
    const workers = Array.from({ length: concurrency }, () => this.worker(ac.signal, endAt));
    this.workers = workers;
    void Promise.all(workers).then(() => {
      if (this.workers === workers) {
        this.workers = [];
        this.stoppedAt = Date.now();
      }
    });
    return this.stats();
  }

  /** Asks the workers to stop; each finishes the transfer it is running (bounded by that transfer's timeouts). */
  stop(): LoadStats {
    this.ac?.abort();
    return this.stats();
  }

  /** Resolves once every worker has finished. */
  async idle(): Promise<void> {
    await Promise.all(this.workers);
  }

  stats(): LoadStats {
    const now = Date.now();
    this.finishedAt = this.finishedAt.filter((t) => t > now - RATE_WINDOW_MS);
    const windowMs = Math.min(RATE_WINDOW_MS, Math.max(1, now - (this.startedAt ?? now)));
    return {
      running: this.running,
      concurrency: this.concurrency,
      ...this.counts,
      ratePerSec: Math.round((this.finishedAt.length / windowMs) * 10_000) / 10,
      startedAt: this.startedAt,
      stoppedAt: this.stoppedAt,
      lastAbortReason: this.lastAbortReason,
      lastError: this.lastError,
    };
  }

  private async worker(signal: AbortSignal, endAt: number): Promise<void> {
    while (!signal.aborted && Date.now() < endAt) {
      const req = this.pick();
      if (req === undefined) {
        await systemTimers.sleep(500, signal); // no accounts known yet (banks not answering)
        continue;
      }
      this.counts.started++;
      try {
        const o = await this.transfer(req);
        if (o.outcome === 'committed') this.counts.committed++;
        else {
          this.counts.aborted++;
          this.lastAbortReason = o.reason ?? null;
        }
      } catch (e) {
        this.counts.failed++;
        this.lastError = e instanceof Error ? e.message : String(e);
        await systemTimers.sleep(300, signal); // nothing answered: do not spin
      }
      this.finishedAt.push(Date.now());
      if (this.finishedAt.length > 10_000) this.finishedAt = this.finishedAt.slice(-5_000);
    }
  }

  private pick(): TransferRequest | undefined {
    const all = this.accounts();
    if (all.length < 2) return undefined;
    const i = this.random.int(all.length);
    let j = this.random.int(all.length - 1);
    if (j >= i) j++;
    return { from: all[i] as AccountRef, to: all[j] as AccountRef, amount: 1 + this.random.int(MAX_AMOUNT) };
  }
}
