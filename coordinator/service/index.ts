/** The coordinator's REST service: routes, the service behind them, the process entry (main.ts). */
export { CoordinatorService, freshTxId, idForIdempotencyKey, type BeginInput, type CoordinatorServiceOptions, type OutcomeBody } from './service.js';
export { coordinatorApp } from './routes.js';
