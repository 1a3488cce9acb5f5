/** The TxStore contract and its backends (etcd is loaded only through `openTxStore`). */
export * from './txstore.js';
export { BuiltinTxStore } from './builtin.js';
export { BatchingTxStore, DEFAULT_BATCH_LIMITS, registerBatchMetrics, type BatchLimits } from './batching.js';
export { MemoryTxStore, type MemoryTxStoreOptions } from './memory.js';
export { openTxStore, parseStoreSpec, storeSpecFrom, STORE_ENV, STORE_FLAG, type OpenedStore, type StoreKind, type StoreSpec } from './open.js';
export { STORE_ACCESS_FLAGS, storeAccessEnv } from './access-flags.js';
export { PrefixWatcher, type PrefixWatcherOptions } from './watcher.js';
