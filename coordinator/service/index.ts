/** The coordinator's service (no sockets), its REST routes, the HTTP server around both, and the process entry (main.ts). */
export { CoordinatorService, freshTxId, idForIdempotencyKey, type BeginInput, type CoordinatorServiceDeps, type CoordinatorServiceOptions, type OutcomeBody } from './service.js';
export { coordinatorApp, type CoordinatorApi, type CoordinatorAppOptions } from './routes.js';
export { CoordinatorServer, type CoordinatorServerOptions, type ListenOptions } from './server.js';
