/**
 * One live instance per participant name. Two processes serving one name
 * would both watch the store: the one without the work votes "no" on what
 * the other prepared, and two that both hold work could apply one decision
 * twice. So a node claims its name in the store before it touches its log
 * (a second process over the same log could otherwise cut a tail the first
 * is writing), and gives it back when it stops.
 *
 * The claim is the key `participants/{name}/owner`, holding who took it
 * (`ClaimHolder`), attached to a lease of `claimTtlMs` the node keeps alive
 * every third of the TTL. Only TxStore's lease and CAS operations are used,
 * so it works on the built-in store, etcd and the memory store alike.
 *
 * - Taken by CAS create-if-absent. Held by another instance: refused with
 *   `participant_name_taken`, naming the holder.
 * - An instance is a process and its disk: host name plus the log's absolute
 *   path. A claim held under our own identity is an earlier process over our
 *   log. If its pid is alive on this host, it is a second process over the
 *   same log: refused. Otherwise it crashed, and its claim is taken over at
 *   once (CAS on its exact value), so a restart after SIGKILL does not wait
 *   for the TTL. Another identity (another disk, another host) waits for the
 *   crashed holder's lease to expire.
 * - Released on a clean stop (the lease revoked, the key with it); after a
 *   crash it expires with the lease.
 * - Lost while running (the lease expired, the key names someone else, or
 *   no keepalive confirmed the claim for a whole TTL, so the store may have
 *   let it go): reported once to `onLost`. The node fail-stops on it
 *   (participant.ts), because it can no longer prove it is the only one.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { AppError, isAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Random } from '../lib/random.js';
import { backoffDelayMs, type BackoffPolicy } from '../lib/retry.js';
import type { Cancel, Timers } from '../lib/timers.js';
import type { TxLeaseId, TxStore } from '../coordinator/txstore/index.js';
import { untilAnswered } from './store-calls.js';

export const CLAIM_PREFIX = 'participants/';

/** The key a participant name is claimed under. */
export function claimKey(name: string): string {
  return `${CLAIM_PREFIX}${name}/owner`;
}

/** Who holds a name: the claim key's value (JSON). */
export interface ClaimHolder {
  readonly participant: string;
  readonly host: string;
  readonly pid: number;
  /** The log's absolute path: with `host`, the instance's identity. */
  readonly logPath: string;
  /** Epoch ms when the claim was taken. */
  readonly since: number;
  /** The holder's lease TTL: how long its claim outlives a crash at most. */
  readonly ttlMs: number;
  /** Random per claim: tells this process's claim from an earlier one over the same log. */
  readonly incarnation: string;
}

/** This process, as a claim names it; injectable so a test can play another process. */
export interface ClaimProcess {
  readonly host: string;
  readonly pid: number;
  /** Whether a process with this pid runs on this host. */
  isAlive(pid: number): boolean;
}

export const thisProcess: ClaimProcess = {
  host: hostname(),
  pid: process.pid,
  isAlive(pid) {
    try {
      process.kill(pid, 0); // signal 0: a probe, nothing is sent
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by another user
    }
  },
};

/** Start refused: the name is held by another live instance. */
export class ParticipantNameTakenError extends AppError {
  constructor(
    readonly participant: string,
    readonly holder: ClaimHolder | null,
    why: string,
  ) {
    super('participant_name_taken', 409, `participant name ${participant} is taken: ${why}`, { participant, holder });
    this.name = 'ParticipantNameTakenError';
  }
}

/** The claim was lost while running; the node stopped (fail-stop). */
export class ParticipantClaimLostError extends AppError {
  constructor(
    readonly participant: string,
    why: string,
  ) {
    super('participant_claim_lost', 503, `participant ${participant} lost its name claim: ${why}; restart it (a restart re-takes the name unless another instance holds it)`, { participant });
    this.name = 'ParticipantClaimLostError';
  }
}

export interface ClaimDeps {
  readonly name: string;
  readonly logPath: string;
  readonly ttlMs: number;
  readonly store: TxStore;
  readonly timers: Timers;
  readonly random: Random;
  readonly retry: BackoffPolicy;
  readonly logger: Logger;
  /** Default `thisProcess`. */
  readonly self?: ClaimProcess;
}

/** Rounds of create-or-take-over before giving up on a key that keeps changing under us. */
const MAX_TAKE_ROUNDS = 5;

function decodeHolder(raw: string): ClaimHolder | null {
  try {
    const h = JSON.parse(raw) as Partial<ClaimHolder> | null;
    const ok = typeof h?.host === 'string' && typeof h.logPath === 'string' && Number.isSafeInteger(h.pid) && Number.isSafeInteger(h.since) && Number.isSafeInteger(h.ttlMs);
    return ok ? (h as ClaimHolder) : null;
  } catch {
    return null;
  }
}

function describeHolder(h: ClaimHolder): string {
  return `pid ${h.pid} on ${h.host} (log ${h.logPath}) since ${new Date(h.since).toISOString()}`;
}

/** Why `current` may not be taken over by `mine`, or undefined when it may (an earlier, dead process over our own log). */
function refusal(current: ClaimHolder | null, mine: ClaimHolder, self: ClaimProcess): string | undefined {
  if (current === null) return 'its claim key holds a value this version cannot read';
  if (current.host !== mine.host || current.logPath !== mine.logPath) {
    return `held by ${describeHolder(current)}; stop that instance, or if it crashed, wait up to ${current.ttlMs} ms for its claim to expire`;
  }
  if (current.pid !== self.pid && self.isAlive(current.pid)) return `another live process (pid ${current.pid}) on this host runs over the same log ${current.logPath}`;
  return undefined;
}

export class NameClaim {
  private cancelRound: Cancel | undefined;
  private cancelDeadline: Cancel | undefined;
  private onLost: ((e: ParticipantClaimLostError) => void) | undefined;
  /** Set once the claim was lost. */
  private lost: ParticipantClaimLostError | undefined;
  private ended = false;
  private released: Promise<void> | undefined;
  /** Keepalive rounds failed in a row (the store did not answer). */
  private failures = 0;

  private constructor(
    private readonly deps: ClaimDeps,
    readonly holder: ClaimHolder,
    private readonly value: string,
    private readonly lease: TxLeaseId,
    /** Monotonic ms when the last confirmed keepalive (or the grant) was sent: the lease lives at least a TTL past it. */
    private confirmedAt: number,
  ) {}

  get key(): string {
    return claimKey(this.deps.name);
  }

  private get intervalMs(): number {
    return Math.max(1, Math.floor(this.holder.ttlMs / 3));
  }

  /**
   * Claims `deps.name`, waiting out an unavailable store, and keeps the
   * claim alive from then on; rejects with ParticipantNameTakenError when
   * another live instance holds it.
   */
  static async take(deps: ClaimDeps): Promise<NameClaim> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await NameClaim.takeOnce(deps);
      } catch (e) {
        // The new lease expired before the key was written (a store outage right after the grant): start over.
        if (!isAppError(e) || e.code !== 'lease_not_found' || attempt >= MAX_TAKE_ROUNDS) throw e;
      }
    }
  }

  private static async takeOnce(deps: ClaimDeps): Promise<NameClaim> {
    const self = deps.self ?? thisProcess;
    const answered = async <T>(call: () => Promise<T>): Promise<T> => (await untilAnswered(call, { ...deps, signal: new AbortController().signal }, 'name claim')) as T;
    const sentAt = deps.timers.monotonicMs();
    const lease = await answered(() => deps.store.grantLease(deps.ttlMs));
    const incarnation = `${deps.random.int(0x7fffffff).toString(36)}${deps.random.int(0x7fffffff).toString(36)}`;
    // etcd rounds a TTL up to whole seconds: count on the shorter of the two.
    const ttlMs = Math.min(deps.ttlMs, lease.ttlMs);
    const holder: ClaimHolder = { participant: deps.name, host: self.host, pid: self.pid, logPath: resolve(deps.logPath), since: deps.timers.nowMs(), ttlMs, incarnation };
    const claim = new NameClaim(deps, holder, JSON.stringify(holder), lease.id, sentAt);
    try {
      await claim.settle(self, answered);
    } catch (e) {
      await claim.release();
      throw e;
    }
    claim.armDeadline();
    claim.armRound(claim.intervalMs);
    return claim;
  }

  /** Create-if-absent, or take over an earlier claim of our own identity; throws when the name is someone else's. */
  private async settle(self: ClaimProcess, answered: <T>(call: () => Promise<T>) => Promise<T>): Promise<void> {
    const { store, name, logger } = this.deps;
    const opts = { lease: this.lease };
    for (let round = 0; round < MAX_TAKE_ROUNDS; round++) {
      const created = await answered(() => store.casCreate(this.key, this.value, opts));
      if (created.succeeded || created.previous === this.value) {
        logger('info', 'claimed the participant name', { key: this.key, ttlMs: this.holder.ttlMs });
        return;
      }
      const previous = created.previous;
      if (previous === null) continue; // expired between the check and the write
      const current = decodeHolder(previous);
      const why = refusal(current, this.holder, self);
      if (why !== undefined) throw new ParticipantNameTakenError(name, current, why);
      const taken = await answered(() => store.casValue(this.key, previous, this.value, opts));
      if (taken.succeeded || taken.previous === this.value) {
        logger('info', 'took over the name claim of an earlier process over this log, which is gone', { key: this.key, earlierPid: current?.pid });
        return;
      }
    }
    throw new AppError('unavailable', 503, `could not claim ${this.key}: it keeps changing`, { retryAfterSeconds: 1 });
  }

  /** Tells `onLost` once if the claim is lost (at once if it already was). */
  whenLost(onLost: (e: ParticipantClaimLostError) => void): void {
    this.onLost = onLost;
    if (this.lost !== undefined) onLost(this.lost);
  }

  /** Stops keeping the claim alive (a failed node): it expires with its lease. */
  abandon(): void {
    this.ended = true;
    this.cancelRound?.();
    this.cancelDeadline?.();
  }

  /**
   * Gives the name back (the lease revoked, the key with it), waiting for
   * the store at most a third of the TTL: past it the claim expires by
   * itself. Idempotent.
   */
  release(): Promise<void> {
    this.released ??= this.revoke();
    return this.released;
  }

  private async revoke(): Promise<void> {
    this.abandon();
    const { store, timers, logger } = this.deps;
    const waiting = new AbortController();
    const revoked = store.revokeLease(this.lease).then(
      () => true,
      (e: unknown) => (logger('warn', 'could not release the name claim', { error: e }), false),
    );
    const done = await Promise.race([revoked, timers.sleep(this.intervalMs, waiting.signal).then(() => false)]);
    waiting.abort();
    if (!done) logger('warn', `the name claim was not released; it expires within ${this.holder.ttlMs} ms`, { key: this.key });
  }

  private armRound(delayMs: number): void {
    this.cancelRound = this.deps.timers.after(delayMs, () => void this.round());
  }

  /** Past a TTL after the last confirmed keepalive was sent, the store may have let the claim go. */
  private armDeadline(): void {
    this.cancelDeadline?.();
    const leftMs = this.confirmedAt + this.holder.ttlMs - this.deps.timers.monotonicMs();
    this.cancelDeadline = this.deps.timers.after(leftMs, () => this.lose(`no keepalive confirmed it for ${this.holder.ttlMs} ms (the store was unreachable, or this process was paused)`));
  }

  /** One keepalive, then a read that the key still holds our exact value (no one took it over). */
  private async round(): Promise<void> {
    const { store, timers, logger } = this.deps;
    const sentAt = timers.monotonicMs();
    try {
      await store.keepAlive(this.lease);
      const kv = await store.get(this.key);
      if (this.ended) return;
      if (kv?.value !== this.value) {
        const now = kv === null ? null : decodeHolder(kv.value);
        return this.lose(kv === null ? 'its key is gone' : `its key now names ${now === null ? 'an unreadable holder' : describeHolder(now)}`);
      }
      this.failures = 0;
      this.confirmedAt = sentAt;
      this.armDeadline();
      this.armRound(this.intervalMs);
    } catch (e) {
      if (this.ended) return;
      if (isAppError(e) && e.code === 'lease_not_found') return this.lose('its lease expired in the store');
      this.failures++;
      logger('warn', 'name claim keepalive failed; retrying', { error: e, failures: this.failures });
      this.armRound(Math.min(this.intervalMs, backoffDelayMs(this.failures, this.deps.retry, this.deps.random)));
    }
  }

  private lose(why: string): void {
    if (this.ended) return;
    this.abandon();
    this.lost = new ParticipantClaimLostError(this.deps.name, why);
    this.onLost?.(this.lost);
  }
}
