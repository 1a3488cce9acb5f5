/** The coordinator's runtime: live transactions, effects, watch feed, recovery, collection, hints, queries. */
export * from './config.js';
export { CoordinatorRuntime, toServiceError, TxCollectedError, type RuntimeDeps, type RuntimeMetrics } from './runtime.js';
export { finishTransaction, type FinishOptions } from './finish.js';
export { Collector, RetentionLeases, type CollectorOptions, type GcResult } from './gc.js';
export { CappedHintSender, type HintResult, type HintSender } from './hints.js';
export { HttpHintSender, type HttpHintSenderOptions } from './http-hints.js';
export { RecoveryLoop, type PassResult, type RecoveryDeps } from './recovery.js';
export * from './query.js';
