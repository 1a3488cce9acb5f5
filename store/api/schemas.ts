/** JSON schemas of request bodies (ajv), checked before anything reaches Raft. */
import { Ajv, type ValidateFunction } from 'ajv';
import { AppError } from '../../lib/errors.js';

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });

const leaseId = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;

export const putBody = ajv.compile({
  type: 'object',
  properties: { value: { type: 'string' }, lease: leaseId },
  required: ['value'],
  additionalProperties: false,
});

export const casBody = ajv.compile({
  type: 'object',
  properties: { expected: { type: ['string', 'null'] }, value: { type: 'string' }, lease: leaseId },
  required: ['expected', 'value'],
  additionalProperties: false,
});

const txnOp = {
  type: 'object',
  properties: {
    type: { enum: ['get', 'put', 'delete', 'range'] },
    key: { type: 'string' },
    value: { type: 'string' },
    lease: leaseId,
    prefix: { type: 'string' },
    limit: { type: 'integer', minimum: 1 },
    after: { type: 'string' },
  },
  required: ['type'],
  additionalProperties: false,
} as const;

const compare = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    target: { enum: ['value', 'version', 'createRevision', 'modRevision'] },
    op: { enum: ['=', '!=', '<', '>'] },
    value: { type: ['string', 'integer'] },
  },
  required: ['key', 'target', 'op', 'value'],
  additionalProperties: false,
} as const;

export const txnBody = ajv.compile({
  type: 'object',
  properties: {
    compare: { type: 'array', items: compare, maxItems: 1024 },
    success: { type: 'array', items: txnOp, maxItems: 1024 },
    failure: { type: 'array', items: txnOp, maxItems: 1024 },
  },
  additionalProperties: false,
});

const requestId = { type: 'string', maxLength: 160 } as const;
const key = { type: 'string' } as const;

/** One item of POST /v1/batch (store/api/batch.ts): a put, CAS, delete or txn, as the single routes take them. */
const batchItem = {
  oneOf: [
    { type: 'object', properties: { type: { const: 'put' }, requestId, key, value: { type: 'string' }, lease: leaseId }, required: ['type', 'key', 'value'], additionalProperties: false },
    { type: 'object', properties: { type: { const: 'cas' }, requestId, key, expected: { type: ['string', 'null'] }, value: { type: 'string' }, lease: leaseId }, required: ['type', 'key', 'expected', 'value'], additionalProperties: false },
    { type: 'object', properties: { type: { const: 'delete' }, requestId, key }, required: ['type', 'key'], additionalProperties: false },
    {
      type: 'object',
      properties: { type: { const: 'txn' }, requestId, compare: { type: 'array', items: compare, maxItems: 1024 }, success: { type: 'array', items: txnOp, maxItems: 1024 }, failure: { type: 'array', items: txnOp, maxItems: 1024 } },
      required: ['type'],
      additionalProperties: false,
    },
  ],
} as const;

export const batchBody = ajv.compile({
  type: 'object',
  // 256: MAX_BATCH_ITEMS in batch.ts.
  properties: { items: { type: 'array', items: batchItem, minItems: 1, maxItems: 256 } },
  required: ['items'],
  additionalProperties: false,
});

export const leaseGrantBody = ajv.compile({
  type: 'object',
  properties: { ttlMs: { type: 'integer', minimum: 1 }, id: leaseId },
  required: ['ttlMs'],
  additionalProperties: false,
});

export const memberAddBody = ajv.compile({
  type: 'object',
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    clientUrl: { type: 'string', maxLength: 512 },
    peerAddress: { type: 'string', maxLength: 512 },
    learner: { type: 'boolean' },
  },
  required: ['id', 'clientUrl', 'peerAddress'],
  additionalProperties: false,
});

export const transferBody = ajv.compile({
  type: 'object',
  properties: { to: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['to'],
  additionalProperties: false,
});

/** Checks a body against a schema; a 400 `invalid_request` naming the first problem otherwise. */
/** Fault injection (chaos runs only): the peers this node stops talking to. */
export const faultsBody = ajv.compile({
  type: 'object',
  properties: { blockedPeers: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 64 } } },
  required: ['blockedPeers'],
  additionalProperties: false,
});

export function checkBody<T>(validate: ValidateFunction, body: unknown): T {
  if (body === undefined) throw new AppError('invalid_request', 400, 'a JSON body is required');
  if (!validate(body)) {
    const err = validate.errors?.[0];
    const where = err?.instancePath === '' || err === undefined ? 'body' : err.instancePath;
    throw new AppError('invalid_request', 400, `${where} ${err?.message ?? 'is invalid'}`);
  }
  return body as T;
}
