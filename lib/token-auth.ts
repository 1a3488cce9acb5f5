/**
 * Bearer tokens on the coordinator and participants (docs/SECURITY.md,
 * "Tokens on the coordinator and participants"): a static token file, like
 * Kubernetes' --token-auth-file but JSON and hashed,
 *
 *   { "tokens": [ { "name": "bank-app", "roles": ["client"], "sha256": "<hex>", "expiresAt": "2027-01-01T00:00:00Z" } ] }
 *
 * holding the SHA-256 of each token, never the token: the file is no usable
 * secret. A presented token is hashed and looked up by its hash. Each route
 * has a policy (public, client, coordinator, admin); a route missing from a
 * service's table needs admin (fail-closed). Answers: no `Authorization:
 * Bearer` 401 `unauthenticated`, an unknown token 401 `invalid_token`, an
 * expired one 401 `token_expired` (401s carry `WWW-Authenticate: Bearer`),
 * a token without the role 403 `forbidden`.
 *
 * The file is read again on SIGHUP and when it changes (lib/file-reload.ts,
 * the certificates' mechanism); a new file that is not valid leaves the old
 * table in force.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from './clock.js';
import { AppError } from './errors.js';
import { reloadOnChange, type ReloadTriggers } from './file-reload.js';
import { requestTarget, sendReply, type JsonReply, type Router } from './http.js';
import type { Logger } from './logger.js';
import { ajv, check } from './openapi.js';

export const TOKEN_PREFIX = 'r2pt_';
/** Random bytes in a token (base64url after the prefix). */
export const TOKEN_RANDOM_BYTES = 32;

/** Every bound the token code keeps; a file or header past one is refused. */
export const TOKEN_LIMITS = {
  /** A presented token (the Authorization header's credential), and a call-token file's contents. */
  maxTokenChars: 512,
  /** Entries in one token file. */
  maxEntries: 10_000,
  /** One token file on disk. */
  maxFileBytes: 4 * 1024 * 1024,
  maxNameChars: 128,
} as const;

/** The roles a token may carry: `client` (transactions), `coordinator` (prepare, decision), `admin` (everything but coordinator calls). */
export const TOKEN_ROLES = ['client', 'coordinator', 'admin'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** What a route needs: nothing, or a role (`client` routes also take `admin`). */
export type RoutePolicy = 'public' | TokenRole;

const RFC3339 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';

export const tokenFileSchema = ajv.compile({
  type: 'object',
  required: ['tokens'],
  additionalProperties: false,
  properties: {
    tokens: {
      type: 'array',
      maxItems: TOKEN_LIMITS.maxEntries,
      items: {
        type: 'object',
        required: ['name', 'roles', 'sha256'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: TOKEN_LIMITS.maxNameChars, pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$' },
          roles: { type: 'array', minItems: 1, maxItems: TOKEN_ROLES.length, uniqueItems: true, items: { enum: [...TOKEN_ROLES] } },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          expiresAt: { type: 'string', pattern: RFC3339 },
        },
      },
    },
  },
});

export interface TokenFileEntry {
  readonly name: string;
  readonly roles: readonly TokenRole[];
  readonly sha256: string;
  readonly expiresAt?: string;
}

/** Who a token names. */
export interface Principal {
  readonly name: string;
  readonly roles: ReadonlySet<TokenRole>;
  /** Epoch ms; undefined: never expires. */
  readonly expiresAtMs: number | undefined;
}

interface TableEntry extends Principal {
  readonly hash: Buffer;
}

/** A fresh token: the prefix and 32 random bytes, base64url. */
export function newToken(bytes: Buffer = randomBytes(TOKEN_RANDOM_BYTES)): string {
  return `${TOKEN_PREFIX}${bytes.toString('base64url')}`;
}

/** The lower-case hex SHA-256 of a token, as the file holds it. */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

function invalidFile(message: string): AppError {
  return new AppError('invalid_token_file', 400, message);
}

/** The tokens of one file, by hash. */
export class TokenTable {
  private readonly byHash = new Map<string, TableEntry>();

  constructor(entries: readonly TokenFileEntry[]) {
    for (const e of entries) {
      if (this.byHash.has(e.sha256)) throw invalidFile(`token ${e.name}: the same sha256 is listed twice`);
      const expiresAtMs = e.expiresAt === undefined ? undefined : Date.parse(e.expiresAt);
      if (expiresAtMs !== undefined && !Number.isFinite(expiresAtMs)) throw invalidFile(`token ${e.name}: expiresAt ${e.expiresAt} is not a date`);
      this.byHash.set(e.sha256, { name: e.name, roles: new Set(e.roles), expiresAtMs, hash: Buffer.from(e.sha256, 'hex') });
    }
  }

  get size(): number {
    return this.byHash.size;
  }

  /**
   * The entry of a presented token, or undefined. Found by the hash of what
   * was presented (never by comparing tokens), then the digests compared in
   * constant time.
   */
  lookup(presented: string): Principal | undefined {
    // One-shot crypto.hash: about half the cost of createHash().update().digest() per request.
    const digest = hash('sha256', presented, 'buffer');
    const entry = this.byHash.get(digest.toString('hex'));
    return entry !== undefined && timingSafeEqual(digest, entry.hash) ? entry : undefined;
  }
}

/** Parses and checks a token file's text; 400 `invalid_token_file` naming the first problem. */
export function parseTokenFile(text: string): TokenTable {
  if (Buffer.byteLength(text) > TOKEN_LIMITS.maxFileBytes) throw invalidFile(`the token file exceeds ${TOKEN_LIMITS.maxFileBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch {
    throw invalidFile('the token file is not JSON');
  }
  try {
    return new TokenTable(check<{ tokens: TokenFileEntry[] }>(tokenFileSchema, json).tokens);
  } catch (e) {
    if (e instanceof AppError && e.code === 'invalid_request') throw invalidFile(`the token file: ${e.message}`);
    throw e;
  }
}

const BEARER = /^Bearer +(\S+) *$/i;

function unauthenticated(code: 'unauthenticated' | 'invalid_token' | 'token_expired', message: string): AppError {
  return new AppError(code, 401, message);
}

/** The caller a request's Authorization header names; 401 when it names none (missing, unknown, expired). */
export function authenticate(table: TokenTable, header: string | undefined, nowMs: number): Principal {
  const m = header === undefined ? null : BEARER.exec(header);
  if (m === null) throw unauthenticated('unauthenticated', 'send Authorization: Bearer <token>');
  const token = m[1] as string;
  const p = token.length > TOKEN_LIMITS.maxTokenChars ? undefined : table.lookup(token);
  if (p === undefined) throw unauthenticated('invalid_token', 'the token is not known here');
  if (p.expiresAtMs !== undefined && p.expiresAtMs <= nowMs) throw unauthenticated('token_expired', `token ${p.name} expired`);
  return p;
}

/** Whether roles satisfy a policy: admin passes client and admin routes; only a coordinator passes coordinator routes. */
export function rolesAllow(roles: ReadonlySet<TokenRole>, policy: RoutePolicy): boolean {
  if (policy === 'public') return true;
  if (roles.has(policy)) return true;
  return policy === 'client' && roles.has('admin');
}

/** 401/403 unless the header names a caller the policy lets through; the caller (undefined on a public route). */
export function authorize(table: TokenTable, policy: RoutePolicy, header: string | undefined, nowMs: number): Principal | undefined {
  if (policy === 'public') return undefined;
  const p = authenticate(table, header, nowMs);
  if (!rolesAllow(p.roles, policy)) throw new AppError('forbidden', 403, `token ${p.name} lacks the ${policy} role`, { needs: policy });
  return p;
}

/** A refusal as a reply: 401s carry `WWW-Authenticate: Bearer` (RFC 6750), with its error for a bad token. */
export function refusalReply(e: AppError): JsonReply {
  if (e.status !== 401) return { status: e.status, body: e.toBody() };
  const challenge = e.code === 'unauthenticated' ? 'Bearer realm="raft2pc"' : 'Bearer realm="raft2pc", error="invalid_token"';
  return { status: 401, body: e.toBody(), headers: { 'www-authenticate': challenge } };
}

// ---------------------------------------------------------------------------
// Route policies

/**
 * A route's policy by method and request path, from a table keyed
 * `METHOD pattern` (the router's patterns), the route found as the router
 * finds it (HEAD as GET); a route the table does not list, or a path that
 * names no route, needs admin.
 */
export function routePolicyLookup(routes: Pick<Router, 'routeKeyOf'>, policies: Readonly<Record<string, RoutePolicy>>): (method: string, path: string) => RoutePolicy {
  return (method, path) => {
    const key = routes.routeKeyOf(method === 'HEAD' ? 'GET' : method, path);
    return key === undefined ? 'admin' : (policies[key] ?? 'admin');
  };
}

/** Routes of a route table that a policy table does not name (they need admin): what a coverage test lists. */
export function routesWithoutPolicy(routes: Pick<Router, 'routeTable'>, policies: Readonly<Record<string, RoutePolicy>>): string[] {
  return routes
    .routeTable()
    .map((r) => `${r.method} ${r.pattern}`)
    .filter((k) => policies[k] === undefined);
}

// ---------------------------------------------------------------------------
// The live table: loaded from a file, reloaded without a restart

/** How the token file is read (a test passes its own). */
export interface TokenFs {
  /** The file's text; throws past `maxBytes` or when it cannot be read. */
  readText(file: string, maxBytes: number): string;
}

export const nodeTokenFs: TokenFs = {
  readText(file, maxBytes) {
    if (statSync(file).size > maxBytes) throw invalidFile(`${file} exceeds ${maxBytes} bytes`);
    return readFileSync(file, 'utf8');
  },
};

export interface TokenAuthDeps {
  readonly fs?: TokenFs;
  /** Token expiry is judged on its wall clock. */
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly triggers?: ReloadTriggers;
}

function readTable(file: string, fs: TokenFs): TokenTable {
  let text: string;
  try {
    text = fs.readText(file, TOKEN_LIMITS.maxFileBytes);
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw invalidFile(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseTokenFile(text);
}

/** A service's token table, read from its file; `check` is the one question every request asks. */
export class TokenAuth {
  private table: TokenTable;
  private readonly fs: TokenFs;
  private readonly clock: Clock;

  private constructor(
    readonly file: string,
    private readonly deps: TokenAuthDeps,
  ) {
    this.fs = deps.fs ?? nodeTokenFs;
    this.clock = deps.clock ?? systemClock;
    this.table = readTable(file, this.fs);
  }

  /** Reads the file now; a missing or invalid file throws 400 `invalid_token_file`. */
  static open(file: string, deps: TokenAuthDeps = {}): TokenAuth {
    return new TokenAuth(file, deps);
  }

  get size(): number {
    return this.table.size;
  }

  /** Reads the file again; keeps the old table (and logs why) when the new one is not valid. */
  reload(why: string): boolean {
    try {
      this.table = readTable(this.file, this.fs);
      this.deps.log?.('info', 'token file reloaded', { why, file: this.file, tokens: this.table.size });
      return true;
    } catch (e) {
      this.deps.log?.('warn', 'token file reload failed; keeping the old tokens', { why, file: this.file, error: e instanceof Error ? e.message : String(e) });
      return false;
    }
  }

  /** Reloads on SIGHUP and file change; returns the stop function. */
  watch(): () => void {
    return reloadOnChange({ files: [this.file], reload: (why) => void this.reload(why), ...(this.deps.triggers === undefined ? {} : { triggers: this.deps.triggers }) });
  }

  /** 401/403 unless the request may take a route of `policy`; the caller, or undefined on a public route. */
  check(policy: RoutePolicy, authorizationHeader: string | undefined): Principal | undefined {
    return authorize(this.table, policy, authorizationHeader, this.clock.nowMs());
  }
}

/**
 * A node:http admission check (lib/http.ts `NodeListenerOptions.admit`): runs
 * on a routed request before its body is read, and answers a refusal itself.
 */
export function bearerAdmission(auth: Pick<TokenAuth, 'check'>, policyOf: (method: string, path: string) => RoutePolicy): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const refusal = refusalOf(auth, policyOf, req.method ?? 'GET', requestTarget(req).pathname, req.headers.authorization);
    if (refusal === undefined) return true;
    sendReply(req, res, refusal);
    return false;
  };
}

/** The refusal of a request as a reply, or undefined when it may go on. */
export function refusalOf(auth: Pick<TokenAuth, 'check'>, policyOf: (method: string, path: string) => RoutePolicy, method: string, path: string, authorization: string | undefined): JsonReply | undefined {
  try {
    auth.check(policyOf(method, path), authorization);
    return undefined;
  } catch (e) {
    if (e instanceof AppError && (e.status === 401 || e.status === 403)) return refusalReply(e);
    throw e;
  }
}

/** One TokenAuth per file in a process (a participant's node:http and express adapters share it), watched from first use. */
const shared = new Map<string, { auth: TokenAuth; stop: () => void }>();

export function sharedTokenAuth(file: string, log?: Logger): TokenAuth {
  const key = resolve(file);
  const known = shared.get(key);
  if (known !== undefined) return known.auth;
  const auth = TokenAuth.open(key, log === undefined ? {} : { log });
  shared.set(key, { auth, stop: auth.watch() });
  return auth;
}

/** Stops watching every shared token file (tests). */
export function closeSharedTokenAuth(): void {
  for (const s of shared.values()) s.stop();
  shared.clear();
}

// ---------------------------------------------------------------------------
// A process's own token, sent on its calls (the coordinator's to participants)

function readCallToken(file: string, fs: TokenFs): string {
  let text: string;
  try {
    text = fs.readText(file, TOKEN_LIMITS.maxTokenChars + 2);
  } catch (e) {
    throw invalidFile(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]+$/.test(token) || token.length > TOKEN_LIMITS.maxTokenChars) throw invalidFile(`${file} does not hold one token (visible ASCII, at most ${TOKEN_LIMITS.maxTokenChars} characters)`);
  return token;
}

/** A token read from a file, read again on SIGHUP and file change (a bad new file keeps the old token). */
export class CallToken {
  private token: string;
  private readonly fs: TokenFs;

  constructor(
    readonly file: string,
    private readonly deps: Pick<TokenAuthDeps, 'fs' | 'log' | 'triggers'> = {},
  ) {
    this.fs = deps.fs ?? nodeTokenFs;
    this.token = readCallToken(file, this.fs);
  }

  get(): string {
    return this.token;
  }

  watch(): () => void {
    const reload = (why: string): void => {
      try {
        this.token = readCallToken(this.file, this.fs);
        this.deps.log?.('info', 'call token reloaded', { why, file: this.file });
      } catch (e) {
        this.deps.log?.('warn', 'call token reload failed; keeping the old one', { why, file: this.file, error: e instanceof Error ? e.message : String(e) });
      }
    };
    return reloadOnChange({ files: [this.file], reload, ...(this.deps.triggers === undefined ? {} : { triggers: this.deps.triggers }) });
  }
}
