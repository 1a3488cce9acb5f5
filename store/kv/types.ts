/**
 * The KV state machine's public data types: commands, results, records and
 * events. Everything is plain JSON-safe data, so a command travels through
 * the Raft log as `JSON.stringify(command)` and a result can be sent to a
 * client as it is.
 *
 * Result shape (one for every call, documented once here):
 * - success: `{ ok: true, type, ...fields }`, plus `duplicate: true` when a
 *   session answered a retried write from its cache instead of applying it;
 * - failure: `{ ok: false, error: { code, message, ...details } }` with a
 *   snake_case `code` from `KvErrorCode`. A failure never changed anything
 *   (no key, revision, lease, session or history change); only
 *   `appliedIndex` moved past the entry.
 */

/**
 * A lease id: a positive safe integer chosen by the proposer (0 means
 * "no lease" in etcd, so it is refused).
 */
export type LeaseId = number;

/** One key as a reader sees it (etcd's mvccpb.KeyValue). */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** 1 on create, +1 on every put; a delete ends the key's life and the next put starts again at 1. */
  readonly version: number;
  /** Revision of the put that created this life of the key. */
  readonly createRevision: number;
  /** Revision of the last put to the key. */
  readonly modRevision: number;
  /** Present only while the key is attached to a lease. */
  readonly lease?: LeaseId;
}

/** Client session id of a write (Raft dissertation 6.3): one sequence per client, increasing. */
export interface RequestId {
  readonly clientId: string;
  /** A positive safe integer; each new write of the client uses a larger one. */
  readonly seq: number;
}

/**
 * Fields the leader stamps on a write before proposing it. `nowMs` is the
 * leader's wall clock, carried in the command so that session expiry is the
 * same on every replica and on replay. `nowMs` is required with `requestId`.
 */
export interface WriteMeta {
  readonly requestId?: RequestId;
  readonly nowMs?: number;
  /**
   * With auth on: whom the leader checked the write for, at which auth
   * table revision. A write applied after the table changed is checked
   * again (auth-needs.ts), so a permission revoked in between holds.
   */
  readonly caller?: { readonly user: string; readonly authRevision: number };
}

export interface GetOp {
  readonly type: 'get';
  readonly key: string;
}

export interface RangeOp {
  readonly type: 'range';
  /** Every key starting with `prefix`; the empty prefix selects all keys. */
  readonly prefix: string;
  /** At most this many keys, 1..maxRangeLimit; defaults to maxRangeLimit. */
  readonly limit?: number;
  /** Exclusive start key, for paging: pass the last key of the previous page. */
  readonly after?: string;
}

export interface PutOp {
  readonly type: 'put';
  readonly key: string;
  readonly value: string;
  /** Attach the key to this lease; a put without `lease` detaches it (etcd semantics). */
  readonly lease?: LeaseId;
}

export interface DeleteOp {
  readonly type: 'delete';
  readonly key: string;
}

/** An operation inside a txn branch. */
export type TxnOp = GetOp | RangeOp | PutOp | DeleteOp;

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision';
export type CompareOp = '=' | '!=' | '<' | '>';

/**
 * One txn guard (etcd semantics): a missing key has version, createRevision
 * and modRevision 0 and compares as such; any `value` compare on a missing
 * key is false. Values compare in UTF-8 byte order.
 */
export type Compare =
  | {
      readonly key: string;
      readonly target: 'value';
      readonly op: CompareOp;
      readonly value: string;
    }
  | {
      readonly key: string;
      readonly target: Exclude<CompareTarget, 'value'>;
      readonly op: CompareOp;
      readonly value: number;
    };

export type GetCommand = GetOp;
export type RangeCommand = RangeOp;
export type PutCommand = PutOp & WriteMeta;
export type DeleteCommand = DeleteOp & WriteMeta;

export interface CasCommand extends WriteMeta {
  readonly type: 'cas';
  readonly key: string;
  /** The value the key must hold, or null for "the key must be absent". */
  readonly expected: string | null;
  readonly value: string;
  readonly lease?: LeaseId;
}

export interface TxnCommand extends WriteMeta {
  readonly type: 'txn';
  /** All must hold for `success` to run; otherwise `failure` runs. At most maxTxnOps each. */
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export interface LeaseGrantCommand extends WriteMeta {
  readonly type: 'leaseGrant';
  /** Chosen by the proposer and unique (a granted id is refused with lease_exists). */
  readonly id: LeaseId;
  readonly ttlMs: number;
}

export interface LeaseRevokeCommand extends WriteMeta {
  readonly type: 'leaseRevoke';
  readonly id: LeaseId;
}

/**
 * Clears the NOSPACE alarm (alarm.ts), etcd's `alarm disarm`: refused with
 * still_over_quota while the write that raised it would still not fit.
 * Idempotent; no session, no revision.
 */
export interface AlarmDisarmCommand extends WriteMeta {
  readonly type: 'alarmDisarm';
}

/** How a permission's key applies: to that key alone, or to every key starting with it. */
export type PermissionMatch = 'exact' | 'prefix';
export type PermissionType = 'read' | 'write' | 'readwrite';

/** A role's permission (store/kv/auth.ts): `*` in `key` stands for one whole path segment. */
export interface Permission {
  readonly key: string;
  readonly match: PermissionMatch;
  readonly perm: PermissionType;
}

/**
 * A change of the auth table (store/kv/auth.ts). Passwords arrive hashed and
 * the secret made: the API node computes both before proposing.
 */
export type AuthOp =
  | { readonly op: 'enable'; readonly secret: string }
  | { readonly op: 'disable' }
  | { readonly op: 'userAdd' | 'userPasswd'; readonly name: string; readonly passwordHash: string }
  | { readonly op: 'userDelete' | 'roleAdd' | 'roleDelete'; readonly name: string }
  | { readonly op: 'userGrantRole' | 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly op: 'roleGrantPermission'; readonly name: string; readonly permission: Permission }
  | { readonly op: 'roleRevokePermission'; readonly name: string; readonly key: string; readonly match: PermissionMatch };

/** Changes users, roles or the enabled flag; no key, no revision, no session. */
export interface AuthCommand extends WriteMeta {
  readonly type: 'auth';
  readonly auth: AuthOp;
}

export type KvReadCommand = GetCommand | RangeCommand;
export type KvWriteCommand =
  | PutCommand
  | CasCommand
  | DeleteCommand
  | TxnCommand
  | LeaseGrantCommand
  | LeaseRevokeCommand
  | AlarmDisarmCommand
  | AuthCommand;
export type KvCommand = KvReadCommand | KvWriteCommand;

export interface GetResult {
  readonly type: 'get';
  /** null when the key does not exist. */
  readonly kv: KeyValue | null;
  readonly revision: number;
}

export interface RangeResult {
  readonly type: 'range';
  /** Ordered by key (UTF-8 byte order, like etcd). */
  readonly kvs: readonly KeyValue[];
  /** True when more keys match after the last one returned. */
  readonly more: boolean;
  readonly revision: number;
}

export interface PutResult {
  readonly type: 'put';
  readonly revision: number;
  /** The value before the put, or null. */
  readonly previous: string | null;
}

export interface CasResult {
  readonly type: 'cas';
  readonly succeeded: boolean;
  /** The value before the call, whether or not it succeeded. */
  readonly previous: string | null;
  /** The new revision when it succeeded, else the unchanged current revision. */
  readonly revision: number;
}

export interface DeleteResult {
  readonly type: 'delete';
  readonly deleted: boolean;
  readonly previous: string | null;
  /** The new revision when a key was deleted, else the unchanged current revision. */
  readonly revision: number;
}

export type TxnOpResult = GetResult | RangeResult | PutResult | DeleteResult;

export interface TxnResult {
  readonly type: 'txn';
  readonly succeeded: boolean;
  /** One revision for the whole txn: current + 1 if any op changed something, else current. */
  readonly revision: number;
  /** One result per op of the branch that ran, in order. */
  readonly results: readonly TxnOpResult[];
}

export interface LeaseGrantResult {
  readonly type: 'leaseGrant';
  readonly id: LeaseId;
  readonly ttlMs: number;
  readonly revision: number;
}

export interface LeaseRevokeResult {
  readonly type: 'leaseRevoke';
  readonly id: LeaseId;
  /** How many attached keys were deleted (all at one revision). */
  readonly deleted: number;
  readonly revision: number;
}

export interface AlarmDisarmResult {
  readonly type: 'alarmDisarm';
  /** False when no alarm was raised. */
  readonly disarmed: boolean;
  readonly storeBytes: number;
  readonly maxStoreBytes: number;
  readonly revision: number;
}

export interface AuthResult {
  readonly type: 'auth';
  readonly op: AuthOp['op'];
  /** The auth table's revision after the change. */
  readonly authRevision: number;
}

export type KvSuccess =
  | GetResult
  | RangeResult
  | PutResult
  | CasResult
  | DeleteResult
  | TxnResult
  | LeaseGrantResult
  | LeaseRevokeResult
  | AlarmDisarmResult
  | AuthResult;

export interface KvOk {
  readonly ok: true;
  /** Set when a session answered a retried write from its cache; nothing was applied. */
  readonly duplicate?: true;
}

export type KvOkResult<T extends KvSuccess = KvSuccess> = KvOk & T;

export type KvErrorCode =
  /** The command is not an object of a known type, or a field has the wrong type or range. */
  | 'invalid_command'
  /** A key is empty, not a string, or not valid UTF-8 (a lone surrogate). */
  | 'invalid_key'
  | 'key_too_large'
  | 'invalid_value'
  | 'value_too_large'
  /** A txn has more than maxTxnOps compares, success ops or failure ops. */
  | 'too_many_ops'
  /** Two writes (put/delete) in one txn branch touch the same key (refused like etcd). */
  | 'duplicate_key_in_txn'
  /** A range limit above maxRangeLimit. */
  | 'limit_too_large'
  | 'lease_not_found'
  | 'lease_exists'
  | 'too_many_leases'
  /**
   * The write would grow the stored key and value bytes past maxStoreBytes
   * (it raises the NOSPACE alarm), or it would grow them while the alarm is
   * raised. The one failure that changes state: the alarm.
   */
  | 'store_full'
  /** alarmDisarm while the write that raised the alarm would still not fit. */
  | 'still_over_quota'
  /** The write's seq is older than the last one its session applied. */
  | 'request_id_stale'
  /** eventsSince: fromRevision is older than the kept watch history. */
  | 'compacted'
  /** eventsSince: a bad fromRevision, filter or limit. */
  | 'invalid_argument'
  /** Auth table changes (auth.ts). */
  | 'user_exists'
  | 'user_not_found'
  | 'role_exists'
  | 'role_not_found'
  | 'role_already_granted'
  | 'role_not_granted'
  | 'permission_not_granted'
  | 'root_user_missing'
  | 'root_required'
  | 'too_many_users'
  | 'too_many_roles'
  | 'too_many_permissions'
  /** The auth table changed between a write's check and its apply, and no longer allows it. */
  | 'permission_denied';

export interface KvError {
  readonly code: KvErrorCode;
  readonly message: string;
  /** Details, e.g. maxKeyBytes and keyBytes for key_too_large. */
  readonly [detail: string]: unknown;
}

export interface KvFailure {
  readonly ok: false;
  readonly error: KvError;
}

export type KvResult = KvOkResult | KvFailure;

/** One change, as a watcher sees it. */
export interface KvEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value; null for a delete. */
  readonly value: string | null;
  /** The value before this change, or null if the key did not exist. */
  readonly prevValue: string | null;
  readonly revision: number;
}

/** What `apply` hands back: the result for the proposer and the events for watchers. */
export interface KvApplied {
  readonly result: KvResult;
  /** Events this entry produced, in revision then key order; empty for reads, failures and duplicates. */
  readonly events: readonly KvEvent[];
}

/** Which events a watcher wants: one exact key, or every key under a prefix. */
export type WatchFilter = { readonly key: string } | { readonly prefix: string };

export interface EventsResult {
  readonly ok: true;
  /** Events with revision >= fromRevision matching the filter, in order; whole revisions only. */
  readonly events: readonly KvEvent[];
  /** The fromRevision to ask with next time; nothing before it is left to read. */
  readonly nextRevision: number;
  /** True when the scan stopped at `limit` before the end of the kept history. */
  readonly more: boolean;
}

/** A lease as the node needs it to time expiry (timing itself is not replicated state). */
export interface LeaseInfo {
  readonly id: LeaseId;
  readonly ttlMs: number;
  /** How many keys are attached. */
  readonly keys: number;
}
