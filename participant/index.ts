/**
 * The participant library's entry point: what a service needs to become a
 * durable 2PC participant (open a store, open and start a node, mount its
 * routes with the error mapping, or serve them with a plain node:http
 * handler), the errors it can meet (a name another instance holds, a lost
 * claim, a bad config), and the defaults and types of everything a node is
 * injected with. docs/TUTORIAL.md walks through it; docs/PARTICIPANTS.md
 * says how to deploy it.
 */
export * from './participant.js';
export * from './config.js';
export * from './log.js';
export * from './machine.js';
export { participantApp, participantRouter, participantRoutes, type ParticipantRoutesOptions } from './routes.js';
// Serving them: an HTTP or HTTPS server behind the hostile-input guard (415, 429, limits, timeouts), and the TLS flags and settings.
export { listenGuarded, type GuardedServerOptions, type HttpGuardLimits } from '../lib/http-guard.js';
export { serviceTls, setProcessClientTls, TLS_FLAGS, tlsSettingsFrom, type ClientTls, type TlsSettings } from '../lib/tls.js';
// The same routes as a plain node:http handler, for a service without express.
export { participantHandler, type ParticipantHttpHandler } from './http-handler.js';
// One live instance per name: the claim's key and holder, and the errors of a refused start and a lost claim.
export { claimKey, ParticipantClaimLostError, ParticipantNameTakenError, type ClaimHolder, type ClaimProcess } from './claim.js';
// The routes' OpenAPI 3.1 document, for a host that serves or merges it (participantApp serves it at /openapi.json).
export { participantOpenApi } from './openapi.js';
export type { OpenApiDocument } from '../lib/openapi.js';

// The coordination store a node is opened with.
export { openTxStore, parseStoreSpec, storeSpecFrom, STORE_ENV, TxStoreError, type OpenedStore, type StoreSpec, type TxStore } from '../coordinator/txstore/index.js';
// A single-process store for the embedding service's own unit tests (no replication, no durability).
export { MemoryTxStore } from '../coordinator/txstore/index.js';
// What work, votes and decisions are, and the participant name rule.
export { isValidParticipantName, isValidTxId, type Decision, type JsonValue, type VoteValue } from '../coordinator/protocol/index.js';
// Typed errors: a service's callbacks may throw them; errorMiddleware answers them as {"error": {code, message}}.
export { AppError, isAppError } from '../lib/errors.js';
// The JSON error mapping to mount after the routes (and the service's own).
export { errorMiddleware } from '../lib/express.js';
// The injected dependencies' types and their production defaults.
export { systemTimers, type Cancel, type Timers } from '../lib/timers.js';
export { systemRandom, type Random } from '../lib/random.js';
export { Failpoints, NO_FAILPOINTS, type FailpointHook, type FailpointName } from '../lib/failpoints.js';
export { silentLogger, stderrLogger, type Logger } from '../lib/logger.js';
