/**
 * raft2pc/client: the coordinator client SDK.
 *
 *   const client = new CoordinatorClient({ coordinators: ['http://127.0.0.1:7070', 'http://127.0.0.1:7071'] });
 *   const o = await client.run({ participants: [{ name: 'a', url: 'http://127.0.0.1:7101', work: {...} }, ...] });
 *   o.outcome; // 'committed' | 'aborted'
 *
 * `CoordinatorClient` has the REST calls one by one (begin, enlist, sendWork,
 * commit, abort, get, list) with failover between coordinators, and `run`,
 * a whole transaction with every retry and ambiguity handled. Failures are
 * `CoordinatorError` / `WorkError`, whose `code` is a union of literals.
 */
export { CoordinatorClient, CLIENT_DEFAULTS, type AbortOptions, type BeginOptions, type CallOptions, type CoordinatorClientOptions } from './coordinator-client.js';
export { RUN_DEFAULTS, type DeliveringParticipant, type RunOutcome, type RunParticipant, type RunRequest, type WorkParticipant } from './transaction.js';
export {
  CLIENT_CODES,
  COORDINATOR_ANSWER_CODES,
  CoordinatorError,
  isCoordinatorError,
  WORK_ANSWER_CODES,
  WorkError,
  type ClientCode,
  type CoordinatorAnswerCode,
  type CoordinatorErrorCode,
  type ErrorContext,
  type WorkAnswerCode,
  type WorkErrorCode,
} from './errors.js';
export {
  LISTED_STATES,
  type BeginAnswer,
  type BeginRequest,
  type EnlistAnswer,
  type GetAnswer,
  type JsonObject,
  type JsonValue,
  type ListAnswer,
  type ListedState,
  type ListFilter,
  type OutcomeAnswer,
  type Participant,
  type TxSummary,
  type TxView,
  type VoteValue,
} from './types.js';
export type { HttpRequester, HttpRequest, HttpResponse } from '../lib/http-client.js';
export type { ClientTls } from '../lib/tls.js';
export type { Timers } from '../lib/timers.js';
