/**
 * Checks a command that arrived as untrusted JSON and turns it into a
 * normalized, typed form (only known fields, byte sizes measured once).
 * Every check here depends only on the command and the config, never on
 * the state, so "bad input changes nothing" holds by construction: apply
 * runs this first and stops at the first failure.
 */
import type { KvConfig } from './config.js';
import { fail, isFailure } from './failure.js';
import type {
  Compare,
  CompareOp,
  CompareTarget,
  KvFailure,
  LeaseId,
  RequestId,
} from './types.js';
import { utf8ByteLength } from './utf8.js';

export interface CheckedGet {
  readonly type: 'get';
  readonly key: string;
}
export interface CheckedRange {
  readonly type: 'range';
  readonly prefix: string;
  readonly limit: number;
  readonly after: string | undefined;
}
export interface CheckedPut {
  readonly type: 'put';
  readonly key: string;
  readonly value: string;
  readonly lease: LeaseId | undefined;
  readonly keyBytes: number;
  readonly valueBytes: number;
}
export interface CheckedDelete {
  readonly type: 'delete';
  readonly key: string;
}
export interface CheckedCas {
  readonly type: 'cas';
  readonly expected: string | null;
  readonly put: CheckedPut;
}
export type CheckedTxnOp = CheckedGet | CheckedRange | CheckedPut | CheckedDelete;
export interface CheckedTxn {
  readonly type: 'txn';
  readonly compare: readonly Compare[];
  readonly success: readonly CheckedTxnOp[];
  readonly failure: readonly CheckedTxnOp[];
}
export interface CheckedLeaseGrant {
  readonly type: 'leaseGrant';
  readonly id: LeaseId;
  readonly ttlMs: number;
}
export interface CheckedLeaseRevoke {
  readonly type: 'leaseRevoke';
  readonly id: LeaseId;
}
export type CheckedRead = CheckedGet | CheckedRange;
export type CheckedWrite =
  | CheckedPut
  | CheckedCas
  | CheckedDelete
  | CheckedTxn
  | CheckedLeaseGrant
  | CheckedLeaseRevoke;

export type CheckedCommand =
  | { readonly kind: 'read'; readonly op: CheckedRead }
  | {
      readonly kind: 'write';
      readonly op: CheckedWrite;
      readonly requestId: RequestId | undefined;
      readonly nowMs: number | undefined;
    };

type Fields = Readonly<Record<string, unknown>>;

export function checkCommand(input: unknown, config: KvConfig): CheckedCommand | KvFailure {
  if (!isObject(input)) return fail('invalid_command', 'a command must be a JSON object');
  switch (input['type']) {
    case 'get':
    case 'range': {
      const op = checkReadOp(input, config);
      return isFailure(op) ? op : { kind: 'read', op };
    }
    case 'put':
    case 'cas':
    case 'delete':
    case 'txn':
    case 'leaseGrant':
    case 'leaseRevoke':
      return checkWrite(input, config);
    default:
      return fail('invalid_command', `unknown command type ${JSON.stringify(input['type'])}`);
  }
}

export function checkReadOp(input: Fields, config: KvConfig): CheckedRead | KvFailure {
  if (input['type'] === 'get') {
    const key = checkKey(input['key'], 'key', config);
    return isFailure(key) ? key : { type: 'get', key: key.key };
  }
  const prefix = checkString(input['prefix'], 'prefix', config.maxKeyBytes, 'key_too_large');
  if (isFailure(prefix)) return prefix;
  const after = input['after'];
  let afterKey: string | undefined;
  if (after !== undefined) {
    const checked = checkString(after, 'after', config.maxKeyBytes, 'key_too_large');
    if (isFailure(checked)) return checked;
    afterKey = after as string;
  }
  const limit = input['limit'] ?? config.maxRangeLimit;
  if (!Number.isSafeInteger(limit) || (limit as number) < 1) {
    return fail('invalid_command', 'range limit must be a positive integer');
  }
  if ((limit as number) > config.maxRangeLimit) {
    return fail('limit_too_large', `range limit is at most ${config.maxRangeLimit}`, {
      maxRangeLimit: config.maxRangeLimit,
    });
  }
  return { type: 'range', prefix: input['prefix'] as string, limit: limit as number, after: afterKey };
}

function checkWrite(input: Fields, config: KvConfig): CheckedCommand | KvFailure {
  const op = checkWriteOp(input, config);
  if (isFailure(op)) return op;
  const nowMs = input['nowMs'];
  if (nowMs !== undefined && !(Number.isSafeInteger(nowMs) && (nowMs as number) >= 0)) {
    return fail('invalid_command', 'nowMs must be a non-negative integer');
  }
  const rawId = input['requestId'];
  if (rawId === undefined) {
    return { kind: 'write', op, requestId: undefined, nowMs: nowMs as number | undefined };
  }
  if (nowMs === undefined) return fail('invalid_command', 'a write with a requestId needs nowMs');
  const requestId = checkRequestId(rawId, config);
  if (isFailure(requestId)) return requestId;
  return { kind: 'write', op, requestId, nowMs: nowMs as number };
}

function checkWriteOp(input: Fields, config: KvConfig): CheckedWrite | KvFailure {
  switch (input['type']) {
    case 'put':
    case 'delete':
      return checkTxnOp(input, config) as CheckedPut | CheckedDelete | KvFailure;
    case 'cas': {
      const expected = input['expected'];
      if (expected !== null) {
        const checked = checkString(expected, 'expected', config.maxValueBytes, 'value_too_large');
        if (isFailure(checked)) return checked;
      }
      const put = checkPut(input, config);
      return isFailure(put) ? put : { type: 'cas', expected: expected as string | null, put };
    }
    case 'txn':
      return checkTxn(input, config);
    case 'leaseGrant': {
      const id = checkLeaseId(input['id'], 'id');
      if (isFailure(id)) return id;
      const ttlMs = input['ttlMs'];
      if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) < 1) {
        return fail('invalid_command', 'ttlMs must be a positive integer');
      }
      return { type: 'leaseGrant', id, ttlMs: ttlMs as number };
    }
    default: {
      const id = checkLeaseId(input['id'], 'id');
      return isFailure(id) ? id : { type: 'leaseRevoke', id };
    }
  }
}

function checkTxn(input: Fields, config: KvConfig): CheckedTxn | KvFailure {
  type ListName = 'compare' | 'success' | 'failure';
  const lists: Record<ListName, unknown[]> = { compare: [], success: [], failure: [] };
  for (const name of ['compare', 'success', 'failure'] as const) {
    const list = input[name] ?? [];
    if (!Array.isArray(list)) return fail('invalid_command', `txn ${name} must be an array`);
    if (list.length > config.maxTxnOps) {
      return fail('too_many_ops', `txn ${name} has ${list.length} entries, at most ${config.maxTxnOps}`, {
        maxTxnOps: config.maxTxnOps,
      });
    }
    lists[name] = list;
  }
  const compare: Compare[] = [];
  for (const raw of lists.compare) {
    const checked = checkCompare(raw, config);
    if (isFailure(checked)) return checked;
    compare.push(checked);
  }
  const success = checkBranch(lists.success, 'success', config);
  if (isFailure(success)) return success;
  const failure = checkBranch(lists.failure, 'failure', config);
  if (isFailure(failure)) return failure;
  return { type: 'txn', compare, success, failure };
}

function checkBranch(list: unknown[], name: string, config: KvConfig): CheckedTxnOp[] | KvFailure {
  const ops: CheckedTxnOp[] = [];
  const written = new Set<string>();
  for (const raw of list) {
    if (!isObject(raw)) return fail('invalid_command', `txn ${name} ops must be objects`);
    const op = checkTxnOp(raw, config);
    if (isFailure(op)) return op;
    if (op.type === 'put' || op.type === 'delete') {
      if (written.has(op.key)) {
        return fail('duplicate_key_in_txn', `txn ${name} writes ${JSON.stringify(op.key)} twice`, {
          key: op.key,
        });
      }
      written.add(op.key);
    }
    ops.push(op);
  }
  return ops;
}

function checkTxnOp(input: Fields, config: KvConfig): CheckedTxnOp | KvFailure {
  switch (input['type']) {
    case 'get':
    case 'range':
      return checkReadOp(input, config);
    case 'put':
      return checkPut(input, config);
    case 'delete': {
      const key = checkKey(input['key'], 'key', config);
      return isFailure(key) ? key : { type: 'delete', key: key.key };
    }
    default:
      return fail('invalid_command', `unknown txn op type ${JSON.stringify(input['type'])}`);
  }
}

function checkPut(input: Fields, config: KvConfig): CheckedPut | KvFailure {
  const key = checkKey(input['key'], 'key', config);
  if (isFailure(key)) return key;
  const value = checkString(input['value'], 'value', config.maxValueBytes, 'value_too_large');
  if (isFailure(value)) return value;
  let lease: LeaseId | undefined;
  if (input['lease'] !== undefined) {
    const id = checkLeaseId(input['lease'], 'lease');
    if (isFailure(id)) return id;
    lease = id;
  }
  return {
    type: 'put',
    key: key.key,
    value: input['value'] as string,
    lease,
    keyBytes: key.bytes,
    valueBytes: value.bytes,
  };
}

const COMPARE_TARGETS: readonly CompareTarget[] = ['value', 'version', 'createRevision', 'modRevision'];
const COMPARE_OPS: readonly CompareOp[] = ['=', '!=', '<', '>'];

function checkCompare(raw: unknown, config: KvConfig): Compare | KvFailure {
  if (!isObject(raw)) return fail('invalid_command', 'txn compares must be objects');
  const key = checkKey(raw['key'], 'key', config);
  if (isFailure(key)) return key;
  const target = raw['target'] as CompareTarget;
  const op = raw['op'] as CompareOp;
  if (!COMPARE_TARGETS.includes(target)) {
    return fail('invalid_command', `compare target must be one of ${COMPARE_TARGETS.join(', ')}`);
  }
  if (!COMPARE_OPS.includes(op)) {
    return fail('invalid_command', `compare op must be one of ${COMPARE_OPS.join(' ')}`);
  }
  const value = raw['value'];
  if (target === 'value') {
    const checked = checkString(value, 'value', config.maxValueBytes, 'value_too_large');
    if (isFailure(checked)) return checked;
    return { key: key.key, target, op, value: value as string };
  }
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    return fail('invalid_command', `a ${target} compare needs a non-negative integer value`);
  }
  return { key: key.key, target, op, value: value as number };
}

function checkRequestId(raw: unknown, config: KvConfig): RequestId | KvFailure {
  if (!isObject(raw)) return fail('invalid_command', 'requestId must be {clientId, seq}');
  const clientId = raw['clientId'];
  const bytes = typeof clientId === 'string' ? utf8ByteLength(clientId) : -1;
  if (bytes < 1 || bytes > config.maxClientIdBytes) {
    return fail('invalid_command', `requestId.clientId must be 1..${config.maxClientIdBytes} UTF-8 bytes`, {
      maxClientIdBytes: config.maxClientIdBytes,
    });
  }
  const seq = raw['seq'];
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) {
    return fail('invalid_command', 'requestId.seq must be a positive integer');
  }
  return { clientId: clientId as string, seq: seq as number };
}

function checkLeaseId(raw: unknown, field: string): LeaseId | KvFailure {
  if (!Number.isSafeInteger(raw) || (raw as number) < 1) {
    return fail('invalid_command', `${field} must be a positive integer lease id`);
  }
  return raw as LeaseId;
}

function checkKey(raw: unknown, field: string, config: KvConfig): { key: string; bytes: number } | KvFailure {
  if (raw === '') return fail('invalid_key', `${field} must not be empty`);
  const checked = checkString(raw, field, config.maxKeyBytes, 'key_too_large');
  return isFailure(checked) ? checked : { key: raw as string, bytes: checked.bytes };
}

/** A well-formed string of at most maxBytes UTF-8 bytes; returns its size. */
function checkString(
  raw: unknown,
  field: string,
  maxBytes: number,
  tooLarge: 'key_too_large' | 'value_too_large',
): { bytes: number } | KvFailure {
  const invalid = tooLarge === 'key_too_large' ? 'invalid_key' : 'invalid_value';
  if (typeof raw !== 'string') return fail(invalid, `${field} must be a string`);
  const bytes = utf8ByteLength(raw);
  if (bytes < 0) return fail(invalid, `${field} is not valid UTF-8 (lone surrogate)`);
  if (bytes > maxBytes) {
    const limitName = tooLarge === 'key_too_large' ? 'maxKeyBytes' : 'maxValueBytes';
    return fail(tooLarge, `${field} is ${bytes} bytes, at most ${maxBytes}`, {
      [limitName]: maxBytes,
      bytes,
    });
  }
  return { bytes };
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
