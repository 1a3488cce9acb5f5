/**
 * kvctl's auth commands, in the manner of etcdctl's `auth`, `user` and `role`
 * (store/api/auth.ts has the routes; docs/SECURITY.md the model):
 *
 *   auth enable | disable | status
 *   auth setup-2pc --coordinator NAME[:PASSWORD] --participant NAME[:PASSWORD] ...
 *   user add NAME [PASSWORD] | delete NAME | passwd NAME [PASSWORD] | get NAME | list
 *   user grant-role NAME ROLE | revoke-role NAME ROLE
 *   role add NAME | delete NAME | get NAME | list
 *   role grant-permission ROLE read|write|readwrite KEY [--match prefix]
 *   role revoke-permission ROLE KEY [--match prefix]
 *
 * A password left off the command line is read from standard input (one
 * line), so it does not show in the process list.
 */
import { defineGroup, UsageError, type Command, type FlagSpecs } from '../../lib/cli.js';
import { StoreError, type StoreClient } from '../client/index.js';

/** What kvctl.ts gives these commands: its command factory and output helpers (passed in, so the files do not import each other). */
export interface KvctlKit {
  command(name: string, summary: string, args: string | undefined, flags: FlagSpecs, handler: (c: AuthInvocation) => Promise<number>): Command;
  need(positionals: readonly string[], n: number, usage: string): string[];
  table(rows: readonly (readonly string[])[]): string;
  readStdin(): string;
}

export interface AuthInvocation {
  readonly args: readonly string[];
  readonly values: Readonly<Record<string, unknown>>;
  readonly client: StoreClient;
  readonly o: { readonly json: boolean; out(text: string): void; err(text: string): void };
}

const MATCH_FLAG = { match: { type: 'enum', values: ['exact', 'prefix'], default: 'exact', description: 'the permission covers KEY alone (exact) or every key starting with it (prefix)' } } as const satisfies FlagSpecs;

function print(c: AuthInvocation, res: unknown, human: string): number {
  c.o.out(c.o.json ? JSON.stringify(res, null, 2) : human);
  return 0;
}

/** A password from the arguments, else the first line of standard input. */
function password(kit: KvctlKit, given: string | undefined): string {
  const text = given ?? kit.readStdin().split(/\r?\n/)[0] ?? '';
  if (text === '') throw new UsageError('PASSWORD', 'give a password (argument or one line on standard input)');
  return text;
}

const path = (...parts: string[]): string => `/v1/auth/${parts.map(encodeURIComponent).join('/')}`;

function authGroup(kit: KvctlKit): Command {
  const simple = (name: 'enable' | 'disable'): Command =>
    kit.command(name, `${name} auth on the cluster${name === 'enable' ? ' (needs a user root)' : ''}`, undefined, {}, async (c) => print(c, await c.client.authRequest('POST', path(name)), `Authentication ${name}d`));
  const status = kit.command('status', 'whether auth is enabled', undefined, {}, async (c) => {
    const res = await c.client.authRequest<{ enabled: boolean; authRevision: number }>('GET', path('status'));
    return print(c, res, `Authentication Status: ${res.enabled ? 'true' : 'false'}\nAuthRevision: ${res.authRevision}`);
  });
  const setup = kit.command('setup-2pc', 'least-privilege roles and users for a 2PC deployment', undefined, SETUP_FLAGS, async (c) => setup2pc(c));
  return defineGroup({ name: 'auth', summary: 'enable, disable or inspect auth; set up 2PC roles', subcommands: [simple('enable'), simple('disable'), status, setup] });
}

function userGroup(kit: KvctlKit): Command {
  const cmd = kit.command.bind(kit);
  return defineGroup({
    name: 'user',
    summary: 'manage users',
    subcommands: [
      cmd('add', 'add a user (PASSWORD from stdin when omitted)', 'NAME [PASSWORD]', {}, async (c) => {
        if (c.args.length < 1 || c.args.length > 2) throw new UsageError(undefined, 'expected: user add NAME [PASSWORD]');
        const name = c.args[0] as string;
        return print(c, await c.client.authRequest('POST', path('users'), { name, password: password(kit, c.args[1]) }), `User ${name} created`);
      }),
      cmd('delete', 'delete a user', 'NAME', {}, async (c) => {
        const [name] = kit.need(c.args, 1, 'user delete NAME') as [string];
        return print(c, await c.client.authRequest('DELETE', path('users', name)), `User ${name} deleted`);
      }),
      cmd('passwd', "change a user's password (from stdin when omitted)", 'NAME [PASSWORD]', {}, async (c) => {
        if (c.args.length < 1 || c.args.length > 2) throw new UsageError(undefined, 'expected: user passwd NAME [PASSWORD]');
        const name = c.args[0] as string;
        return print(c, await c.client.authRequest('POST', path('users', name, 'password'), { password: password(kit, c.args[1]) }), 'Password updated');
      }),
      cmd('grant-role', 'grant a role to a user', 'NAME ROLE', {}, async (c) => {
        const [name, role] = kit.need(c.args, 2, 'user grant-role NAME ROLE') as [string, string];
        return print(c, await c.client.authRequest('POST', path('users', name, 'roles'), { role }), `Role ${role} is granted to user ${name}`);
      }),
      cmd('revoke-role', 'revoke a role from a user', 'NAME ROLE', {}, async (c) => {
        const [name, role] = kit.need(c.args, 2, 'user revoke-role NAME ROLE') as [string, string];
        return print(c, await c.client.authRequest('DELETE', path('users', name, 'roles', role)), `Role ${role} is revoked from user ${name}`);
      }),
      cmd('get', "a user's roles", 'NAME', {}, async (c) => {
        const [name] = kit.need(c.args, 1, 'user get NAME') as [string];
        const res = await c.client.authRequest<{ name: string; roles: string[] }>('GET', path('users', name));
        return print(c, res, `User: ${res.name}\nRoles: ${res.roles.join(' ')}`);
      }),
      cmd('list', 'every user', undefined, {}, async (c) => {
        const res = await c.client.authRequest<{ users: { name: string; roles: string[] }[] }>('GET', path('users'));
        return print(c, res, kit.table([['USER', 'ROLES'], ...res.users.map((u) => [u.name, u.roles.join(',')])]));
      }),
    ],
  });
}

type PermissionView = { key: string; match: string; perm: string };

function roleGroup(kit: KvctlKit): Command {
  const cmd = kit.command.bind(kit);
  const perms = (ps: readonly PermissionView[]): string => kit.table([['PERM', 'MATCH', 'KEY'], ...ps.map((p) => [p.perm, p.match, JSON.stringify(p.key)])]);
  return defineGroup({
    name: 'role',
    summary: 'manage roles and their permissions',
    subcommands: [
      cmd('add', 'add a role', 'NAME', {}, async (c) => {
        const [name] = kit.need(c.args, 1, 'role add NAME') as [string];
        return print(c, await c.client.authRequest('POST', path('roles'), { name }), `Role ${name} created`);
      }),
      cmd('delete', 'delete a role (users that had it lose it)', 'NAME', {}, async (c) => {
        const [name] = kit.need(c.args, 1, 'role delete NAME') as [string];
        return print(c, await c.client.authRequest('DELETE', path('roles', name)), `Role ${name} deleted`);
      }),
      cmd('grant-permission', 'let a role read and/or write a key or prefix (`*` = one path segment)', 'ROLE read|write|readwrite KEY', MATCH_FLAG, async (c) => {
        const [name, perm, key] = kit.need(c.args, 3, 'role grant-permission ROLE read|write|readwrite KEY [--match prefix]') as [string, string, string];
        if (!['read', 'write', 'readwrite'].includes(perm)) throw new UsageError(perm, 'want read, write or readwrite');
        const res = await c.client.authRequest('POST', path('roles', name, 'permissions'), { key, match: c.values['match'], perm });
        return print(c, res, `Role ${name} updated`);
      }),
      cmd('revoke-permission', 'take a permission from a role', 'ROLE KEY', MATCH_FLAG, async (c) => {
        const [name, key] = kit.need(c.args, 2, 'role revoke-permission ROLE KEY [--match prefix]') as [string, string];
        return print(c, await c.client.authRequest('POST', path('roles', name, 'permissions', 'revoke'), { key, match: c.values['match'] }), `Permission of ${JSON.stringify(key)} is revoked from role ${name}`);
      }),
      cmd('get', "a role's permissions", 'NAME', {}, async (c) => {
        const [name] = kit.need(c.args, 1, 'role get NAME') as [string];
        const res = await c.client.authRequest<{ name: string; permissions: PermissionView[] }>('GET', path('roles', name));
        return print(c, res, `Role ${res.name}\n${perms(res.permissions)}`);
      }),
      cmd('list', 'every role', undefined, {}, async (c) => {
        const res = await c.client.authRequest<{ roles: { name: string }[] }>('GET', path('roles'));
        return print(c, res, res.roles.map((r) => r.name).join('\n'));
      }),
    ],
  });
}

const SETUP_FLAGS = {
  coordinator: { type: 'list', default: [], placeholder: 'NAME[:PASSWORD]', description: 'a coordinator user (repeat for more); with a password it is created (or its password set)' },
  participant: { type: 'list', default: [], placeholder: 'NAME[:PASSWORD]', description: 'a participant user, named as the participant (repeat for more)' },
} as const satisfies FlagSpecs;

/** The 2PC key layout's permissions (coordinator/protocol/kernel.ts, compacted.ts, participant/claim.ts). */
export function twoPcRoles(participants: readonly string[]): { name: string; permissions: PermissionView[] }[] {
  const coordinator = { name: '2pc-coordinator', permissions: [{ key: 'tx/', match: 'prefix', perm: 'readwrite' }, { key: 'txdone/', match: 'prefix', perm: 'readwrite' }] };
  return [
    coordinator,
    ...participants.map((p) => ({
      name: `2pc-participant-${p}`,
      permissions: [
        { key: 'tx/', match: 'prefix', perm: 'read' },
        { key: 'txdone/', match: 'prefix', perm: 'read' },
        { key: `tx/*/vote/${p}`, match: 'exact', perm: 'readwrite' },
        { key: `tx/*/ack/${p}`, match: 'exact', perm: 'readwrite' },
        // The participant's name claim (participant/claim.ts), attached to its lease.
        { key: `participants/${p}/owner`, match: 'exact', perm: 'readwrite' },
      ],
    })),
  ];
}

/** Runs `call`, treating the given codes as "already so" (the setup may run again). */
export async function idempotent(call: () => Promise<unknown>, ...already: string[]): Promise<void> {
  try {
    await call();
  } catch (e) {
    if (!(e instanceof StoreError && already.includes(e.code))) throw e;
  }
}

async function setup2pc(c: AuthInvocation): Promise<number> {
  const split = (v: string): [string, string | undefined] => {
    const i = v.indexOf(':');
    return i < 0 ? [v, undefined] : [v.slice(0, i), v.slice(i + 1)];
  };
  const coordinators = (c.values['coordinator'] as string[]).map(split);
  const participants = (c.values['participant'] as string[]).map(split);
  if (coordinators.length + participants.length === 0) throw new UsageError('--coordinator', 'name at least one coordinator or participant');
  const roles = twoPcRoles(participants.map(([n]) => n));
  for (const role of roles) {
    await idempotent(() => c.client.authRequest('POST', path('roles'), { name: role.name }), 'role_exists');
    for (const p of role.permissions) await c.client.authRequest('POST', path('roles', role.name, 'permissions'), p);
  }
  const users: [string, string | undefined, string][] = [...coordinators.map(([n, pw]): [string, string | undefined, string] => [n, pw, '2pc-coordinator']), ...participants.map(([n, pw]): [string, string | undefined, string] => [n, pw, `2pc-participant-${n}`])];
  for (const [name, pw, role] of users) {
    if (pw !== undefined) {
      try {
        await c.client.authRequest('POST', path('users'), { name, password: pw });
      } catch (e) {
        if (!(e instanceof StoreError && e.code === 'user_exists')) throw e;
        await c.client.authRequest('POST', path('users', name, 'password'), { password: pw });
      }
    }
    await idempotent(() => c.client.authRequest('POST', path('users', name, 'roles'), { role }), 'role_already_granted');
  }
  return print(c, { roles, users: users.map(([name, , role]) => ({ name, role })) }, users.map(([name, , role]) => `user ${name}: role ${role}`).join('\n'));
}

export function authCommands(kit: KvctlKit): Command[] {
  return [authGroup(kit), userGroup(kit), roleGroup(kit)];
}
