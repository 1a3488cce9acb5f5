/** JSON schemas of the auth routes' request bodies (store/api/auth.ts), checked before anything reaches Raft. */
import { Ajv } from 'ajv';
import { AUTH_LIMITS } from '../kv/auth.js';
import { CREDENTIAL_LIMITS } from './auth-token.js';

const ajv = new Ajv({ allErrors: false, strict: true });

const name = { type: 'string', pattern: AUTH_LIMITS.namePattern.source } as const;
const password = { type: 'string', minLength: 1, maxLength: CREDENTIAL_LIMITS.maxPasswordChars } as const;
const permissionKey = { type: 'string', maxLength: AUTH_LIMITS.maxPatternBytes, description: 'A key or key prefix; `*` stands for one whole path segment.' } as const;
const match = { enum: ['exact', 'prefix'] } as const;

export const authenticateBody = ajv.compile({
  type: 'object',
  properties: { name, password, ttlMs: { type: 'integer', minimum: 1_000, maximum: CREDENTIAL_LIMITS.maxTokenTtlMs } },
  required: ['name', 'password'],
  additionalProperties: false,
});

export const userAddBody = ajv.compile({ type: 'object', properties: { name, password }, required: ['name', 'password'], additionalProperties: false });
export const passwordBody = ajv.compile({ type: 'object', properties: { password }, required: ['password'], additionalProperties: false });
export const roleBody = ajv.compile({ type: 'object', properties: { role: name }, required: ['role'], additionalProperties: false });
export const nameBody = ajv.compile({ type: 'object', properties: { name }, required: ['name'], additionalProperties: false });

export const permissionBody = ajv.compile({
  type: 'object',
  properties: { key: permissionKey, match, perm: { enum: ['read', 'write', 'readwrite'] } },
  required: ['key', 'match', 'perm'],
  additionalProperties: false,
});

export const revokePermissionBody = ajv.compile({ type: 'object', properties: { key: permissionKey, match }, required: ['key', 'match'], additionalProperties: false });
