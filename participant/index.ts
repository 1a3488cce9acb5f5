export * from './log.js';
export * from './machine.js';
