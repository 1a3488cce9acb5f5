export type { RaftConfig } from './config.js';
export { defaultRaftConfig, validateRaftConfig, RaftConfigError } from './config.js';
export type { Message, MessageType, SnapshotRequest } from './messages.js';
export type { ReadState } from './raft.js';
export { entryBytes } from './log.js';
export {
  RawNode,
  bootstrapStorage,
  emptySnapshot,
  type Ready,
  type SoftState,
  type StorageState,
  type ProposeResult,
  type ProposeErrorCode,
  type ReadIndexResult,
  type TransferResult,
  type RaftStatus,
  type ProgressStatus,
} from './rawnode.js';
export * from './types.js';
