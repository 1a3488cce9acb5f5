// Goal: the secure composition's files and plan (demo/supervisor/secure.ts),
// without starting any process: certificates from the dev CA; passwords
// random, kept with mode 0600 and reused by a second start of the same
// data; one token file whose tokens authenticate with the roles each
// process needs (coordinators: coordinator; app and operator: client and
// admin), each token in its own 0600 file; the store roles (the 2PC ones of
// `kvctl auth setup-2pc`, the coordinators' election prefix, the app's
// read-only role); and the flags per process, with no secret on argv.
// Needs openssl (Debian's), as lib/certs.ts does.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoLayout } from '../../demo/supervisor/layout.js';
import { APP_TOKEN, COORDINATOR_EXTRA_ROLE, OPERATOR_TOKEN, prepareSecure, READER_ROLE, secureRoles, serviceTokenArgs, spkiHashes } from '../../demo/supervisor/secure.js';
import { secureUsersOf } from '../../demo/supervisor/supervisor.js';
import { authenticate, parseTokenFile } from '../../lib/token-auth.js';

const dir = mkdtempSync(join(os.tmpdir(), 'secure-setup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mode = (f: string): number => statSync(f).mode & 0o777;

describe('the secure composition (demo/supervisor/secure.ts)', () => {
  const users = secureUsersOf(demoLayout(30900));

  it('makes certificates, 0600 passwords kept across starts, and tokens with the right roles', async () => {
    const first = await prepareSecure(join(dir, 's'), users);
    const file = join(dir, 's', 'store-users.json');
    expect(mode(file)).toBe(0o600);
    const names = ['root', 'c1', 'c2', 'bank-a', 'bank-b', 'bank-c', 'app'];
    for (const n of names) expect(first.password(n)).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(new Set(names.map((n) => first.password(n))).size).toBe(names.length);
    const second = await prepareSecure(join(dir, 's'), users);
    for (const n of names) expect(second.password(n)).toBe(first.password(n));
    expect(() => second.password('nobody')).toThrow(/no store user/);
    expect(second.clientTls.ca).toContain('BEGIN CERTIFICATE');
    expect(spkiHashes([second.certs.caFile])[0]).toMatch(/^[A-Za-z0-9+/]{43}=$/);

    const table = parseTokenFile(readFileSync(second.tokensFile, 'utf8'));
    expect(mode(second.tokensFile)).toBe(0o600);
    const rolesOf = (name: string): string[] => [...authenticate(table, `Bearer ${second.token(name)}`, Date.now()).roles].sort();
    expect(rolesOf('c1')).toEqual(['coordinator']);
    expect(rolesOf(APP_TOKEN)).toEqual(['admin', 'client']);
    expect(rolesOf(OPERATOR_TOKEN)).toEqual(['admin', 'client']);
    expect(mode(second.tokenFile('c2'))).toBe(0o600);
    expect(readFileSync(second.tokenFile('c2'), 'utf8').trim()).toBe(second.token('c2'));
    // A new start makes new tokens: the old ones no longer authenticate.
    expect(() => authenticate(table, `Bearer ${first.token('c1')}`, Date.now())).toThrow();
  });

  it('plans least-privilege store roles and per-process flags with no secret on argv', async () => {
    const roles = secureRoles(users);
    const names = roles.map((r) => r.name);
    expect(names).toEqual(['2pc-coordinator', '2pc-participant-bank-a', '2pc-participant-bank-b', '2pc-participant-bank-c', COORDINATOR_EXTRA_ROLE, READER_ROLE]);
    expect(roles.find((r) => r.name === READER_ROLE)?.permissions.every((p) => p.perm === 'read')).toBe(true);
    expect(roles.find((r) => r.name === COORDINATOR_EXTRA_ROLE)?.permissions).toEqual([{ key: 'recipes/election/demo-recovery-sweep/', match: 'prefix', perm: 'readwrite' }]);
    const s = await prepareSecure(join(dir, 'flags'), users);
    const argv = [...s.storeArgs(), ...s.serviceArgs(true), ...serviceTokenArgs(s, 'coordinator', 'c1'), ...serviceTokenArgs(s, 'bank', 'bank-a'), ...serviceTokenArgs(s, 'app', 'app')].join(' ');
    for (const n of ['root', 'c1', 'bank-a', 'app']) expect(argv).not.toContain(s.password(n));
    for (const t of ['c1', APP_TOKEN, OPERATOR_TOKEN]) expect(argv).not.toContain(s.token(t));
    expect(s.storeArgs()).toEqual(expect.arrayContaining(['--client-cert-auth', '--peer-client-cert-auth']));
    expect(s.serviceArgs(false)).not.toContain('--client-cert-auth');
    expect(serviceTokenArgs(s, 'coordinator', 'c1')).toEqual(['--auth-tokens', s.tokensFile, '--call-token-file', s.tokenFile('c1')]);
    expect(s.envFor('bank-a')).toEqual({ RAFT2PC_STORE_USER: 'bank-a', RAFT2PC_STORE_PASSWORD: s.password('bank-a') });
  });
});
