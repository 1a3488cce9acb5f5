export * from './protocol.js';
export * from './store.js';
export * from './machine.js';
