// The pure KV state machine: revisions, CAS, txn, leases, sessions, watch history.
export { NOSPACE } from './alarm.js';
export type { NoSpaceAlarm } from './alarm.js';
export { DEFAULT_KV_CONFIG, DEFAULT_QUOTA_BYTES, MAX_QUOTA_BYTES, MEMORY_ENGINE_MAX_QUOTA_BYTES, MIN_QUOTA_BYTES, resolveKvConfig } from './config.js';
export type { KvConfig } from './config.js';
export { KvStateMachine } from './state-machine.js';
export type { RangeQuery } from './state-machine.js';
export { eventBytes } from './history.js';
export { compareKeys, utf8ByteLength } from './utf8.js';
export type {
  AlarmDisarmCommand,
  AlarmDisarmResult,
  CasCommand,
  CasResult,
  Compare,
  CompareOp,
  CompareTarget,
  DeleteCommand,
  DeleteOp,
  DeleteResult,
  EventsResult,
  GetCommand,
  GetOp,
  GetResult,
  KeyValue,
  KvApplied,
  KvCommand,
  KvError,
  KvErrorCode,
  KvEvent,
  KvFailure,
  KvOk,
  KvOkResult,
  KvReadCommand,
  KvResult,
  KvSuccess,
  KvWriteCommand,
  LeaseGrantCommand,
  LeaseGrantResult,
  LeaseId,
  LeaseInfo,
  LeaseRevokeCommand,
  LeaseRevokeResult,
  PutCommand,
  PutOp,
  PutResult,
  RangeCommand,
  RangeOp,
  RangeResult,
  RequestId,
  TxnCommand,
  TxnOp,
  TxnOpResult,
  TxnResult,
  WatchFilter,
  WriteMeta,
} from './types.js';
