/**
 * The participant library's entry point: what a service needs to become a
 * durable 2PC participant (open a store, open and start a node, mount its
 * routes with the error mapping), and the defaults and types of everything
 * a node is injected with.
 */
export * from './participant.js';
export * from './config.js';
export * from './log.js';
export * from './machine.js';
export { participantApp, participantRouter } from './routes.js';

// The coordination store a node is opened with.
export { openTxStore, parseStoreSpec, storeSpecFrom, STORE_ENV, type OpenedStore, type StoreSpec, type TxStore } from '../coordinator/txstore/index.js';
// The JSON error mapping to mount after the routes (and the service's own).
export { errorMiddleware } from '../lib/express.js';
// The injected dependencies' types and their production defaults.
export { systemTimers, type Cancel, type Timers } from '../lib/timers.js';
export { systemRandom, type Random } from '../lib/random.js';
export { Failpoints, NO_FAILPOINTS, type FailpointHook, type FailpointName } from '../lib/failpoints.js';
export { silentLogger, stderrLogger, type Logger } from '../lib/logger.js';
