/**
 * The store's credentials, made and checked on the API node: scrypt password
 * hashes (node:crypto; hashed before proposing, so no password enters the
 * Raft log) and expiring tokens signed with HMAC-SHA256 under the replicated
 * secret (store/kv/auth.ts), so every member verifies a token any member
 * issued. A token names the user, the user's revision (a changed password or
 * role set revokes older tokens) and its expiry:
 *
 *   r2p1.<base64url JSON {u, r, e}>.<base64url HMAC-SHA256 of "r2p1." + payload>
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import type { AuthUser } from '../kv/auth.js';

/** Named limits of credentials. */
export const CREDENTIAL_LIMITS = Object.freeze({
  /** A token lives this long unless the authenticate call asks for less (or more, up to the max). */
  defaultTokenTtlMs: 5 * 60_000,
  maxTokenTtlMs: 60 * 60_000,
  /** Characters of a password. */
  maxPasswordChars: 1_024,
  /** Characters of a token as sent (anything longer is not one). */
  maxTokenChars: 2_048,
  /** scrypt runs at once on one node (each takes ~16 MiB and tens of ms): more get 429. */
  maxConcurrentHashes: 8,
});

/** scrypt cost of new hashes: N = 2^14, r = 8, p = 1 (node's defaults, ~16 MiB), 32-byte key, 16-byte salt. */
const SCRYPT = { N: 16_384, r: 8, p: 1, keyBytes: 32, saltBytes: 16 };
/** Stored hashes are trusted only up to this cost (a hash is root's input, but bounded anyway). */
const MAX_SCRYPT_N = 1 << 17;
const MAX_SCRYPT_RP = 16;
const TOKEN_PREFIX = 'r2p1.';

let hashing = 0;

/** Runs one scrypt with the node's concurrency bound; 429 `too_many_authentications` past it. */
async function boundedScrypt(password: string, salt: Buffer, N: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  if (hashing >= CREDENTIAL_LIMITS.maxConcurrentHashes) {
    throw new AppError('too_many_authentications', 429, `at most ${CREDENTIAL_LIMITS.maxConcurrentHashes} password checks at once on a node`, { retryAfterSeconds: 1 });
  }
  hashing++;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      scrypt(password, salt, keyBytes, { N, r, p, maxmem: 256 * N * r * p }, (err, key) => (err ? reject(err) : resolve(key)));
    });
  } finally {
    hashing--;
  }
}

export function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length === 0 || password.length > CREDENTIAL_LIMITS.maxPasswordChars) {
    throw new AppError('invalid_request', 400, `a password is a string of 1..${CREDENTIAL_LIMITS.maxPasswordChars} characters`);
  }
  return password;
}

/** `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltBytes);
  const key = await boundedScrypt(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keyBytes);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether `password` is the one `stored` was made from; false for anything malformed. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/=]{1,100})\$([A-Za-z0-9+/=]{1,200})$/.exec(stored);
  if (m === null) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || N > MAX_SCRYPT_N || (N & (N - 1)) !== 0 || r < 1 || r > MAX_SCRYPT_RP || p < 1 || p > MAX_SCRYPT_RP) return false;
  const expected = Buffer.from(m[5] as string, 'base64');
  if (expected.length < 16) return false;
  const key = await boundedScrypt(password, Buffer.from(m[4] as string, 'base64'), N, r, p, expected.length);
  return timingSafeEqual(key, expected);
}

/** A hash no password matches, checked for unknown users so their answer takes as long as a wrong password's. */
export const DECOY_HASH = `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;

/** 32 random bytes as hex: the token-signing secret proposed with `auth enable`. */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

function sign(secretHex: string, payload: string): Buffer {
  return createHmac('sha256', Buffer.from(secretHex, 'hex')).update(TOKEN_PREFIX + payload).digest();
}

export function issueToken(secretHex: string, user: AuthUser, expiresAtMs: number): string {
  const payload = Buffer.from(JSON.stringify({ u: user.name, r: user.revision, e: expiresAtMs })).toString('base64url');
  return `${TOKEN_PREFIX}${payload}.${sign(secretHex, payload).toString('base64url')}`;
}

/** What a token says once its signature checks; undefined for anything that is not a token signed with `secretHex`. */
export function readToken(secretHex: string, token: string): { user: string; revision: number; expiresAtMs: number } | undefined {
  if (token.length > CREDENTIAL_LIMITS.maxTokenChars || !token.startsWith(TOKEN_PREFIX) || secretHex === '') return undefined;
  const [payload, sig, ...rest] = token.slice(TOKEN_PREFIX.length).split('.');
  if (payload === undefined || sig === undefined || rest.length > 0) return undefined;
  const given = Buffer.from(sig, 'base64url');
  const expected = sign(secretHex, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const o = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { u?: unknown; r?: unknown; e?: unknown };
    if (typeof o.u !== 'string' || !Number.isSafeInteger(o.r) || !Number.isSafeInteger(o.e)) return undefined;
    return { user: o.u, revision: o.r as number, expiresAtMs: o.e as number };
  } catch {
    return undefined;
  }
}
