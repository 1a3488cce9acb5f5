/**
 * The secure composition of the demo's processes, in ONE place for
 * `npm start -- --secure`, `chaos --secure`, `bench:2pc -- --secure` and the
 * secure crash suite (docs/SECURITY.md, "The secure demo, chaos and bench"):
 *
 * - a development CA and certificates made into `<dir>/certs` (lib/certs.ts;
 *   a CA already there is kept, leaf certificates are issued anew);
 * - the store: HTTPS on the client API with client certificates, mutual TLS
 *   between members (store/node/launcher.ts `tlsArgs`), and auth on, with a
 *   root user and one least-privilege user per coordinator and participant
 *   (`twoPcRoles`, the permissions `kvctl auth setup-2pc` grants);
 * - the services: HTTPS with the same certificate shown both ways, and
 *   client certificates required where no browser calls;
 * - passwords: random, kept in `<dir>/store-users.json` (mode 0600, reused
 *   on a restart with the same data), handed to each process in its
 *   environment (RAFT2PC_STORE_USER / RAFT2PC_STORE_PASSWORD), never on argv;
 * - bearer tokens on the coordinators and participants (lib/token-auth.ts):
 *   one token file (`<dir>/tokens.json`, hashes only) that every coordinator
 *   and bank checks (`--auth-tokens`); a `coordinator` token per coordinator
 *   for its prepare and decision calls (`--call-token-file`); a `client` +
 *   `admin` token for the app (the page lists in-doubt transactions, an
 *   admin route) and one for the operator (the supervisor, a chaos runner,
 *   a test). Tokens are made anew at every start, in `<dir>/tokens/` (0600),
 *   and handed over by file name (`serviceTokenArgs`).
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDevCertificates, type DevCertFiles } from '../../lib/certs.js';
import { hashToken, newToken, type TokenFileEntry, type TokenRole } from '../../lib/token-auth.js';
import type { ClientTls } from '../../lib/tls.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { STORE_PASSWORD_ENV, STORE_USER_ENV } from '../../coordinator/txstore/open.js';
import { idempotent, twoPcRoles } from '../../store/cli/kvctl-auth.js';
import { StoreClient, StoreError } from '../../store/client/index.js';
import { tlsArgs } from '../../store/node/launcher.js';

/** The store's root user: the supervisor, a chaos runner or a test manages auth and faults with it. */
export const ROOT_USER = 'root';
/** The demo app's store user: it only watches transactions (role READER_ROLE). */
export const READER_ROLE = 'demo-reader';
/** Extra keys a coordinator writes besides `tx/` and `txdone/` (the recovery sweep election, recipes/keys.ts). */
export const COORDINATOR_EXTRA_ROLE = 'demo-coordinator-extra';

/** Who needs a store user, by what they do. */
export interface SecureUsers {
  readonly coordinators: readonly string[];
  readonly participants: readonly string[];
  /** Read-only watchers of `tx/` (the demo app). */
  readonly readers?: readonly string[];
  /** Key prefixes every coordinator may also read and write (its sweep election). */
  readonly coordinatorPrefixes?: readonly string[];
}

export interface SecureSetup {
  readonly dir: string;
  readonly certs: DevCertFiles;
  readonly users: SecureUsers;
  /** What the supervisor, a runner or a test trusts and shows (the CA and the client certificate), as PEM. */
  readonly clientTls: ClientTls;
  /** The password of a store user named in `users` (or root). */
  password(user: string): string;
  /** Flags of a store node: HTTPS with client certificates, and peer mTLS. */
  storeArgs(): string[];
  /** Flags of a coordinator, bank or app; `clientCertAuth`: refuse callers without a certificate from the CA. */
  serviceArgs(clientCertAuth: boolean): string[];
  /** The environment that gives one process its own store user. */
  envFor(user: string): Record<string, string>;
  /** The token file every coordinator and bank checks (--auth-tokens). */
  readonly tokensFile: string;
  /** The file holding the bearer token of a principal: a coordinator's name, APP_TOKEN or OPERATOR_TOKEN. */
  tokenFile(name: string): string;
  /** That token itself. */
  token(name: string): string;
}

/** The app's bearer token (client and admin: it begins transfers and lists in-doubt transactions). */
export const APP_TOKEN = 'app';
/** The operator's: the supervisor, a chaos runner, a test (client and admin). */
export const OPERATOR_TOKEN = 'operator';

/** Where the passwords live, readable by the owner only. */
const PASSWORDS_FILE = 'store-users.json';
const PASSWORD_BYTES = 24;

/** Reads the passwords kept in `file`, adds one for each new user, and writes them back (0600). */
function passwords(file: string, users: readonly string[]): Map<string, string> {
  const kept = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const out = new Map<string, string>();
  for (const u of users) {
    const old = kept[u];
    out.set(u, typeof old === 'string' && old !== '' ? old : randomBytes(PASSWORD_BYTES).toString('base64url'));
  }
  writeFileSync(file, `${JSON.stringify(Object.fromEntries(out), null, 1)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // mode above applies only when the file is created
  return out;
}

/** Every user name of `users`, root first. */
export function userNames(users: SecureUsers): string[] {
  return [...new Set([ROOT_USER, ...users.coordinators, ...users.participants, ...(users.readers ?? [])])];
}

/** Makes the certificates and passwords under `dir` (kept across restarts of the same data). */
export async function prepareSecure(dir: string, users: SecureUsers): Promise<SecureSetup> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certs = await makeDevCertificates({ dir: join(dir, 'certs') });
  const pw = passwords(join(dir, PASSWORDS_FILE), userNames(users));
  const tokens = makeTokens(dir, users);
  const clientTls: ClientTls = { ca: readFileSync(certs.caFile, 'utf8'), cert: readFileSync(certs.clientCertFile, 'utf8'), key: readFileSync(certs.clientKeyFile, 'utf8') };
  const password = (user: string): string => {
    const p = pw.get(user);
    if (p === undefined) throw new Error(`no store user ${user} in the secure setup`);
    return p;
  };
  return {
    dir,
    certs,
    users,
    clientTls,
    password,
    storeArgs: () => tlsArgs(certs),
    serviceArgs: (clientCertAuth) => ['--cert-file', certs.serverCertFile, '--key-file', certs.serverKeyFile, '--trusted-ca-file', certs.caFile, ...(clientCertAuth ? ['--client-cert-auth'] : [])],
    envFor: (user) => ({ [STORE_USER_ENV]: user, [STORE_PASSWORD_ENV]: password(user) }),
    tokensFile: tokens.file,
    tokenFile: (name) => tokens.entry(name).file,
    token: (name) => tokens.entry(name).token,
  };
}

/** New bearer tokens for every principal: the token file (hashes, 0600) and one file per token (0600). */
function makeTokens(dir: string, users: SecureUsers): { file: string; entry(name: string): { file: string; token: string } } {
  const principals: [string, TokenRole[]][] = [...users.coordinators.map((c): [string, TokenRole[]] => [c, ['coordinator']]), [APP_TOKEN, ['client', 'admin']], [OPERATOR_TOKEN, ['client', 'admin']]];
  mkdirSync(join(dir, 'tokens'), { recursive: true, mode: 0o700 });
  const made = new Map<string, { file: string; token: string }>();
  const entries: TokenFileEntry[] = [];
  for (const [name, roles] of principals) {
    const token = newToken();
    const file = join(dir, 'tokens', `${name}.token`);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    made.set(name, { file, token });
    entries.push({ name, roles, sha256: hashToken(token) });
  }
  const file = join(dir, 'tokens.json');
  writeFileSync(file, `${JSON.stringify({ tokens: entries }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return {
    file,
    entry: (name) => {
      const e = made.get(name);
      if (e === undefined) throw new Error(`no bearer token ${name} in the secure setup`);
      return e;
    },
  };
}

type Permission = { key: string; match: string; perm: string };

/** The roles to create: the 2PC ones of `kvctl auth setup-2pc`, and the demo's two extras. */
export function secureRoles(users: SecureUsers): { name: string; permissions: Permission[] }[] {
  const roles = twoPcRoles(users.participants);
  const extra = users.coordinatorPrefixes ?? [];
  if (extra.length > 0) roles.push({ name: COORDINATOR_EXTRA_ROLE, permissions: extra.map((key) => ({ key, match: 'prefix', perm: 'readwrite' })) });
  if ((users.readers ?? []).length > 0) {
    roles.push({ name: READER_ROLE, permissions: ['tx/', 'txdone/'].map((key) => ({ key, match: 'prefix', perm: 'read' })) });
  }
  return roles;
}

/** Each user's roles. */
function grants(users: SecureUsers): [string, string][] {
  const coordinatorRoles = ['2pc-coordinator', ...((users.coordinatorPrefixes ?? []).length > 0 ? [COORDINATOR_EXTRA_ROLE] : [])];
  return [
    ...users.coordinators.flatMap((c) => coordinatorRoles.map((r): [string, string] => [c, r])),
    ...users.participants.map((p): [string, string] => [p, `2pc-participant-${p}`]),
    ...(users.readers ?? []).map((r): [string, string] => [r, READER_ROLE]),
  ];
}

const path = (...parts: string[]): string => `/v1/auth/${parts.map(encodeURIComponent).join('/')}`;

async function ensureUser(client: StoreClient, name: string, password: string): Promise<void> {
  try {
    await client.authRequest('POST', path('users'), { name, password });
  } catch (e) {
    if (!(e instanceof StoreError && e.code === 'user_exists')) throw e;
    await client.authRequest('POST', path('users', name, 'password'), { password });
  }
}

/**
 * Users, roles and `auth enable` on a running store, as an operator would
 * with `kvctl user add root`, `kvctl auth setup-2pc` and `kvctl auth
 * enable`; safe to run again (a restart of the same data: auth is on, so it
 * runs as root). Retries while the store is still electing, up to `timeoutMs`.
 */
export async function bootstrapStoreAuth(setup: SecureSetup, endpoints: readonly string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await bootstrapOnce(setup, endpoints);
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`store auth setup failed: ${e instanceof Error ? e.message : String(e)}`);
      await keepAliveTimers.sleep(500);
    }
  }
}

async function bootstrapOnce(setup: SecureSetup, endpoints: readonly string[]): Promise<void> {
  const open = new StoreClient({ endpoints, tls: setup.clientTls, deadlineMs: 10_000 });
  let client = open;
  try {
    const status = await open.authRequest<{ enabled: boolean }>('GET', path('status'));
    if (status.enabled) client = new StoreClient({ endpoints, tls: setup.clientTls, deadlineMs: 10_000, user: ROOT_USER, password: setup.password(ROOT_USER) });
    for (const name of userNames(setup.users)) await ensureUser(client, name, setup.password(name));
    for (const role of secureRoles(setup.users)) {
      await idempotent(() => client.authRequest('POST', path('roles'), { name: role.name }), 'role_exists');
      for (const p of role.permissions) await client.authRequest('POST', path('roles', role.name, 'permissions'), p);
    }
    for (const [user, role] of grants(setup.users)) await idempotent(() => client.authRequest('POST', path('users', user, 'roles'), { role }), 'role_already_granted');
    if (!status.enabled) await client.authRequest('POST', path('enable'));
  } finally {
    open.close();
    if (client !== open) client.close();
  }
}

/**
 * The token flags of one process: coordinators check the token file and
 * show their own `coordinator` token to the banks; banks check the file;
 * the app shows its client token (docs/SECURITY.md).
 */
export function serviceTokenArgs(setup: SecureSetup, role: 'coordinator' | 'bank' | 'app', name: string): string[] {
  if (role === 'coordinator') return ['--auth-tokens', setup.tokensFile, '--call-token-file', setup.tokenFile(name)];
  if (role === 'bank') return ['--auth-tokens', setup.tokensFile];
  return ['--token-file', setup.tokenFile(APP_TOKEN)];
}

/** The operator's Authorization header for coordinators and banks (never for the store: its tokens are its own). */
export function operatorHeaders(setup: SecureSetup | undefined): Record<string, string> {
  return setup === undefined ? {} : { authorization: `Bearer ${setup.token(OPERATOR_TOKEN)}` };
}

/** Base64 SHA-256 of each certificate's public key (SPKI): what Chromium's --ignore-certificate-errors-spki-list pins. */
export function spkiHashes(certFiles: readonly string[]): string[] {
  return certFiles.map((f) => {
    const spki = new X509Certificate(readFileSync(f)).publicKey.export({ type: 'spki', format: 'der' });
    return createHash('sha256').update(spki).digest('base64');
  });
}
