/**
 * Users, roles and permissions: replicated state of the KV state machine, in
 * the manner of etcd's auth store. Pure: every value that needs a clock or
 * randomness (the token-signing secret, password hashes) is made on the API
 * node before proposing and arrives in the command, so every replica (and a
 * replay) computes the same table. No password ever enters the log: only
 * scrypt hashes (store/api/auth-token.ts makes and checks them).
 *
 * - A permission names a key or a key prefix (`match`), in which `*` stands
 *   for exactly one path segment (one or more characters, no `/`): a whole
 *   segment only, so matching is linear (`tx/*\/vote/a`, never `tx/a*`).
 * - The role `root` is built in: it may do everything, including managing
 *   auth. `enable` needs a user `root` and gives it the role, as etcd does.
 * - Every change bumps `revision`; a user's `revision` is the table revision
 *   of its last credential or role change, and a token names it, so a
 *   changed password or role set revokes the tokens issued before.
 */
import { keyPatternSource, starSegmentsProblem } from './key-pattern.js';
import { assert } from '../../lib/assert.js';
import type { AuthOp, AuthResult, KvFailure, KvOkResult, Permission, PermissionMatch, PermissionType } from './types.js';
import { fail } from './failure.js';
import { utf8ByteLength } from './utf8.js';

export const ROOT = 'root';

/** Named limits of the auth table. */
export const AUTH_LIMITS = Object.freeze({
  maxUsers: 1_000,
  maxRoles: 1_000,
  maxRolesPerUser: 64,
  maxPermissionsPerRole: 256,
  /** A user or role name: 1..128 of [A-Za-z0-9_.@-] (room for `2pc-participant-` and a 64-character participant name). */
  namePattern: /^[A-Za-z0-9_.@-]{1,128}$/,
  /** Bytes of a permission's key pattern. */
  maxPatternBytes: 1_024,
  /** Characters of a stored password hash (scrypt$N$r$p$salt$hash). */
  maxHashChars: 512,
  /** The token-signing secret: 64 hex digits (32 random bytes). */
  secretPattern: /^[0-9a-f]{64}$/,
});

export interface AuthUser {
  readonly name: string;
  readonly passwordHash: string;
  readonly roles: readonly string[];
  /** The table revision of the last password or role change (tokens name it). */
  readonly revision: number;
}

export interface AuthRole {
  readonly name: string;
  readonly permissions: readonly Permission[];
}

/** The whole table, as snapshots and the on-disk engine keep it. */
export interface AuthImage {
  readonly enabled: boolean;
  /** Hex; empty while auth was never enabled. */
  readonly secret: string;
  readonly revision: number;
  readonly users: readonly AuthUser[];
  readonly roles: readonly AuthRole[];
}

export const EMPTY_AUTH: AuthImage = Object.freeze({ enabled: false, secret: '', revision: 0, users: [], roles: [] });

type Outcome = KvOkResult<AuthResult> | KvFailure;

export class AuthTable {
  private enabledFlag = false;
  private secretHex = '';
  private rev = 0;
  private readonly users = new Map<string, AuthUser>();
  private readonly roles = new Map<string, AuthRole>();
  /** Compiled patterns, by `match` + key. */
  private readonly compiled = new Map<string, RegExp>();
  /** Set by every successful op; the state machine records the table when it is. */
  changed = false;

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get secret(): string {
    return this.secretHex;
  }

  get revision(): number {
    return this.rev;
  }

  /** Whether the table holds anything (an empty one is left out of snapshots). */
  get isEmpty(): boolean {
    return this.rev === 0;
  }

  user(name: string): AuthUser | undefined {
    return this.users.get(name);
  }

  role(name: string): AuthRole | undefined {
    return name === ROOT ? { name: ROOT, permissions: [{ key: '', match: 'prefix', perm: 'readwrite' }] } : this.roles.get(name);
  }

  userList(): AuthUser[] {
    return [...this.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  roleList(): AuthRole[] {
    return [...this.roles.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  isRoot(userName: string): boolean {
    return this.users.get(userName)?.roles.includes(ROOT) ?? false;
  }

  /** Whether `userName` may `need` the key `key` (read, write). */
  allowsKey(userName: string, key: string, need: 'read' | 'write'): boolean {
    return this.permissionsOf(userName).some((p) => grants(p.perm, need) && this.pattern(p).test(key) && (p.match === 'prefix' || this.exact(p).test(key)));
  }

  /** Whether `userName` may read every key that starts with `prefix` (a range or a prefix watch). */
  allowsPrefix(userName: string, prefix: string): boolean {
    // Covered when some leading part of `prefix` matches a prefix permission whole: every key under `prefix` then has it.
    return this.permissionsOf(userName).some((p) => p.match === 'prefix' && grants(p.perm, 'read') && this.pattern(p).test(prefix));
  }

  apply(op: AuthOp): Outcome {
    const refused = this.refuse(op);
    if (refused !== undefined) return refused;
    this.rev++;
    this.changed = true;
    this.mutate(op);
    return { ok: true, type: 'auth', op: op.op, authRevision: this.rev };
  }

  image(): AuthImage {
    return { enabled: this.enabledFlag, secret: this.secretHex, revision: this.rev, users: this.userList(), roles: this.roleList() };
  }

  load(image: AuthImage): void {
    this.enabledFlag = image.enabled;
    this.secretHex = image.secret;
    this.rev = image.revision;
    this.users.clear();
    this.roles.clear();
    for (const u of image.users) this.users.set(u.name, u);
    for (const r of image.roles) this.roles.set(r.name, r);
  }

  private permissionsOf(userName: string): Permission[] {
    const user = this.users.get(userName);
    if (user === undefined) return [];
    return user.roles.flatMap((r) => this.role(r)?.permissions ?? []);
  }

  /** The permission's pattern anchored at the start only: for a key, "some leading part matches". */
  private pattern(p: Permission): RegExp {
    return this.compile(`^${keyPatternSource(p.key)}`);
  }

  private exact(p: Permission): RegExp {
    return this.compile(`^${keyPatternSource(p.key)}$`);
  }

  private compile(source: string): RegExp {
    let re = this.compiled.get(source);
    if (re === undefined) {
      // Bounded by the permissions in the table (each pattern compiles at most twice).
      if (this.compiled.size > 4 * AUTH_LIMITS.maxRoles) this.compiled.clear();
      re = new RegExp(source, 'u');
      this.compiled.set(source, re);
    }
    return re;
  }

  /** The state checks of an op already shaped by checkAuthOp; undefined when it may apply. */
  private refuse(op: AuthOp): KvFailure | undefined {
    switch (op.op) {
      case 'enable': {
        const root = this.users.get(ROOT);
        return root === undefined ? fail('root_user_missing', 'add a user "root" (with a password) before enabling auth') : undefined;
      }
      case 'disable':
        return undefined;
      case 'userAdd':
        if (this.users.has(op.name)) return fail('user_exists', `user ${op.name} already exists`, { user: op.name });
        return this.users.size >= AUTH_LIMITS.maxUsers ? fail('too_many_users', `at most ${AUTH_LIMITS.maxUsers} users`, { maxUsers: AUTH_LIMITS.maxUsers }) : undefined;
      case 'userDelete':
      case 'userPasswd':
        return this.refuseUser(op.name) ?? (op.op === 'userDelete' && op.name === ROOT && this.enabledFlag ? fail('root_required', 'the root user cannot be deleted while auth is enabled') : undefined);
      case 'userGrantRole':
        return this.refuseUser(op.name) ?? this.refuseRole(op.role) ?? this.refuseGrant(op.name, op.role);
      case 'userRevokeRole': {
        const user = this.users.get(op.name);
        if (user === undefined) return this.refuseUser(op.name);
        if (!user.roles.includes(op.role)) return fail('role_not_granted', `user ${op.name} does not have role ${op.role}`, { user: op.name, role: op.role });
        return op.name === ROOT && op.role === ROOT && this.enabledFlag ? fail('root_required', 'the root user keeps the root role while auth is enabled') : undefined;
      }
      case 'roleAdd':
        if (op.name === ROOT || this.roles.has(op.name)) return fail('role_exists', `role ${op.name} already exists`, { role: op.name });
        return this.roles.size >= AUTH_LIMITS.maxRoles ? fail('too_many_roles', `at most ${AUTH_LIMITS.maxRoles} roles`, { maxRoles: AUTH_LIMITS.maxRoles }) : undefined;
      case 'roleDelete':
      case 'roleGrantPermission':
      case 'roleRevokePermission':
        return op.name === ROOT ? fail('root_required', 'the root role is built in and cannot be changed') : (this.refuseRole(op.name) ?? this.refusePermission(op));
    }
  }

  private refuseUser(name: string): KvFailure | undefined {
    return this.users.has(name) ? undefined : fail('user_not_found', `no user ${name}`, { user: name });
  }

  private refuseRole(name: string): KvFailure | undefined {
    return name === ROOT || this.roles.has(name) ? undefined : fail('role_not_found', `no role ${name}`, { role: name });
  }

  private refuseGrant(userName: string, role: string): KvFailure | undefined {
    const roles = this.users.get(userName)?.roles ?? [];
    if (roles.includes(role)) return fail('role_already_granted', `user ${userName} already has role ${role}`, { user: userName, role });
    return roles.length >= AUTH_LIMITS.maxRolesPerUser ? fail('too_many_roles', `a user has at most ${AUTH_LIMITS.maxRolesPerUser} roles`, { maxRolesPerUser: AUTH_LIMITS.maxRolesPerUser }) : undefined;
  }

  private refusePermission(op: AuthOp): KvFailure | undefined {
    const role = this.roles.get((op as { name: string }).name);
    if (role === undefined) return undefined;
    if (op.op === 'roleGrantPermission' && role.permissions.length >= AUTH_LIMITS.maxPermissionsPerRole && !role.permissions.some((p) => samePermission(p, op.permission))) {
      return fail('too_many_permissions', `a role has at most ${AUTH_LIMITS.maxPermissionsPerRole} permissions`, { maxPermissionsPerRole: AUTH_LIMITS.maxPermissionsPerRole });
    }
    if (op.op === 'roleRevokePermission' && !role.permissions.some((p) => samePermission(p, op))) {
      return fail('permission_not_granted', `role ${op.name} has no ${op.match} permission on ${JSON.stringify(op.key)}`, { role: op.name });
    }
    return undefined;
  }

  private mutate(op: AuthOp): void {
    switch (op.op) {
      case 'enable':
        this.enabledFlag = true;
        this.secretHex = op.secret;
        this.setUser(ROOT, (u) => (u.roles.includes(ROOT) ? u : { ...u, roles: [...u.roles, ROOT] }));
        return;
      case 'disable':
        this.enabledFlag = false;
        return;
      case 'userAdd':
        this.users.set(op.name, { name: op.name, passwordHash: op.passwordHash, roles: [], revision: this.rev });
        return;
      case 'userDelete':
        this.users.delete(op.name);
        return;
      case 'userPasswd':
        return this.setUser(op.name, (u) => ({ ...u, passwordHash: op.passwordHash }));
      case 'userGrantRole':
        return this.setUser(op.name, (u) => ({ ...u, roles: [...u.roles, op.role] }));
      case 'userRevokeRole':
        return this.setUser(op.name, (u) => ({ ...u, roles: u.roles.filter((r) => r !== op.role) }));
      case 'roleAdd':
        this.roles.set(op.name, { name: op.name, permissions: [] });
        return;
      case 'roleDelete':
        this.roles.delete(op.name);
        // A deleted role leaves every user that had it (so a new role of the same name grants nothing by surprise).
        for (const u of [...this.users.values()]) if (u.roles.includes(op.name)) this.setUser(u.name, (x) => ({ ...x, roles: x.roles.filter((r) => r !== op.name) }));
        return;
      case 'roleGrantPermission':
      case 'roleRevokePermission':
        return this.setPermissions(op);
    }
  }

  private setPermissions(op: Extract<AuthOp, { op: 'roleGrantPermission' | 'roleRevokePermission' }>): void {
    const role = this.roles.get(op.name) as AuthRole;
    const kept = role.permissions.filter((p) => !samePermission(p, op.op === 'roleGrantPermission' ? op.permission : op));
    this.roles.set(op.name, { name: op.name, permissions: op.op === 'roleGrantPermission' ? [...kept, op.permission] : kept });
  }

  private setUser(name: string, change: (u: AuthUser) => AuthUser): void {
    const user = this.users.get(name);
    if (user !== undefined) this.users.set(name, { ...change(user), revision: this.rev });
  }
}

function grants(perm: PermissionType, need: 'read' | 'write'): boolean {
  return perm === 'readwrite' || perm === need;
}

function samePermission(a: { key: string; match: PermissionMatch }, b: { key: string; match: PermissionMatch }): boolean {
  return a.key === b.key && a.match === b.match;
}

/** The shape checks of a permission's key: UTF-8, bounded, `*` only as a whole segment. */
export function checkPattern(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'a permission key must be a string';
  const bytes = utf8ByteLength(key);
  if (bytes < 0 || bytes > AUTH_LIMITS.maxPatternBytes) return `a permission key is valid UTF-8 of at most ${AUTH_LIMITS.maxPatternBytes} bytes`;
  return starSegmentsProblem(key, 'tx/*/vote/a');
}

const NAME_OPS = new Set(['userDelete', 'roleAdd', 'roleDelete']);
const HASH_OPS = new Set(['userAdd', 'userPasswd']);
const ROLE_OPS = new Set(['userGrantRole', 'userRevokeRole']);
const PERMISSION_MATCHES: readonly PermissionMatch[] = ['exact', 'prefix'];
const PERMISSION_TYPES: readonly PermissionType[] = ['read', 'write', 'readwrite'];

/** Checks an auth op that arrived as untrusted JSON (the log's data): only known fields, in range. */
export function checkAuthOp(raw: unknown): AuthOp | KvFailure {
  const bad = (message: string): KvFailure => fail('invalid_command', message);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('an auth op must be an object');
  const o = raw as Record<string, unknown>;
  const op = o['op'];
  const name = (field: string): string | undefined => (typeof o[field] === 'string' && AUTH_LIMITS.namePattern.test(o[field] as string) ? (o[field] as string) : undefined);
  if (op === 'enable') return typeof o['secret'] === 'string' && AUTH_LIMITS.secretPattern.test(o['secret']) ? { op, secret: o['secret'] } : bad('enable needs a 64-hex-digit secret');
  if (op === 'disable') return { op };
  if (typeof op !== 'string') return bad('an auth op needs an op');
  const n = name('name');
  if (n === undefined) return bad('name must be 1..128 of A-Z a-z 0-9 _ . @ -');
  if (NAME_OPS.has(op)) return { op: op as 'userDelete' | 'roleAdd' | 'roleDelete', name: n };
  if (HASH_OPS.has(op)) {
    const hash = o['passwordHash'];
    if (typeof hash !== 'string' || hash.length === 0 || hash.length > AUTH_LIMITS.maxHashChars) return bad('passwordHash must be a password hash');
    return { op: op as 'userAdd' | 'userPasswd', name: n, passwordHash: hash };
  }
  if (ROLE_OPS.has(op)) {
    const role = name('role');
    return role === undefined ? bad('role must be a role name') : { op: op as 'userGrantRole' | 'userRevokeRole', name: n, role };
  }
  if (op !== 'roleGrantPermission' && op !== 'roleRevokePermission') return bad(`unknown auth op ${JSON.stringify(op)}`);
  const source = op === 'roleGrantPermission' ? o['permission'] : o;
  if (typeof source !== 'object' || source === null) return bad('a permission must be {key, match, perm}');
  const p = source as Record<string, unknown>;
  const keyProblem = checkPattern(p['key']);
  if (keyProblem !== undefined) return bad(keyProblem);
  const match = p['match'] as PermissionMatch;
  if (!PERMISSION_MATCHES.includes(match)) return bad('match must be exact or prefix');
  if (op === 'roleRevokePermission') return { op, name: n, key: p['key'] as string, match };
  const perm = p['perm'] as PermissionType;
  if (!PERMISSION_TYPES.includes(perm)) return bad('perm must be read, write or readwrite');
  return { op, name: n, permission: { key: p['key'] as string, match, perm } };
}

/** Decodes a snapshot's or store's auth image (trusted data: asserts its shape). */
export function decodeAuthImage(raw: unknown): AuthImage {
  if (raw === undefined) return EMPTY_AUTH;
  const o = raw as Record<string, unknown>;
  const ok = typeof o === 'object' && o !== null && typeof o['enabled'] === 'boolean' && typeof o['secret'] === 'string' && Number.isSafeInteger(o['revision']) && Array.isArray(o['users']) && Array.isArray(o['roles']);
  assert(ok, 'snapshot auth table is malformed');
  return raw as AuthImage;
}
