/**
 * The coordinator's REST API described once: the ajv schemas routes.ts
 * checks bodies and queries with, and the OpenAPI 3.1 document built from
 * them (docs/API.md, "Coordinator contract"), served at `GET /openapi.json`.
 * test/openapi/coordinator.test.ts checks the document against the routes
 * and against real answers.
 */
import { ajv, buildOpenApi, metricsRoute, OPENAPI_ROUTE, queryParams, readyzRoute, schemaOf, strictObject, type ErrorCodes, type OpenApiDocument, type ParamDoc, type RouteDoc } from '../../lib/openapi.js';
import type { RoutePolicy } from '../../lib/token-auth.js';
import { withBearerScheme, withTokenErrors } from '../../lib/token-openapi.js';
import { PROTOCOL_LIMITS } from '../protocol/index.js';
import type { CoordinatorConfig } from '../runtime/index.js';

// ---------------------------------------------------------------------------
// Request schemas (routes.ts validates with these; the document shows them as they are)

export const beginBody = ajv.compile({
  type: 'object',
  properties: {
    timeoutMs: { type: 'integer' },
    participants: { type: 'array', maxItems: PROTOCOL_LIMITS.maxParticipants, items: { type: 'object' } },
    metadata: { type: 'object' },
  },
  additionalProperties: false,
});

export const enlistBody = ajv.compile({
  type: 'object',
  // `url` may be left out when the coordinator registers participants by name (--participant); without a registry it is required (400 invalid_participant).
  properties: { name: { type: 'string' }, url: { type: 'string' } },
  required: ['name'],
  additionalProperties: false,
});

export const faultsBody = ajv.compile({
  type: 'object',
  properties: { blockedUrls: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', pattern: '^https?://', maxLength: 512 } } },
  required: ['blockedUrls'],
  additionalProperties: false,
});

export const commitBody = ajv.compile({ type: 'object', additionalProperties: false });

export const abortBody = ajv.compile({
  type: 'object',
  properties: { reason: { type: 'string', maxLength: PROTOCOL_LIMITS.maxReasonChars } },
  additionalProperties: false,
});

export const listQuery = ajv.compile({
  type: 'object',
  properties: {
    state: { enum: ['active', 'preparing', 'committed', 'aborted', 'in-doubt'] },
    limit: { type: 'string', pattern: '^[0-9]{1,6}$' },
    after: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,1100}$' },
  },
  additionalProperties: false,
});

/**
 * Who may call what with tokens on (docs/SECURITY.md): probes, metrics and
 * the document are public; a transaction's own calls need `client` (admin
 * passes too); the listing and `/v1/admin/*` need `admin`. A route missing
 * here needs admin (fail-closed).
 */
export const COORDINATOR_ROUTE_POLICIES: Readonly<Record<string, RoutePolicy>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /openapi.json': 'public',
  'POST /v1/transactions': 'client',
  'POST /v1/transactions/:id/participants': 'client',
  'POST /v1/transactions/:id/commit': 'client',
  'POST /v1/transactions/:id/abort': 'client',
  'GET /v1/transactions/:id': 'client',
  'GET /v1/transactions': 'admin',
  'GET /v1/admin/faults': 'admin',
  'PUT /v1/admin/faults': 'admin',
  'DELETE /v1/admin/faults': 'admin',
};

// ---------------------------------------------------------------------------
// Answers

const int = { type: 'integer', minimum: 0 } as const;
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const listedState = { enum: ['active', 'preparing', 'committed', 'aborted', 'in-doubt'] } as const;

const participant = strictObject({ name: str, url: str });
const vote = strictObject({ vote: { enum: ['yes', 'no'] }, by: str, reason: str }, ['reason']);
const outcome = strictObject(
  {
    id: str,
    outcome: { enum: ['committed', 'aborted'] },
    votes: { type: 'object', description: 'Every frozen participant: its vote, or null where none was needed to decide.', additionalProperties: { enum: ['yes', 'no', null] } },
    reason: { type: 'string', description: 'Why it aborted (present only then).' },
  },
  ['reason'],
);
const txView = strictObject(
  {
    id: str,
    state: listedState,
    participants: { type: 'array', items: participant },
    votes: { type: 'object', additionalProperties: vote },
    decision: { enum: ['commit', 'abort', null] },
    acks: { type: 'object', description: 'Participant name to the epoch ms it applied the decision.', additionalProperties: int },
    createdAt: int,
    deadline: int,
    collected: bool,
    collectedAt: int,
    recordState: { enum: ['active', 'preparing'] },
    metadata: { type: 'object' },
  },
  ['collectedAt', 'recordState', 'metadata'],
);
const txSummary = strictObject({ id: str, state: listedState, participants: { type: 'array', items: str }, createdAt: int, deadline: int, collected: bool });

const txIdParam: ParamDoc = { name: 'id', in: 'path', description: 'A transaction id: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters.', schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' } };

/** What any call on a transaction may answer besides its own codes: the store's and this process's limits. */
const TX_ERRORS: ErrorCodes = { 500: ['corrupt_value'], 503: ['store_unavailable', 'too_many_transactions', 'shutting_down'], 504: ['timeout'] };
const TX_ID_ERRORS: ErrorCodes = { 400: ['invalid_tx_id'], 404: ['tx_not_found'] };

function transactionRoutes(c: CoordinatorConfig): RouteDoc[] {
  return [
    {
      method: 'post',
      path: '/v1/transactions',
      summary: 'Begin a transaction',
      description: `Every field is optional. \`timeoutMs\` from ${c.minTimeoutMs} to ${c.maxTimeoutMs} (default ${c.defaultTimeoutMs}); \`participants\` as \`{name, url}\` (at most ${c.maxParticipants}; with participants registered by name, \`{name}\` alone, and a \`url\` must be the registered one); \`metadata\` any JSON object of at most 16 KiB serialized. A repeated Idempotency-Key answers the same transaction, on any coordinator. \`429 store_nearly_full\` (with Retry-After) while the store holds more than ${c.storeHighWaterPercent}% of its quota or its NOSPACE alarm is raised: back-pressure on new transactions only (begun ones go on).`,
      params: [{ name: 'Idempotency-Key', in: 'header', description: '1 to 255 visible ASCII characters; the id is derived from it.', schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' } }],
      body: schemaOf(beginBody),
      bodyOptional: true,
      ok: { 201: { description: 'Begun (or, for a repeated key, as it is now)', json: strictObject({ id: str, state: { enum: ['active', 'preparing', 'committed', 'aborted'] }, deadline: int }) } },
      errors: { ...TX_ERRORS, 400: ['invalid_request', 'invalid_participant', 'unregistered_participant', 'invalid_timeout', 'duplicate_participant', 'too_many_participants', 'invalid_argument', 'invalid_idempotency_key'], 429: ['store_nearly_full'] },
    },
    {
      method: 'get',
      path: '/v1/transactions',
      summary: 'List transactions, live and collected, ordered by id',
      params: queryParams(schemaOf(listQuery), { state: 'Only transactions in this state.', limit: `1 to ${c.listMaxLimit} (default ${c.listDefaultLimit}).`, after: 'The `next` of the previous page.' }),
      ok: { 200: { description: 'One page; `next` is null on the last', json: strictObject({ transactions: { type: 'array', items: txSummary }, next: { type: ['string', 'null'] } }) } },
      errors: { ...TX_ERRORS, 400: ['invalid_request'] },
    },
    { method: 'get', path: '/v1/transactions/{id}', summary: 'One transaction, from its keys or its compacted record', params: [txIdParam], ok: { 200: { description: 'The transaction', json: txView } }, errors: { ...TX_ERRORS, ...TX_ID_ERRORS } },
    {
      method: 'post',
      path: '/v1/transactions/{id}/participants',
      summary: 'Enlist a participant (idempotent for the same name and url)',
      params: [txIdParam],
      body: schemaOf(enlistBody),
      ok: { 200: { description: 'Enlisted', json: strictObject({ id: str, participant }) } },
      errors: { ...TX_ERRORS, ...TX_ID_ERRORS, 400: ['invalid_tx_id', 'invalid_request', 'invalid_participant', 'unregistered_participant'], 409: ['tx_not_active', 'participant_conflict', 'too_many_participants'] },
    },
    {
      method: 'post',
      path: '/v1/transactions/{id}/commit',
      summary: 'Commit: freeze the list, ask for votes, answer at the commit point',
      description: `Waits until the deadline plus ${c.commitGraceMs} ms, then 504 timeout: the call is idempotent; retry it or GET the transaction.`,
      params: [txIdParam],
      body: schemaOf(commitBody),
      bodyOptional: true,
      ok: { 200: { description: 'The outcome', json: outcome } },
      errors: { ...TX_ERRORS, 400: ['invalid_tx_id', 'invalid_request'], 404: ['tx_not_found'] },
    },
    {
      method: 'post',
      path: '/v1/transactions/{id}/abort',
      summary: 'Abort (unless it committed)',
      params: [txIdParam],
      body: schemaOf(abortBody),
      bodyOptional: true,
      ok: { 200: { description: 'The outcome: aborted', json: outcome } },
      errors: { ...TX_ERRORS, 400: ['invalid_tx_id', 'invalid_request'], 404: ['tx_not_found'], 409: ['already_committed'] },
    },
  ];
}

/** The recovery sweep election as /healthz shows it (coordinator/runtime/sweep-election.ts). */
const SWEEP_LEADER = strictObject({ id: str, term: int, token: int });
const SWEEP_STATUS = strictObject({
  name: str,
  state: { enum: ['stopped', 'opening', 'campaigning', 'leading'] },
  leading: { type: 'boolean' },
  leader: { oneOf: [SWEEP_LEADER, { type: 'null' }] },
  elections: int,
  losses: int,
  ttlMs: int,
});

function processRoutes(): RouteDoc[] {
  return [
    { method: 'get', path: '/healthz', summary: 'Liveness', ok: { 200: { description: 'Alive; `sweep` only with --sweep-election', json: strictObject({ ok: { const: true }, id: str, liveTransactions: int, sweep: SWEEP_STATUS }, ['sweep']) } } },
    readyzRoute('Ready when the store answers and start-up recovery ran.'),
    metricsRoute('/metrics'),
    OPENAPI_ROUTE,
  ];
}

function faultRoutes(): RouteDoc[] {
  const ok = { 200: { description: 'The participant URLs this coordinator treats as unreachable', json: strictObject({ id: str, blockedUrls: { type: 'array', items: str } }) } };
  return [
    { method: 'get', path: '/v1/admin/faults', summary: 'Fault injection state (RAFT2PC_FAULTS=1 only)', ok },
    { method: 'put', path: '/v1/admin/faults', summary: 'Treat these participant URLs as unreachable (RAFT2PC_FAULTS=1 only)', body: schemaOf(faultsBody), ok, errors: { 400: ['invalid_request'] } },
    { method: 'delete', path: '/v1/admin/faults', summary: 'Heal (RAFT2PC_FAULTS=1 only)', ok },
  ];
}

/**
 * The document; every route but the public ones carries the token answers
 * (401, 403) and the `bearer` requirement of COORDINATOR_ROUTE_POLICIES
 * (routes.ts), which come only with --auth-tokens.
 */
export function coordinatorOpenApi(config: CoordinatorConfig, opts: { readonly faultRoutes: boolean }): OpenApiDocument {
  const doc = buildOpenApi({
    title: 'raft2pc coordinator',
    version: '1',
    description: [
      'Two-phase commit over the store (docs/API.md, "Coordinator contract"). Stateless: any coordinator answers for, and finishes, any transaction; every call is idempotent, so a 503 or 504 never means the operation failed.',
      `Bodies are JSON of any content type (an empty body reads as \`{}\`), at most ${config.maxBodyBytes} bytes; unknown fields and query parameters are refused. Every error is \`{"error": {"code", "message", ...details}}\`; a path or method with no route is \`404 not_found\` (schema: components.schemas.ErrorBody).`,
    ].join('\n\n'),
    commonErrors: { 400: ['invalid_json', 'invalid_path', 'bad_request'], 413: ['body_too_large'], 500: ['internal'] },
    routes: withTokenErrors([...transactionRoutes(config), ...processRoutes(), ...(opts.faultRoutes ? faultRoutes() : [])], COORDINATOR_ROUTE_POLICIES),
  });
  return withBearerScheme(doc, COORDINATOR_ROUTE_POLICIES);
}
