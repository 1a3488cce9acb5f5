/**
 * The replicated state besides the keys (revision, clock, leases, sessions,
 * watch history, alarms, and opaque host entries such as the node's members),
 * as an on-disk key store keeps it beside the keys: recorded in the same
 * write batch as the keys and the applied index, so after a restart the store
 * holds the whole state machine at that index and only the log after it is
 * replayed (issue 15; etcd keeps its consistent index, leases and members in
 * bbolt for the same reason).
 *
 * The state machine records a delta per batch (only what changed), never the
 * whole state: a batch costs what it changed, not what the store holds.
 */
import type { NoSpaceAlarm } from './alarm.js';
import type { AuthImage } from './auth.js';
import type { Session } from './sessions.js';
import type { KvEvent, LeaseId } from './types.js';

/** The state besides the keys, as `StateStore.load` reads it back. */
export interface PersistedState {
  readonly revision: number;
  readonly clockMs: number;
  readonly alarms: readonly NoSpaceAlarm[];
  /** In grant order. */
  readonly leases: readonly { readonly id: LeaseId; readonly ttlMs: number }[];
  /** Every live key that has a lease, with it. */
  readonly leaseKeys: readonly (readonly [LeaseId, string])[];
  /** Least recently used first. */
  readonly sessions: readonly Session[];
  readonly history: { readonly droppedThrough: number; readonly events: readonly KvEvent[] };
  readonly aux: Readonly<Record<string, string>>;
  /** Users, roles and permissions; absent in a store that never recorded any. */
  readonly auth?: AuthImage;
}

/** What one batch changed besides the keys. */
export interface StateDelta {
  readonly revision: number;
  readonly clockMs: number;
  readonly alarms: readonly NoSpaceAlarm[];
  /** Granted leases, in grant order. */
  readonly leasesGranted: readonly { readonly id: LeaseId; readonly ttlMs: number }[];
  readonly leasesRevoked: readonly LeaseId[];
  /** Sessions stored or used, in use order: each becomes the most recently used. */
  readonly sessionsPut: readonly Session[];
  readonly sessionsDropped: readonly string[];
  /** History events after the last recorded one, in order. */
  readonly historyAppended: readonly KvEvent[];
  /** Every event at or below this revision is dropped from the history. */
  readonly historyDroppedThrough: number;
  readonly aux: Readonly<Record<string, string>>;
  /** The whole auth table, when the batch changed it (it is small and rarely changes). */
  readonly auth?: AuthImage;
}

/**
 * Kept by an on-disk KeyStore (its `state`). `record` runs inside a write
 * batch and commits with it; `load` reads what the last committed batch
 * left, or undefined when no state was ever recorded; the key store's
 * `clear` clears it too. Lease attachments are the key store's own (it sees
 * every key's lease as it writes it), so `record` does not carry them.
 */
export interface StateStore {
  load(): PersistedState | undefined;
  record(delta: StateDelta): void;
}

/** The state besides the keys as a snapshot stream carries it (lease attachments travel with the keys). */
export type StateImage = Omit<PersistedState, 'leaseKeys'>;

/** The delta that writes a whole image into an empty store. */
export function deltaOfImage(image: StateImage): StateDelta {
  return {
    revision: image.revision,
    clockMs: image.clockMs,
    alarms: image.alarms,
    leasesGranted: image.leases,
    leasesRevoked: [],
    sessionsPut: image.sessions,
    sessionsDropped: [],
    historyAppended: image.history.events,
    historyDroppedThrough: image.history.droppedThrough,
    aux: image.aux,
    ...(image.auth === undefined ? {} : { auth: image.auth }),
  };
}

/** Ids changed since the last take, in the order of their last change. */
export class ChangeSet<T> {
  private readonly changed = new Set<T>();

  mark(id: T): void {
    this.changed.delete(id);
    this.changed.add(id);
  }

  take(): T[] {
    const ids = [...this.changed];
    this.changed.clear();
    return ids;
  }
}
