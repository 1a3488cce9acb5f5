/**
 * Lease expiry, decided by the leader and carried out through the log: the
 * leader tracks a deadline per lease (keepalives push it out) and proposes a
 * `leaseRevoke` when it passes, so every replica deletes the lease's keys at
 * the same revision.
 *
 * Across a leader change the new leader starts every lease at its full TTL, as
 * etcd does: it cannot know when the old leader last heard a keepalive, and
 * expiring early would delete keys whose owner is alive, while a late expiry
 * only keeps a dead owner's keys one TTL longer.
 */
import { AppError } from '../../lib/errors.js';
import type { Cancel, Timers } from '../../lib/timers.js';
import type { LeaseId, LeaseInfo } from '../kv/index.js';

/** What the keeper needs from its node, and nothing more. */
export interface LeaseHost {
  isLeader(): boolean;
  /** The leases in the applied KV state. */
  leases(): readonly Pick<LeaseInfo, 'id' | 'ttlMs'>[];
  /**
   * Proposes a `leaseRevoke` stamped with `nowMs`; resolves once applied,
   * rejects when the proposal fails (lost leadership, timeout).
   */
  revoke(id: LeaseId, nowMs: number): Promise<unknown>;
}

export class LeaseKeeper {
  /** Leader only: monotonic deadline per lease. */
  private readonly deadlines = new Map<LeaseId, number>();
  /** Revocations proposed and not yet applied, so each is proposed once. */
  private readonly revoking = new Set<LeaseId>();
  private cancelChecks: Cancel | undefined;

  constructor(
    private readonly host: LeaseHost,
    /** Deadlines are monotonic time of these timers; checks run on them too. */
    private readonly timers: Timers,
    /** How often deadlines are checked; keys outlive their TTL by at most two of these. */
    readonly checkIntervalMs: number,
  ) {}

  start(): void {
    this.cancelChecks ??= this.timers.every(this.checkIntervalMs, () => this.check());
  }

  stop(): void {
    this.cancelChecks?.();
    this.cancelChecks = undefined;
  }

  /** A new leader (or a deposed one) forgets every deadline; the next check starts them afresh. */
  onLeaderChange(): void {
    this.deadlines.clear();
    this.revoking.clear();
  }

  /** Refreshes a lease's deadline; only meaningful on the leader. */
  keepAlive(id: LeaseId): { id: LeaseId; ttlMs: number } {
    const lease = this.host.leases().find((l) => l.id === id);
    if (!lease) throw new AppError('lease_not_found', 404, `lease ${id} does not exist (expired or revoked)`, { id });
    this.deadlines.set(id, this.timers.monotonicMs() + lease.ttlMs);
    return { id, ttlMs: lease.ttlMs };
  }

  remainingMs(id: LeaseId): number | undefined {
    const d = this.deadlines.get(id);
    return d === undefined ? undefined : Math.max(0, d - this.timers.monotonicMs());
  }

  private check(): void {
    if (!this.host.isLeader()) return;
    const now = this.timers.monotonicMs();
    const live = new Set<LeaseId>();
    for (const lease of this.host.leases()) {
      live.add(lease.id);
      const deadline = this.deadlines.get(lease.id);
      if (deadline === undefined) {
        this.deadlines.set(lease.id, now + lease.ttlMs);
      } else if (deadline <= now && !this.revoking.has(lease.id)) {
        this.revoke(lease.id);
      }
    }
    for (const id of this.deadlines.keys()) {
      if (!live.has(id)) {
        this.deadlines.delete(id);
        this.revoking.delete(id);
      }
    }
  }

  private revoke(id: LeaseId): void {
    this.revoking.add(id);
    this.host.revoke(id, this.timers.nowMs()).then(
      () => undefined,
      // Lost leadership or a timeout: forget, so the next check (or the next leader) tries again.
      () => this.revoking.delete(id),
    );
  }
}
