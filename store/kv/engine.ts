/**
 * Executes checked operations against the keys, the revision counter and the
 * lease table. Every write first runs all the checks that depend on state
 * (lease exists, quota), and only then mutates, so a failure is never a
 * partial write. Sessions, the clock and the watch history are the caller's
 * (KvStateMachine).
 *
 * Revisions follow etcd: the store starts at revision 1; every write that
 * changes something takes the next revision, shared by all changes of one
 * command (a txn, a lease revoke); a write that changes nothing (failed
 * CAS, delete of a missing key, read-only txn) keeps the current revision.
 */
import { assert } from '../../lib/assert.js';
import { AlarmState } from './alarm.js';
import type { KvConfig } from './config.js';
import { fail } from './failure.js';
import { Keyspace } from './keyspace.js';
import type { KeyStore } from './keystore.js';
import { LeaseTable } from './leases.js';
import type {
  Compare,
  GetResult,
  KeyValue,
  KvEvent,
  KvFailure,
  KvOkResult,
  LeaseId,
  RangeResult,
  TxnOpResult,
} from './types.js';
import { compareKeys } from './utf8.js';
import type {
  CheckedCas,
  CheckedGet,
  CheckedLeaseGrant,
  CheckedLeaseRevoke,
  CheckedPut,
  CheckedRange,
  CheckedTxn,
  CheckedTxnOp,
  CheckedWrite,
} from './validate.js';

/** The events one command produced, with each event's UTF-8 size for history accounting. */
export class Changes {
  readonly events: KvEvent[] = [];
  readonly sizes: number[] = [];

  add(event: KvEvent, bytes: number): void {
    this.events.push(event);
    this.sizes.push(bytes);
  }
}

export type WriteOutcome = KvOkResult | KvFailure;

/** A disarm needs the refused write's growth free, but never more than 1/this of the quota. */
const DISARM_ROOM_SHARE = 10;

export class KvEngine {
  /** Invariant: >= 1, and >= the modRevision of every key. */
  revision = 1;
  readonly leaseTable = new LeaseTable();
  /** The NOSPACE alarm (alarm.ts): raised by storeFull, cleared by disarmAlarm. */
  readonly alarm = new AlarmState();

  /** `keyspace` holds the live keys: in memory unless an on-disk KeyStore is injected. */
  constructor(
    private readonly config: KvConfig,
    readonly keyspace: KeyStore = new Keyspace(),
  ) {}

  get(op: CheckedGet): KvOkResult<GetResult> {
    return { ok: true, ...this.getAt(op, this.revision) };
  }

  range(op: CheckedRange): KvOkResult<RangeResult> {
    return { ok: true, ...this.rangeAt(op, this.revision) };
  }

  write(op: CheckedWrite, changes: Changes): WriteOutcome {
    switch (op.type) {
      case 'put':
        return this.put(op, changes);
      case 'cas':
        return this.cas(op, changes);
      case 'delete': {
        const exists = this.keyspace.get(op.key) !== undefined;
        const revision = exists ? this.revision + 1 : this.revision;
        this.revision = revision;
        const previous = this.deleteKey(op.key, revision, changes);
        return { ok: true, type: 'delete', deleted: exists, previous, revision };
      }
      case 'txn':
        return this.txn(op, changes);
      case 'leaseGrant':
        return this.leaseGrant(op);
      case 'leaseRevoke':
        return this.leaseRevoke(op, changes);
    }
  }

  private put(op: CheckedPut, changes: Changes): WriteOutcome {
    const refused = this.refusePuts([op]);
    if (refused !== undefined) return refused;
    const revision = ++this.revision;
    const previous = this.putKey(op, revision, changes);
    return { ok: true, type: 'put', revision, previous };
  }

  private cas(op: CheckedCas, changes: Changes): WriteOutcome {
    const missingLease = this.missingLease([op.put]);
    if (missingLease !== undefined) return missingLease;
    const previous = this.keyspace.get(op.put.key)?.kv.value ?? null;
    if (previous !== op.expected) {
      return { ok: true, type: 'cas', succeeded: false, previous, revision: this.revision };
    }
    const full = this.storeFull([op.put]);
    if (full !== undefined) return full;
    const revision = ++this.revision;
    this.putKey(op.put, revision, changes);
    return { ok: true, type: 'cas', succeeded: true, previous, revision };
  }

  private txn(op: CheckedTxn, changes: Changes): WriteOutcome {
    const succeeded = op.compare.every((c) => this.holds(c));
    const branch = succeeded ? op.success : op.failure;
    const refused = this.refusePuts(branch);
    if (refused !== undefined) return refused;
    // Writes in a branch touch distinct keys (validate.ts), so whether a
    // delete finds its key does not depend on the ops before it.
    const changesSomething = branch.some(
      (o) => o.type === 'put' || (o.type === 'delete' && this.keyspace.get(o.key) !== undefined),
    );
    const revision = changesSomething ? this.revision + 1 : this.revision;
    this.revision = revision;
    const results = branch.map((o) => this.txnOp(o, revision, changes));
    return { ok: true, type: 'txn', succeeded, revision, results };
  }

  /** One op of a txn that passed its checks; later ops see the writes of earlier ones. */
  private txnOp(op: CheckedTxnOp, revision: number, changes: Changes): TxnOpResult {
    switch (op.type) {
      case 'get':
        return this.getAt(op, revision);
      case 'range':
        return this.rangeAt(op, revision);
      case 'put':
        return { type: 'put', revision, previous: this.putKey(op, revision, changes) };
      case 'delete': {
        const previous = this.deleteKey(op.key, revision, changes);
        return { type: 'delete', deleted: previous !== null, previous, revision };
      }
    }
  }

  private leaseGrant(op: CheckedLeaseGrant): WriteOutcome {
    if (this.leaseTable.has(op.id)) {
      return fail('lease_exists', `lease ${op.id} already exists`, { lease: op.id });
    }
    // A lease grows the store too (etcd refuses LeaseGrant under NOSPACE).
    if (this.alarm.raised !== undefined) return this.refusedByAlarm(0);
    if (this.leaseTable.size >= this.config.maxLeases) {
      return fail('too_many_leases', `at most ${this.config.maxLeases} leases`, {
        maxLeases: this.config.maxLeases,
      });
    }
    this.leaseTable.grant(op.id, op.ttlMs);
    return { ok: true, type: 'leaseGrant', id: op.id, ttlMs: op.ttlMs, revision: this.revision };
  }

  /** Deletes every attached key at one revision (one delete event each, in key order), then the lease. */
  private leaseRevoke(op: CheckedLeaseRevoke, changes: Changes): WriteOutcome {
    if (!this.leaseTable.has(op.id)) return leaseNotFound(op.id);
    const keys = this.leaseTable.keysOf(op.id);
    const revision = keys.length > 0 ? this.revision + 1 : this.revision;
    this.revision = revision;
    for (const key of keys) this.deleteKey(key, revision, changes);
    this.leaseTable.revoke(op.id);
    return { ok: true, type: 'leaseRevoke', id: op.id, deleted: keys.length, revision };
  }

  private getAt(op: CheckedGet, revision: number): GetResult {
    return { type: 'get', kv: this.keyspace.get(op.key)?.kv ?? null, revision };
  }

  private rangeAt(op: CheckedRange, revision: number): RangeResult {
    const { kvs, more } = this.keyspace.range(op.prefix, op.after, op.limit);
    return { type: 'range', kvs, more, revision };
  }

  /** Sets a key at `revision`, moving its lease attachment; returns the previous value. */
  private putKey(op: CheckedPut, revision: number, changes: Changes): string | null {
    const old = this.keyspace.get(op.key);
    const prev = old?.kv;
    if (prev?.lease !== undefined && prev.lease !== op.lease) this.leaseTable.detach(prev.lease, op.key);
    if (op.lease !== undefined && prev?.lease !== op.lease) this.leaseTable.attach(op.lease, op.key);
    const kv: KeyValue = {
      key: op.key,
      value: op.value,
      version: prev === undefined ? 1 : prev.version + 1,
      createRevision: prev === undefined ? revision : prev.createRevision,
      modRevision: revision,
      ...(op.lease === undefined ? {} : { lease: op.lease }),
    };
    this.keyspace.set({ kv, keyBytes: op.keyBytes, valueBytes: op.valueBytes });
    const previous = prev?.value ?? null;
    changes.add(
      { type: 'put', key: op.key, value: op.value, prevValue: previous, revision },
      op.keyBytes + op.valueBytes + (old?.valueBytes ?? 0),
    );
    return previous;
  }

  /** Deletes a key at `revision` if present; returns the value it held, or null. */
  private deleteKey(key: string, revision: number, changes: Changes): string | null {
    const old = this.keyspace.delete(key);
    if (old === undefined) return null;
    assert(revision > old.kv.modRevision, 'delete at a revision not after the last put');
    if (old.kv.lease !== undefined) this.leaseTable.detach(old.kv.lease, key);
    changes.add(
      { type: 'delete', key, value: null, prevValue: old.kv.value, revision },
      old.keyBytes + old.valueBytes,
    );
    return old.kv.value;
  }

  /** Whether a txn guard holds now (etcd: missing keys have revisions 0; value compares on them fail). */
  private holds(c: Compare): boolean {
    const kv = this.keyspace.get(c.key)?.kv;
    if (c.target === 'value') return kv !== undefined && matches(compareKeys(kv.value, c.value), c.op);
    const actual = kv === undefined ? 0 : kv[c.target];
    return matches(actual - c.value, c.op);
  }

  /** The state checks for a set of writes: leases exist, then the quota. */
  private refusePuts(ops: readonly CheckedTxnOp[]): KvFailure | undefined {
    return this.missingLease(ops) ?? this.storeFull(ops);
  }

  private missingLease(ops: readonly CheckedTxnOp[]): KvFailure | undefined {
    for (const op of ops) {
      if (op.type === 'put' && op.lease !== undefined && !this.leaseTable.has(op.lease)) {
        return leaseNotFound(op.lease);
      }
    }
    return undefined;
  }

  /**
   * The quota, as etcd's NOSPACE alarm: a write that would grow the store
   * past maxStoreBytes fails and raises the alarm; while it is raised every
   * write that grows the store fails. Writes that do not grow it always pass.
   */
  private storeFull(ops: readonly CheckedTxnOp[]): KvFailure | undefined {
    let growthBytes = 0;
    for (const op of ops) {
      if (op.type !== 'put' && op.type !== 'delete') continue;
      const old = this.keyspace.get(op.key);
      if (old !== undefined) growthBytes -= old.keyBytes + old.valueBytes;
      if (op.type === 'put') growthBytes += op.keyBytes + op.valueBytes;
    }
    if (growthBytes <= 0) return undefined;
    if (this.alarm.raised !== undefined) return this.refusedByAlarm(growthBytes);
    const total = this.keyspace.totalBytes + growthBytes;
    if (total <= this.config.maxStoreBytes) return undefined;
    this.alarm.raise(this.revision, this.keyspace.totalBytes, growthBytes);
    const max = this.config.maxStoreBytes;
    return fail('store_full', `the write would grow the store to ${total} bytes, at most ${max}; the NOSPACE alarm is raised`, {
      maxStoreBytes: max,
      storeBytes: this.keyspace.totalBytes,
      alarm: 'NOSPACE',
    });
  }

  private refusedByAlarm(growthBytes: number): KvFailure {
    const max = this.config.maxStoreBytes;
    const message = 'the NOSPACE alarm is raised: writes that grow the store are refused until it is disarmed (delete keys, then POST /v1/alarms/disarm)';
    return fail('store_full', message, { maxStoreBytes: max, storeBytes: this.keyspace.totalBytes, growthBytes, alarm: 'NOSPACE' });
  }

  /**
   * Clears the alarm once the write that raised it would fit (its growth,
   * counted as at most a tenth of the quota, so a write bigger than the
   * whole quota does not make the alarm permanent); refused
   * (still_over_quota) before.
   */
  disarmAlarm(): WriteOutcome {
    const alarm = this.alarm.raised;
    const max = this.config.maxStoreBytes;
    const storeBytes = this.keyspace.totalBytes;
    const roomBytes = alarm === undefined ? 0 : Math.min(alarm.growthBytes, Math.floor(max / DISARM_ROOM_SHARE));
    if (alarm !== undefined && storeBytes + roomBytes > max) {
      const need = storeBytes + roomBytes - max;
      return fail('still_over_quota', `the store holds ${storeBytes} bytes and needs ${roomBytes} free under the quota of ${max} (the write that raised the alarm): delete at least ${need} bytes first`, {
        maxStoreBytes: max,
        storeBytes,
        growthBytes: roomBytes,
        alarm: 'NOSPACE',
      });
    }
    this.alarm.disarm();
    return { ok: true, type: 'alarmDisarm', disarmed: alarm !== undefined, storeBytes, maxStoreBytes: max, revision: this.revision };
  }
}

function leaseNotFound(id: LeaseId): KvFailure {
  return fail('lease_not_found', `lease ${id} does not exist`, { lease: id });
}

function matches(sign: number, op: Compare['op']): boolean {
  switch (op) {
    case '=':
      return sign === 0;
    case '!=':
      return sign !== 0;
    case '<':
      return sign < 0;
    case '>':
      return sign > 0;
  }
}
