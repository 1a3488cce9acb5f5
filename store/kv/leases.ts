/**
 * The lease table: which leases exist and which keys each one holds. Expiry
 * timing is not here: the leader times leases and proposes `leaseRevoke`,
 * so every replica deletes the same keys at the same revision.
 */
import { assert } from '../../lib/assert.js';
import { ChangeSet } from './durable-state.js';
import type { LeaseId, LeaseInfo } from './types.js';
import { compareKeys } from './utf8.js';

interface Lease {
  readonly id: LeaseId;
  readonly ttlMs: number;
  /** Invariant: exactly the live keys whose KeyValue.lease is this id. */
  readonly keys: Set<string>;
}

export class LeaseTable {
  /** In grant order, which `list()` keeps. */
  private readonly byId = new Map<LeaseId, Lease>();
  /** Leases granted or revoked since the last takeChanges (for an on-disk store, durable-state.ts). */
  private readonly changes = new ChangeSet<LeaseId>();

  get size(): number {
    return this.byId.size;
  }

  has(id: LeaseId): boolean {
    return this.byId.has(id);
  }

  grant(id: LeaseId, ttlMs: number): void {
    assert(!this.byId.has(id), `lease ${id} granted twice`);
    this.byId.set(id, { id, ttlMs, keys: new Set() });
    this.changes.mark(id);
  }

  /** The lease's keys in key order (the order revoke deletes them in). */
  keysOf(id: LeaseId): string[] {
    const lease = this.byId.get(id);
    assert(lease !== undefined, `keys of unknown lease ${id}`);
    return [...lease.keys].sort(compareKeys);
  }

  /** Removes a lease whose keys were all deleted (or detached) first. */
  revoke(id: LeaseId): void {
    const lease = this.byId.get(id);
    assert(lease !== undefined && lease.keys.size === 0, `revoke of unknown or non-empty lease ${id}`);
    this.byId.delete(id);
    this.changes.mark(id);
  }

  attach(id: LeaseId, key: string): void {
    const lease = this.byId.get(id);
    assert(lease !== undefined, `attach to unknown lease ${id}`);
    lease.keys.add(key);
  }

  detach(id: LeaseId, key: string): void {
    const lease = this.byId.get(id);
    assert(lease !== undefined && lease.keys.has(key), `detach of ${key} from lease ${id}`);
    lease.keys.delete(key);
  }

  /** What changed since the last call: leases granted (in grant order) and revoked. */
  takeChanges(): { granted: { id: LeaseId; ttlMs: number }[]; revoked: LeaseId[] } {
    const granted: { id: LeaseId; ttlMs: number }[] = [];
    const revoked: LeaseId[] = [];
    for (const id of this.changes.take()) {
      const lease = this.byId.get(id);
      if (lease === undefined) revoked.push(id);
      else granted.push({ id, ttlMs: lease.ttlMs });
    }
    return { granted, revoked };
  }

  /** Counts every lease as changed (the next takeChanges grants them all, in grant order). */
  markAllChanged(): void {
    for (const id of this.byId.keys()) this.changes.mark(id);
  }

  /** Leases in grant order. */
  list(): LeaseInfo[] {
    return [...this.byId.values()].map((l) => ({ id: l.id, ttlMs: l.ttlMs, keys: l.keys.size }));
  }
}
