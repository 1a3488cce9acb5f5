/**
 * The participant's HTTP API described once: the ajv schemas routes.ts
 * checks bodies and queries with, and the OpenAPI 3.1 document built from
 * them (docs/API.md, "Participant endpoints"). `participantApp` serves it at
 * `GET /openapi.json`; a host service that mounts `participantRouter` can
 * serve it, or merge its paths into its own document.
 */
import { ajv, buildOpenApi, metricsRoute, OPENAPI_ROUTE, queryParams, readyzRoute, schemaOf, strictObject, type ErrorCodes, type OpenApiDocument, type RouteDoc } from '../lib/openapi.js';
import type { RoutePolicy } from '../lib/token-auth.js';
import { withBearerScheme, withTokenErrors } from '../lib/token-openapi.js';
import type { ParticipantConfig } from './config.js';

// ---------------------------------------------------------------------------
// Request schemas (routes.ts validates with these; the document shows them as they are)

const txId = { type: 'string', minLength: 1, maxLength: 128 } as const;

export const workBody = ajv.compile({
  type: 'object',
  properties: { txId, work: {} },
  required: ['txId', 'work'],
  additionalProperties: false,
});

export const prepareBody = ajv.compile({
  type: 'object',
  properties: { txId, deadline: { type: 'integer', minimum: 0 } },
  required: ['txId'],
  additionalProperties: false,
});

export const decisionBody = ajv.compile({
  type: 'object',
  properties: { txId, decision: { enum: ['commit', 'abort'] } },
  required: ['txId', 'decision'],
  additionalProperties: false,
});

export const listQuery = ajv.compile({
  type: 'object',
  properties: {
    phase: { enum: ['new', 'received', 'prepared', 'refused', 'committed', 'aborted'] },
    limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
  },
  additionalProperties: false,
});

/** Transactions one listing answers: by default, and at most (a `limit` outside 1..max is clamped). */
export const LIST_DEFAULT_LIMIT = 100;
export const LIST_MAX_LIMIT = 1_000;

/**
 * Who may call what when the node has a token file (`authTokensFile`):
 * probes, metrics and the document are public; prepare and decision come
 * only from the `coordinator` role (a client or admin token is 403); work
 * from `client` (or admin); the listing needs `admin`. A route missing here
 * needs admin (fail-closed).
 */
export const PARTICIPANT_ROUTE_POLICIES: Readonly<Record<string, RoutePolicy>> = {
  'GET /readyz': 'public',
  'GET /v1/participant/metrics': 'public',
  'GET /openapi.json': 'public',
  'POST /2pc/work': 'client',
  'POST /2pc/prepare': 'coordinator',
  'POST /2pc/decision': 'coordinator',
  'GET /v1/participant/transactions': 'admin',
};

// ---------------------------------------------------------------------------
// Answers

const str = { type: 'string' } as const;
const int = { type: 'integer', minimum: 0 } as const;
const intOrNull = { type: ['integer', 'null'], minimum: 0 } as const;
const phase = { enum: ['new', 'received', 'prepared', 'refused', 'committed', 'aborted'] } as const;

const txView = strictObject({
  txId: str,
  phase,
  inDoubt: { type: 'boolean' },
  work: { description: 'The work as received (any JSON), or null.' },
  vote: { enum: ['yes', 'no', null] },
  decision: { enum: ['commit', 'abort', null] },
  receivedAt: int,
  appliedAt: intOrNull,
  ackedAt: intOrNull,
});

/** What every route behind the readiness gate may answer: the gate, the body parser, and the node's limits. */
const GATED_ERRORS: ErrorCodes = {
  400: ['invalid_json', 'bad_request', 'invalid_request', 'invalid_tx_id'],
  413: ['body_too_large'],
  503: ['not_ready', 'participant_failed', 'shutting_down'],
};
const TX_ERRORS: ErrorCodes = { ...GATED_ERRORS, 503: [...(GATED_ERRORS[503] ?? []), 'too_many_transactions', 'log_full', 'unavailable'], 504: ['timeout'] };

function protocolRoutes(c: ParticipantConfig): RouteDoc[] {
  return [
    {
      method: 'post',
      path: '/2pc/work',
      summary: "This participant's work for a transaction; answers once it is durable in the local log",
      description: `Repeating the same work is idempotent. Work is at most ${c.maxWorkChars} characters serialized.`,
      body: schemaOf(workBody),
      ok: { 200: { description: 'Durable', json: strictObject({ txId: str, accepted: { const: true } }) } },
      errors: { ...TX_ERRORS, 409: ['work_conflict', 'tx_not_active'], 413: ['body_too_large', 'work_too_large'] },
    },
    {
      method: 'post',
      path: '/2pc/prepare',
      summary: "The coordinator's prepare hint: vote (once), answer the vote the store holds",
      body: schemaOf(prepareBody),
      ok: { 200: { description: 'The vote the store holds (possibly a "no" a coordinator filled first)', json: strictObject({ txId: str, vote: { enum: ['yes', 'no'] } }) } },
      errors: { ...TX_ERRORS, 409: ['work_conflict', 'tx_not_active'] },
    },
    {
      method: 'post',
      path: '/2pc/decision',
      summary: "The coordinator's decision hint, believed once the store confirms it",
      body: schemaOf(decisionBody),
      ok: { 200: { description: "Confirmed; `phase` is what this participant has done so far (applying continues)", json: strictObject({ txId: str, decision: { enum: ['commit', 'abort'] }, phase }) } },
      errors: { ...TX_ERRORS, 409: ['decision_not_recorded', 'decision_conflict'] },
    },
  ];
}

function operatorRoutes(): RouteDoc[] {
  return [
    {
      method: 'get',
      path: '/v1/participant/transactions',
      summary: 'The local log, newest first',
      params: queryParams(schemaOf(listQuery), { phase: 'Only transactions in this phase.', limit: `At most this many (default ${LIST_DEFAULT_LIMIT}; clamped to 1..${LIST_MAX_LIMIT}).` }),
      ok: { 200: { description: 'Transactions', json: strictObject({ participant: str, transactions: { type: 'array', items: txView } }) } },
      errors: GATED_ERRORS,
    },
    { ...metricsRoute('/v1/participant/metrics'), description: 'Served during recovery too.' },
    readyzRoute('Ready once the log is open and start-up recovery finished, and until the node stops or fails.'),
  ];
}

/** The document; prepare, decision, work and the listing carry the token answers (401, 403) of PARTICIPANT_ROUTE_POLICIES (routes.ts), which come only with a token file. */
export function participantOpenApi(config: ParticipantConfig): OpenApiDocument {
  const doc = buildOpenApi({
    title: 'raft2pc participant',
    version: '1',
    description: [
      'The routes of the participant library (docs/API.md, "Participant endpoints"), mounted by the service that embeds it. Prepare and decision are hints: the participant also watches the store, so a lost hint delays nothing past the watch.',
      `Bodies are JSON of any content type, at most ${config.maxBodyBytes} bytes; unknown fields and query parameters are refused. Every error is \`{"error": {"code", "message", ...details}}\`; \`503 not_ready\` (with Retry-After) until start-up recovery has finished. A path with no route is \`404 not_found\` (schema: components.schemas.ErrorBody).`,
    ].join('\n\n'),
    // No route takes a path parameter, so no path fails to decode (invalid_path).
    commonErrors: { 500: ['internal'] },
    routes: withTokenErrors([...protocolRoutes(config), ...operatorRoutes(), OPENAPI_ROUTE], PARTICIPANT_ROUTE_POLICIES),
  });
  return withBearerScheme(doc, PARTICIPANT_ROUTE_POLICIES);
}
