export * from './log.js';
export * from './machine.js';
export * from './participant.js';
export * from './routes.js';
export * from './recovery.js';
