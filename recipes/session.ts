/**
 * A session: one lease, granted at open and kept alive in the background
 * through the injected Timers. Every recipe built on it puts its keys under
 * this lease, so they vanish when the session does, and every recipe learns
 * of the loss at once through `signal` (aborted) and `lost` (resolved).
 *
 * When is it lost? When the store says the lease is gone (`lease_not_found`),
 * and also, without waiting for the store, when no keepalive was answered
 * for a whole TTL counted from when that keepalive was SENT: the store may
 * have expired the lease by then, so the holder must assume it did
 * (Kleppmann 2016). A lost session never comes back; open another.
 */
import { assert } from '../lib/assert.js';
import { systemRandom, type Random } from '../lib/random.js';
import { systemTimers, type Cancel, type Timers } from '../lib/timers.js';
import { isRetryableStoreError, TxStoreError, type TxLeaseId, type TxStore } from '../coordinator/txstore/index.js';
import { RecipeError } from './errors.js';

export interface SessionOptions {
  readonly store: TxStore;
  /** The lease TTL asked for (etcd rounds up to whole seconds and to its minimum). */
  readonly ttlMs?: number;
  /** How often to renew; default a third of the granted TTL, so two keepalives may fail or hang before the lease is at risk. */
  readonly keepAliveEveryMs?: number;
  readonly timers?: Timers;
  readonly random?: Random;
}

export const DEFAULT_SESSION_TTL_MS = 10_000;
/** Below this a TTL leaves no room for one round trip and a renewal. */
const MIN_TTL_MS = 300;
/**
 * Keepalives that may be unanswered at once. A keepalive sent to a frozen
 * member can wait out the client's request timeout (5 s for etcd), longer
 * than a short TTL; each tick sends another (the client may pick a live
 * member) instead of waiting on the first, up to this many.
 */
const MAX_KEEPALIVES_IN_FLIGHT = 3;

export class Session {
  readonly store: TxStore;
  readonly timers: Timers;
  readonly random: Random;
  private readonly ac = new AbortController();
  private readonly stopTicks: Cancel;
  private cancelExpiry: Cancel = () => {};
  private inFlight = 0;
  /** Invariant: the store cannot have expired the lease before this monotonic time (a sent-time + TTL). */
  private safeUntilMs: number;
  /** Resolves with the reason once the session is lost or closed; never rejects. */
  readonly lost: Promise<RecipeError>;

  private constructor(
    opts: SessionOptions,
    readonly leaseId: TxLeaseId,
    readonly ttlMs: number,
    grantSentAtMs: number,
  ) {
    this.store = opts.store;
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? systemRandom;
    this.lost = new Promise((resolve) => this.ac.signal.addEventListener('abort', () => resolve(this.ac.signal.reason as RecipeError), { once: true }));
    this.safeUntilMs = grantSentAtMs + ttlMs;
    const everyMs = opts.keepAliveEveryMs ?? Math.max(1, Math.floor(ttlMs / 3));
    assert(everyMs < ttlMs, `keepAliveEveryMs ${everyMs} must be below the TTL ${ttlMs}`);
    this.stopTicks = this.timers.every(everyMs, () => this.renew());
    this.armExpiry();
  }

  /** Grants the lease and starts keeping it alive. */
  static async open(opts: SessionOptions): Promise<Session> {
    const ttlMs = opts.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_TTL_MS) throw new RangeError(`session ttlMs must be an integer >= ${MIN_TTL_MS}, got ${ttlMs}`);
    if (opts.keepAliveEveryMs !== undefined && !(opts.keepAliveEveryMs >= 1 && opts.keepAliveEveryMs < ttlMs)) throw new RangeError(`keepAliveEveryMs must be 1 to ${ttlMs - 1} (below the TTL), got ${opts.keepAliveEveryMs}`);
    const timers = opts.timers ?? systemTimers;
    const sentAt = timers.monotonicMs();
    const lease = await opts.store.grantLease(ttlMs);
    return new Session(opts, lease.id, lease.ttlMs, sentAt);
  }

  /** Aborted (with a RecipeError `session_lost`) when the session is lost or closed. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  get isLost(): boolean {
    return this.ac.signal.aborted;
  }

  /** Throws the loss, if the session is lost. */
  check(): void {
    if (this.ac.signal.aborted) throw this.ac.signal.reason as RecipeError;
  }

  /** 16 hex digits from the injected Random: makes each recipe key unique within the lease. */
  nonce(): string {
    const word = (): string => this.random.int(2 ** 32).toString(16).padStart(8, '0');
    return word() + word();
  }

  /** Ends the session: stops renewing and revokes the lease (its keys go at once). Best effort on the revoke. */
  async close(): Promise<void> {
    const wasLive = !this.isLost;
    this.end('session closed');
    if (!wasLive) return;
    try {
      await this.store.revokeLease(this.leaseId);
    } catch {
      // The lease then expires on its own within its TTL; nothing else waits on it.
    }
  }

  private renew(): void {
    if (this.inFlight >= MAX_KEEPALIVES_IN_FLIGHT || this.isLost) return;
    this.inFlight++;
    const sentAt = this.timers.monotonicMs();
    this.store.keepAlive(this.leaseId).then(
      (r) => {
        this.inFlight--;
        this.safeUntilMs = Math.max(this.safeUntilMs, sentAt + r.ttlMs);
        this.armExpiry();
      },
      (e: unknown) => {
        this.inFlight--;
        // Gone for sure; any other failure leaves the expiry timer to decide.
        if (e instanceof TxStoreError && e.code === 'lease_not_found') this.end(`lease ${this.leaseId} no longer exists`);
        else if (!isRetryableStoreError(e)) this.end(`keepalive failed: ${e instanceof Error ? e.message : String(e)}`);
      },
    );
  }

  private armExpiry(): void {
    this.cancelExpiry();
    if (this.isLost) return;
    const leftMs = this.safeUntilMs - this.timers.monotonicMs();
    this.cancelExpiry = this.timers.after(Math.max(0, leftMs), () => {
      if (this.timers.monotonicMs() >= this.safeUntilMs) this.end(`lease ${this.leaseId} not renewed within its ${this.ttlMs} ms TTL`);
      else this.armExpiry();
    });
  }

  private end(why: string): void {
    if (this.isLost) return;
    this.stopTicks();
    this.cancelExpiry();
    this.ac.abort(new RecipeError('session_lost', why, { leaseId: this.leaseId }));
  }
}
