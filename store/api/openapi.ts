/**
 * The store's HTTP API as an OpenAPI 3.1 document (docs/API.md, "The store
 * contract"), served at `GET /openapi.json`. Request bodies are the schemas
 * of schemas.ts that the routes check; the answers are described here, and
 * test/openapi/store.test.ts checks both against the routes and real answers.
 */
import { buildOpenApi, metricsRoute, OPENAPI_ROUTE, readyzRoute, schemaOf, strictObject, type ErrorCodes, type JsonSchema, type OpenApiDocument, type ParamDoc, type RouteDoc } from '../../lib/openapi.js';
import { authRouteDocs, withAuthErrors } from './openapi-auth.js';
import { casBody, faultsBody, leaseGrantBody, memberAddBody, putBody, transferBody, txnBody, batchBody } from './schemas.js';

export interface StoreOpenApiOptions {
  /** The node's request body cap (NodeConfig.maxBodyBytes). */
  readonly maxBodyBytes: number;
  /** Whether the node serves `/v1/admin/faults` (chaos runs only). */
  readonly faultRoutes: boolean;
}

const int = { type: 'integer', minimum: 0 } as const;
const str = { type: 'string' } as const;
const strOrNull = { type: ['string', 'null'] } as const;
const bool = { type: 'boolean' } as const;

const keyValue = strictObject({ key: str, value: str, version: int, createRevision: int, modRevision: int, lease: int }, ['lease']);

const getResult = strictObject({ type: { const: 'get' }, kv: { oneOf: [keyValue, { type: 'null' }] }, revision: int });
const rangeResult = strictObject({ type: { const: 'range' }, kvs: { type: 'array', items: keyValue }, more: bool, revision: int });
const putResult = strictObject({ type: { const: 'put' }, revision: int, previous: strOrNull });
const deleteResult = strictObject({ type: { const: 'delete' }, deleted: bool, previous: strOrNull, revision: int });

const member = strictObject({ id: str, clientUrl: str, peerAddress: str });

const alarm = strictObject({
  type: { const: 'NOSPACE' },
  raisedAtRevision: int,
  storeBytes: { ...int, description: 'Stored key and value bytes when it was raised.' },
  growthBytes: { ...int, description: 'What the refused write would have added: the room a disarm needs.' },
});
/** The quota facts of /v1/status and /v1/alarms. */
const quotaFields = {
  storeBytes: { ...int, description: 'Key and value bytes of all live keys (what the quota limits).' },
  quotaBytes: { ...int, description: 'The quota (--quota-bytes).' },
  alarms: { type: 'array', items: alarm, description: 'Raised alarms: NOSPACE while growing writes are refused.' },
} as const;

const keyParam: ParamDoc = {
  name: 'key',
  in: 'path',
  description: 'The key, percent-encoded (encodeURIComponent); an unencoded `/` also works, but empty segments are dropped.',
  schema: { type: 'string', minLength: 1 },
};
const consistencyParam: ParamDoc = {
  name: 'consistency',
  in: 'query',
  description: '`linearizable` (default: a ReadIndex round) or `serializable` (this node as it is, no round trip).',
  schema: { enum: ['linearizable', 'serializable'] },
};
const requestIdParam: ParamDoc = {
  name: 'Request-Id',
  in: 'header',
  description: '`<clientId>:<sequence>` for exactly-once writes: the same header on a retry is answered with the original result.',
  schema: { type: 'string', pattern: '^[^:\\s]{1,128}:[0-9]{1,15}$' },
};
const leaseIdParam: ParamDoc = { name: 'id', in: 'path', description: 'A lease id, a positive integer.', schema: { type: 'string', pattern: '^[0-9]{1,16}$' } };

/** Answers of a read that waits for a ReadIndex round. */
const READ_ERRORS: ErrorCodes = { 400: ['invalid_request'], 503: ['no_leader', 'busy'], 504: ['request_timeout'] };
/** Answers of any write run on the leader (here, or forwarded one hop). */
const LEADER_ERRORS: ErrorCodes = { 503: ['no_leader', 'busy', 'proposal_dropped'], 504: ['request_timeout', 'outcome_unknown'] };
/** A KV write: the leader's answers, Request-Id sessions, and the KV checks. */
const KV_WRITE_ERRORS: ErrorCodes = {
  ...LEADER_ERRORS,
  400: ['invalid_request', 'invalid_request_id', 'invalid_key', 'invalid_value', 'invalid_command', 'invalid_argument'],
  404: ['lease_not_found'],
  409: ['request_id_stale'],
  413: ['key_too_large', 'value_too_large'],
  429: ['store_full'],
};
/** Routes that read a JSON body. */
const BODY_ERRORS: ErrorCodes = { 400: ['invalid_json', 'request_aborted', 'invalid_request'], 413: ['body_too_large'] };

function merge(...sets: ErrorCodes[]): ErrorCodes {
  const out: Record<number, string[]> = {};
  for (const s of sets) for (const [status, codes] of Object.entries(s)) out[Number(status)] = [...new Set([...(out[Number(status)] ?? []), ...codes])];
  return out;
}

function statusRoutes(): RouteDoc[] {
  return [
    { method: 'get', path: '/healthz', summary: 'Liveness: the process serves (says nothing of a leader)', ok: { 200: { description: 'Alive', json: strictObject({ ok: { const: true }, id: str }) } } },
    readyzRoute('Ready when this node knows a leader and has applied what it must.'),
    metricsRoute('/metrics'),
    OPENAPI_ROUTE,
    {
      method: 'get',
      path: '/v1/status',
      summary: "This node's view, no round trip",
      ok: {
        200: {
          description: 'Status',
          json: strictObject({
            id: str,
            pid: int,
            role: { enum: ['leader', 'follower', 'preCandidate', 'candidate'] },
            term: int,
            leaderId: strOrNull,
            commitIndex: int,
            appliedIndex: int,
            revision: int,
            ...quotaFields,
            members: { type: 'array', items: strictObject({ id: str, clientUrl: str, peerAddress: str, learner: bool }) },
          }),
        },
      },
    },
  ];
}

function kvRoutes(): RouteDoc[] {
  const writeParams = [keyParam, requestIdParam];
  return [
    {
      method: 'get',
      path: '/v1/kv',
      summary: 'Range: keys with a prefix, in key byte order, paged',
      params: [
        { name: 'prefix', in: 'query', description: 'Every key starting with this (empty or absent: every key).', schema: str },
        { name: 'limit', in: 'query', description: 'At most this many keys (1 to 10,000, the default).', schema: { type: 'string', pattern: '^[0-9]+$' } },
        { name: 'after', in: 'query', description: 'Only keys strictly after this one: the last key of the previous page.', schema: str },
        consistencyParam,
      ],
      ok: { 200: { description: 'One page, read at `revision`', json: strictObject({ kvs: { type: 'array', items: keyValue }, more: bool, revision: int }) } },
      errors: merge(READ_ERRORS, { 400: ['limit_too_large', 'invalid_key'], 413: ['key_too_large'] }),
    },
    { method: 'get', path: '/v1/kv/{key}', summary: 'Get one key', params: [keyParam, consistencyParam], ok: { 200: { description: 'The key', json: keyValue } }, errors: merge(READ_ERRORS, { 400: ['invalid_key'], 404: ['key_not_found'], 413: ['key_too_large'] }) },
    { method: 'put', path: '/v1/kv/{key}', summary: 'Put a value (with `lease`: attach the key; without: detach it)', params: writeParams, body: schemaOf(putBody), ok: { 200: { description: 'Written', json: strictObject({ revision: int, previous: strOrNull }) } }, errors: merge(KV_WRITE_ERRORS, BODY_ERRORS) },
    {
      method: 'post',
      path: '/v1/kv/{key}/cas',
      routerPath: '/v1/kv/*path',
      summary: 'Compare-and-set: write `value` only if the key holds `expected` (null: only if absent)',
      params: writeParams,
      body: schemaOf(casBody),
      ok: { 200: { description: 'Whether it was written; `previous` is the value before the call either way', json: strictObject({ succeeded: bool, previous: strOrNull, revision: int }) } },
      errors: merge(KV_WRITE_ERRORS, BODY_ERRORS),
    },
    { method: 'delete', path: '/v1/kv/{key}', summary: 'Delete a key (a missing key: deleted false)', params: writeParams, ok: { 200: { description: 'Deleted or not', json: strictObject({ deleted: bool, previous: strOrNull, revision: int }) } }, errors: KV_WRITE_ERRORS },
    {
      method: 'post',
      path: '/v1/txn',
      summary: 'Atomic compare, then success or failure ops (etcd semantics)',
      params: [requestIdParam],
      body: schemaOf(txnBody),
      ok: { 200: { description: 'One result per op of the branch that ran', json: strictObject({ succeeded: bool, revision: int, results: { type: 'array', items: { oneOf: [getResult, rangeResult, putResult, deleteResult] } } }) } },
      errors: merge(KV_WRITE_ERRORS, BODY_ERRORS, { 400: ['too_many_ops', 'duplicate_key_in_txn', 'limit_too_large'] }),
    },
    {
      method: 'post',
      path: '/v1/batch',
      summary: 'Independent writes (put, cas, delete, txn) in one request',
      description:
        'Each item is its own write with its own result, as if sent alone, and carries its own `requestId` (applied at most once). All items are checked first: one bad item refuses the batch (400, `item` names it) and nothing is written. After that items succeed or fail independently: a result is the single route\'s answer, or `{error: {code, status, message}}`.',
      body: schemaOf(batchBody),
      ok: { 200: { description: 'One result per item, in order', json: strictObject({ results: { type: 'array', items: { type: 'object' } } }) } },
      errors: merge(KV_WRITE_ERRORS, BODY_ERRORS, { 400: ['too_many_ops', 'duplicate_key_in_txn', 'limit_too_large', 'duplicate_request_id'] }),
    },
    {
      method: 'get',
      path: '/v1/watch',
      summary: 'Watch a prefix or a key as server-sent events',
      description: 'Give exactly one of `prefix` and `key`. Each event is `event: put|delete` with `data: {type, key, value, revision}`; `id` marks the last event of each revision (the resume point).',
      params: [
        { name: 'prefix', in: 'query', schema: str },
        { name: 'key', in: 'query', schema: str },
        { name: 'fromRevision', in: 'query', description: 'Start with the changes at this revision.', schema: { type: 'string', pattern: '^[0-9]+$' } },
        { name: 'prevValue', in: 'query', description: '`true`: events also carry `prevValue`.', schema: { enum: ['true', 'false'] } },
        { name: 'Last-Event-ID', in: 'header', description: 'Resume after this revision (when `fromRevision` is absent).', schema: str },
      ],
      ok: { 200: { description: 'An event stream, open until the client closes it', text: 'text/event-stream' } },
      errors: { 400: ['invalid_request', 'invalid_revision'], 410: ['compacted'], 503: ['too_many_watchers'] },
    },
  ];
}

function leaseRoutes(): RouteDoc[] {
  const lease = strictObject({ id: int, ttlMs: int });
  return [
    { method: 'get', path: '/v1/leases', summary: 'Live leases (`remainingMs` known on the leader only)', ok: { 200: { description: 'Leases', json: strictObject({ leases: { type: 'array', items: strictObject({ id: int, ttlMs: int, keys: int, remainingMs: { type: ['number', 'null'], minimum: 0, description: 'Milliseconds, possibly fractional (the leader\'s monotonic clock); null off the leader.' } }) } }) } } },
    { method: 'post', path: '/v1/leases', summary: 'Grant a lease', params: [requestIdParam], body: schemaOf(leaseGrantBody), ok: { 200: { description: 'Granted', json: lease } }, errors: merge(LEADER_ERRORS, BODY_ERRORS, { 400: ['invalid_request_id', 'invalid_command'], 409: ['lease_exists', 'request_id_stale'], 429: ['too_many_leases'] }) },
    { method: 'post', path: '/v1/leases/{id}/keepalive', summary: "Restart a lease's TTL", params: [leaseIdParam], ok: { 200: { description: 'Kept alive', json: lease } }, errors: merge(LEADER_ERRORS, { 400: ['invalid_lease_id'], 404: ['lease_not_found'] }) },
    {
      method: 'delete',
      path: '/v1/leases/{id}',
      summary: 'Revoke a lease, deleting its keys',
      params: [leaseIdParam, requestIdParam],
      ok: { 200: { description: 'Revoked', json: strictObject({ revoked: { const: true }, id: int, revision: int }) } },
      errors: merge(LEADER_ERRORS, { 400: ['invalid_lease_id', 'invalid_request_id'], 404: ['lease_not_found'], 409: ['request_id_stale'] }),
    },
  ];
}

function memberRoutes(): RouteDoc[] {
  const change = merge(LEADER_ERRORS, { 400: ['conf_change_invalid'], 409: ['conf_change_pending'] });
  const roleMember = strictObject({ id: str, clientUrl: str, peerAddress: str, role: { enum: ['voter', 'learner'] }, leader: bool });
  return [
    { method: 'get', path: '/v1/members', summary: 'Members as this node knows them', ok: { 200: { description: 'Members', json: strictObject({ members: { type: 'array', items: roleMember } }) } } },
    { method: 'post', path: '/v1/members', summary: 'Add a member (a learner unless `learner: false`)', body: schemaOf(memberAddBody), ok: { 200: { description: 'Added', json: strictObject({ added: member, learner: bool }) } }, errors: merge(change, BODY_ERRORS) },
    { method: 'post', path: '/v1/members/{id}/promote', summary: 'Promote a learner to voter', ok: { 200: { description: 'Promoted', json: strictObject({ promoted: str }) } }, errors: merge(change, { 404: ['member_not_found'] }) },
    { method: 'delete', path: '/v1/members/{id}', summary: 'Remove a member (the leader may remove itself)', ok: { 200: { description: 'Removed', json: strictObject({ removed: str }) } }, errors: merge(change, { 404: ['member_not_found'] }) },
    { method: 'post', path: '/v1/leader/transfer', summary: 'Move leadership to a voter', body: schemaOf(transferBody), ok: { 200: { description: 'A new leader is seen', json: strictObject({ leaderId: str }) } }, errors: merge(LEADER_ERRORS, BODY_ERRORS, { 400: ['invalid_target'], 504: ['transfer_timeout'] }) },
  ];
}

function alarmRoutes(): RouteDoc[] {
  return [
    { method: 'get', path: '/v1/alarms', summary: "Raised alarms, stored bytes and the quota (this node's view, like etcdctl alarm list)", ok: { 200: { description: 'Alarms', json: strictObject(quotaFields) } } },
    {
      method: 'post',
      path: '/v1/alarms/disarm',
      summary: 'Disarm NOSPACE (etcdctl alarm disarm), once the write that raised it would fit',
      ok: { 200: { description: 'Disarmed (`disarmed: false`: none was raised)', json: strictObject({ disarmed: bool, storeBytes: int, quotaBytes: int }) } },
      errors: merge(LEADER_ERRORS, { 409: ['still_over_quota'] }),
    },
  ];
}

function snapshotRoutes(): RouteDoc[] {
  const gone = { 404: ['snapshot_offer_not_found'] };
  const any = { type: 'object' } as JsonSchema;
  return [
    { method: 'get', path: '/internal/v1/snapshots/{id}/header', summary: 'Peer use: the header of a snapshot stream the leader offered (state besides the keys and the history)', ok: { 200: { description: 'Header', json: strictObject({ appliedIndex: int, state: any, historyEvents: int }) } }, errors: gone },
    { method: 'get', path: '/internal/v1/snapshots/{id}/history', summary: "Peer use: a page of a snapshot stream's watch history, from position `from`", ok: { 200: { description: 'A page', json: strictObject({ events: { type: 'array', items: any }, more: bool }) } }, errors: merge(gone, { 400: ['invalid_request'] }) },
    { method: 'get', path: '/internal/v1/snapshots/{id}/keys', summary: 'Peer use: the next page of keys of a snapshot stream, after `after`', ok: { 200: { description: 'A page', json: strictObject({ rows: { type: 'array', items: { type: 'array' } }, more: bool }) } }, errors: gone },
  ];
}

function faultRoutes(): RouteDoc[] {
  const state: JsonSchema = strictObject({ id: str, blockedPeers: { type: 'array', items: str } });
  const ok = { 200: { description: 'The peers this node drops Raft messages to and from', json: state } };
  return [
    { method: 'get', path: '/v1/admin/faults', summary: 'Fault injection state (RAFT2PC_FAULTS=1 only)', ok },
    { method: 'put', path: '/v1/admin/faults', summary: 'Drop every Raft message to and from these peers (RAFT2PC_FAULTS=1 only)', body: schemaOf(faultsBody), ok, errors: BODY_ERRORS },
    { method: 'delete', path: '/v1/admin/faults', summary: 'Heal (RAFT2PC_FAULTS=1 only)', ok },
  ];
}

export function storeOpenApi(opts: StoreOpenApiOptions): OpenApiDocument {
  return buildOpenApi({
    title: 'raft2pc store',
    version: '1',
    description: [
      'The built-in replicated key-value store (docs/API.md, "The store contract"). Every node serves the whole API: writes are forwarded to the leader; reads are linearizable unless `consistency=serializable`.',
      `Request bodies are JSON, at most ${opts.maxBodyBytes} bytes. Every error is \`{"error": {"code", "message", ...details}}\`; a path with no route is \`404 not_found\`, a known path with another method \`405 method_not_allowed\` (schema: components.schemas.ErrorBody).`,
    ].join('\n\n'),
    commonErrors: { 400: ['invalid_path'], 500: ['internal'] },
    // With auth on (docs/SECURITY.md), every route that is not public may also answer 401 or 403.
    routes: [...statusRoutes(), ...kvRoutes(), ...leaseRoutes(), ...memberRoutes(), ...alarmRoutes(), ...authRouteDocs(), ...snapshotRoutes(), ...(opts.faultRoutes ? faultRoutes() : [])].map(withAuthErrors),
  });
}
