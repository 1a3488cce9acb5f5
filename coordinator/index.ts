/** The coordinator's public surface, by layer: protocol, TxStore, the pure machine, runtime, service. */
export * from './protocol/index.js';
export * from './txstore/index.js';
export * from './core/index.js';
export * from './runtime/index.js';
export * from './service/index.js';
