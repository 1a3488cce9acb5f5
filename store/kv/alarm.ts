/**
 * The store's NOSPACE alarm, as etcd has it: replicated state of the KV
 * state machine, so every member agrees on it and it survives a restart
 * (snapshot, then WAL replay of the commands that raised or disarmed it).
 *
 * - Raised when an applied write would take the stored key and value bytes
 *   past the quota (KvConfig.maxStoreBytes): that write fails `store_full`.
 * - While raised, every write that would grow the store fails `store_full`
 *   (puts, CAS, txns whose branch grows it, lease grants); reads, deletes,
 *   shrinking overwrites and lease revokes are still served.
 * - Disarmed only by the `alarmDisarm` command (POST /v1/alarms/disarm,
 *   etcd's `etcdctl alarm disarm`), which is refused (`still_over_quota`)
 *   while the write that raised it would still not fit: stored bytes plus
 *   its growth (counted as at most a tenth of the quota) over the quota.
 *   Deletes make the room.
 */
import { assert } from '../../lib/assert.js';

export const NOSPACE = 'NOSPACE';

export interface NoSpaceAlarm {
  readonly type: typeof NOSPACE;
  /** The store revision when the alarm was raised. */
  readonly raisedAtRevision: number;
  /** The stored key and value bytes when it was raised. */
  readonly storeBytes: number;
  /** How many bytes the refused write would have added: the room a disarm needs. */
  readonly growthBytes: number;
}

export class AlarmState {
  private current: NoSpaceAlarm | undefined;

  get raised(): NoSpaceAlarm | undefined {
    return this.current;
  }

  /** Raises NOSPACE (kept as first raised if it already is). */
  raise(revision: number, storeBytes: number, growthBytes: number): void {
    this.current ??= { type: NOSPACE, raisedAtRevision: revision, storeBytes, growthBytes };
  }

  disarm(): NoSpaceAlarm | undefined {
    const was = this.current;
    this.current = undefined;
    return was;
  }

  /** The raised alarms, for the snapshot and the API (at most one kind today). */
  list(): NoSpaceAlarm[] {
    return this.current === undefined ? [] : [this.current];
  }

  load(alarms: readonly NoSpaceAlarm[]): void {
    assert(alarms.length <= 1, 'snapshot has more than one alarm');
    this.current = alarms[0];
  }
}

/** Decodes the snapshot's `alarms` field (absent in snapshots from before alarms: none raised). */
export function decodeAlarms(raw: unknown): NoSpaceAlarm[] {
  if (raw === undefined) return [];
  assert(Array.isArray(raw), 'snapshot alarms is not an array');
  return raw.map((a: unknown) => {
    const o = a as Record<string, unknown> | null;
    assert(typeof o === 'object' && o !== null && o['type'] === NOSPACE, 'snapshot alarm is not NOSPACE');
    const int = (field: string, min: number): number => {
      const v = o[field];
      assert(Number.isSafeInteger(v) && (v as number) >= min, `snapshot alarm ${field}`);
      return v as number;
    };
    return { type: NOSPACE, raisedAtRevision: int('raisedAtRevision', 1), storeBytes: int('storeBytes', 0), growthBytes: int('growthBytes', 1) };
  });
}
