// Goal: the auth table (store/kv/auth.ts) as replicated state: its commands
// apply deterministically through the KV state machine, bad ones change
// nothing, permissions match exactly what they say (a participant's
// `tx/*/vote/a` never reaches `tx/1/vote/ab`), and the table survives a
// snapshot and a reopen of the on-disk engine exactly.
import { describe, expect, it } from 'vitest';
import { KvStateMachine, type KvCommand } from '../../store/kv/index.js';
import type { AuthOp } from '../../store/kv/types.js';
import { closeTempStore, openTempStore, tempDir } from '../engine/lmdb-temp.js';

const SECRET = 'ab'.repeat(32);
const HASH = 'scrypt$16384$8$1$AAAA$BBBB';

function auth(op: AuthOp): KvCommand {
  return { type: 'auth', auth: op };
}

/** A machine with root, a coordinator and participants a and b, as `kvctl auth setup-2pc` makes them. */
function twoPcCommands(): KvCommand[] {
  const participant = (p: string): AuthOp[] => [
    { op: 'roleAdd', name: `participant-${p}` },
    { op: 'roleGrantPermission', name: `participant-${p}`, permission: { key: 'tx/', match: 'prefix', perm: 'read' } },
    { op: 'roleGrantPermission', name: `participant-${p}`, permission: { key: `tx/*/vote/${p}`, match: 'exact', perm: 'readwrite' } },
    { op: 'roleGrantPermission', name: `participant-${p}`, permission: { key: `tx/*/ack/${p}`, match: 'exact', perm: 'readwrite' } },
    { op: 'userAdd', name: p, passwordHash: HASH },
    { op: 'userGrantRole', name: p, role: `participant-${p}` },
  ];
  return [
    auth({ op: 'userAdd', name: 'root', passwordHash: HASH }),
    auth({ op: 'roleAdd', name: 'coordinator' }),
    auth({ op: 'roleGrantPermission', name: 'coordinator', permission: { key: 'tx/', match: 'prefix', perm: 'readwrite' } }),
    auth({ op: 'userAdd', name: 'coord', passwordHash: HASH }),
    auth({ op: 'userGrantRole', name: 'coord', role: 'coordinator' }),
    ...participant('a').map(auth),
    ...participant('ab').map(auth),
    auth({ op: 'enable', secret: SECRET }),
  ];
}

function applied(commands: readonly KvCommand[]): KvStateMachine {
  const kv = new KvStateMachine();
  commands.forEach((c, i) => expect(kv.apply(c, i + 1).result, JSON.stringify(c)).toMatchObject({ ok: true }));
  return kv;
}

describe('auth table', () => {
  it('permissions: exact keys with one-segment wildcards, prefixes, and root', () => {
    const t = applied(twoPcCommands()).auth;
    expect(t.enabled).toBe(true);
    expect(t.isRoot('root')).toBe(true);
    expect(t.allowsKey('a', 'tx/1/vote/a', 'write')).toBe(true);
    expect(t.allowsKey('a', 'tx/1/ack/a', 'write')).toBe(true);
    expect(t.allowsKey('a', 'tx/1/vote/ab', 'write')).toBe(false);
    expect(t.allowsKey('a', 'tx/1/vote/b', 'write')).toBe(false);
    expect(t.allowsKey('a', 'tx/1/decision', 'write')).toBe(false);
    expect(t.allowsKey('a', 'tx/1', 'write')).toBe(false);
    expect(t.allowsKey('a', 'tx/1/x/vote/a', 'write')).toBe(false);
    expect(t.allowsKey('a', 'tx//vote/a', 'write')).toBe(false);
    expect(t.allowsKey('a', 'tx/1/decision', 'read')).toBe(true);
    expect(t.allowsKey('a', 'other', 'read')).toBe(false);
    expect(t.allowsKey('ab', 'tx/9/vote/ab', 'write')).toBe(true);
    expect(t.allowsKey('ab', 'tx/9/vote/a', 'write')).toBe(false);
    expect(t.allowsPrefix('a', 'tx/')).toBe(true);
    expect(t.allowsPrefix('a', 'tx/1/')).toBe(true);
    expect(t.allowsPrefix('a', 'tx')).toBe(false);
    expect(t.allowsPrefix('a', '')).toBe(false);
    expect(t.allowsPrefix('coord', 'tx/')).toBe(true);
    expect(t.allowsKey('coord', 'tx/1/decision', 'write')).toBe(true);
    expect(t.allowsKey('coord', 'txdone/1', 'write')).toBe(false);
    expect(t.allowsKey('nobody', 'tx/1', 'read')).toBe(false);
    expect(t.allowsKey('root', 'anything', 'write')).toBe(true);
    expect(t.allowsPrefix('root', '')).toBe(true);
  });

  it('a prefix permission with a wildcard covers the keys and ranges under each match', () => {
    const kv = applied([
      auth({ op: 'roleAdd', name: 'r' }),
      auth({ op: 'roleGrantPermission', name: 'r', permission: { key: 'app/*/data/', match: 'prefix', perm: 'read' } }),
      auth({ op: 'userAdd', name: 'u', passwordHash: HASH }),
      auth({ op: 'userGrantRole', name: 'u', role: 'r' }),
    ]);
    expect(kv.auth.allowsKey('u', 'app/x/data/1', 'read')).toBe(true);
    expect(kv.auth.allowsKey('u', 'app/x/data/1', 'write')).toBe(false);
    expect(kv.auth.allowsKey('u', 'app/x/other', 'read')).toBe(false);
    expect(kv.auth.allowsPrefix('u', 'app/x/data/')).toBe(true);
    expect(kv.auth.allowsPrefix('u', 'app/x/')).toBe(false);
    expect(kv.auth.allowsPrefix('u', 'app/')).toBe(false);
  });

  it('refused changes change nothing; every change bumps the revision and revokes what it must', () => {
    const kv = new KvStateMachine();
    let index = 0;
    const run = (op: AuthOp): Record<string, unknown> => kv.apply(auth(op), ++index).result as unknown as Record<string, unknown>;
    expect(run({ op: 'enable', secret: SECRET })).toMatchObject({ ok: false, error: { code: 'root_user_missing' } });
    expect(run({ op: 'roleAdd', name: 'bad name' })).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
    expect(run({ op: 'roleAdd', name: 'root' })).toMatchObject({ ok: false, error: { code: 'role_exists' } });
    expect(run({ op: 'roleGrantPermission', name: 'x', permission: { key: 'tx/a*', match: 'prefix', perm: 'read' } })).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
    expect(run({ op: 'enable', secret: 'short' })).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
    expect(kv.auth.revision).toBe(0);
    expect(kv.snapshot()).toBe(new KvStateMachine().snapshot().replace('"appliedIndex":0', `"appliedIndex":${index}`));
    expect(run({ op: 'userAdd', name: 'root', passwordHash: HASH })).toMatchObject({ ok: true, type: 'auth', authRevision: 1 });
    expect(run({ op: 'userAdd', name: 'root', passwordHash: HASH })).toMatchObject({ ok: false, error: { code: 'user_exists' } });
    expect(run({ op: 'enable', secret: SECRET })).toMatchObject({ ok: true, authRevision: 2 });
    expect(kv.auth.user('root')?.roles).toEqual(['root']);
    expect(run({ op: 'userDelete', name: 'root' })).toMatchObject({ ok: false, error: { code: 'root_required' } });
    expect(run({ op: 'userRevokeRole', name: 'root', role: 'root' })).toMatchObject({ ok: false, error: { code: 'root_required' } });
    run({ op: 'roleAdd', name: 'r' });
    run({ op: 'userAdd', name: 'u', passwordHash: HASH });
    run({ op: 'userGrantRole', name: 'u', role: 'r' });
    const granted = kv.auth.user('u')?.revision;
    expect(run({ op: 'userGrantRole', name: 'u', role: 'r' })).toMatchObject({ ok: false, error: { code: 'role_already_granted' } });
    expect(kv.auth.user('u')?.revision).toBe(granted);
    run({ op: 'roleDelete', name: 'r' });
    expect(kv.auth.user('u')?.roles).toEqual([]);
    expect(kv.auth.user('u')?.revision).toBeGreaterThan(granted as number);
    expect(run({ op: 'roleRevokePermission', name: 'r', key: 'x', match: 'exact' })).toMatchObject({ ok: false, error: { code: 'role_not_found' } });
    // An auth command moves neither the revision nor any key.
    expect(kv.revision).toBe(1);
  });

  it('the table survives snapshot and restore exactly', () => {
    const kv = applied([...twoPcCommands(), { type: 'put', key: 'tx/1', value: 'v' }]);
    const restored = KvStateMachine.restore(kv.snapshot());
    expect(restored.snapshot()).toBe(kv.snapshot());
    expect(restored.auth.allowsKey('a', 'tx/1/vote/a', 'write')).toBe(true);
    expect(restored.auth.secret).toBe(SECRET);
  });

  it('the on-disk engine records the table with the batch, and a reopen is the machine that wrote it', async () => {
    const dir = tempDir();
    let store = openTempStore(dir);
    let kv = new KvStateMachine({}, store);
    const twin = new KvStateMachine();
    const all = twoPcCommands().flatMap((c, i): KvCommand[] => [c, { type: 'put', key: `k${i}`, value: String(i) }]);
    all.push(auth({ op: 'userPasswd', name: 'a', passwordHash: 'scrypt$2$1$1$CC$DD' }), auth({ op: 'disable' }));
    for (let i = 0; i < all.length; i += 3) {
      const slice = all.slice(i, i + 3);
      kv.batch(() => slice.forEach((c, j) => kv.apply(c, i + j + 1)));
      slice.forEach((c, j) => twin.apply(c, i + j + 1));
      await closeTempStore(store);
      store = openTempStore(dir);
      kv = KvStateMachine.reopen({}, store) as KvStateMachine;
      expect(kv.snapshot(), `after command ${i + slice.length}`).toBe(twin.snapshot());
    }
    expect(kv.auth.enabled).toBe(false);
    expect(kv.auth.user('a')?.passwordHash).toBe('scrypt$2$1$1$CC$DD');
    // A stream's header carries the table too (snapshot-offers.ts sends stateImage).
    expect(kv.stateImage({}).auth).toEqual(twin.stateImage({}).auth);
  });
});

describe('auth at apply time', () => {
  it('a write checked before a revoke, applied after it, is refused and changes nothing', () => {
    const kv = applied(twoPcCommands());
    let index = 100;
    const checkedAt = kv.auth.revision;
    const vote: KvCommand = { type: 'cas', key: 'tx/9/vote/a', expected: null, value: 'yes', nowMs: 1, caller: { user: 'a', authRevision: checkedAt } };
    // Unchanged table: applied as checked.
    expect(kv.apply(vote, ++index).result).toMatchObject({ ok: true, succeeded: true });
    // The permission goes between the check and the apply.
    kv.apply(auth({ op: 'roleRevokePermission', name: 'participant-a', key: 'tx/*/vote/a', match: 'exact' }), ++index);
    const before = kv.snapshot().replace(/"appliedIndex":\d+/, '');
    const late: KvCommand = { type: 'cas', key: 'tx/10/vote/a', expected: null, value: 'yes', nowMs: 2, caller: { user: 'a', authRevision: checkedAt }, requestId: { clientId: 'p-a', seq: 1 } };
    expect(kv.apply(late, ++index).result).toMatchObject({ ok: false, error: { code: 'permission_denied' } });
    expect(kv.snapshot().replace(/"appliedIndex":\d+/, '')).toBe(before);
    // Another permission change leaves what is still allowed alone; a deleted user is refused.
    const ack: KvCommand = { type: 'put', key: 'tx/9/ack/a', value: '1', nowMs: 3, caller: { user: 'a', authRevision: checkedAt } };
    expect(kv.apply(ack, ++index).result).toMatchObject({ ok: true });
    kv.apply(auth({ op: 'userDelete', name: 'a' }), ++index);
    expect(kv.apply({ ...ack, nowMs: 4 } as KvCommand, ++index).result).toMatchObject({ ok: false, error: { code: 'permission_denied' } });
    // Auth off: no check.
    kv.apply(auth({ op: 'disable' }), ++index);
    expect(kv.apply({ ...ack, nowMs: 5 } as KvCommand, ++index).result).toMatchObject({ ok: true });
    expect(kv.apply({ type: 'put', key: 'x', value: 'v', caller: { user: 3 } } as unknown as KvCommand, ++index).result).toMatchObject({ ok: false, error: { code: 'invalid_command' } });
  });
});

describe('auth at apply time: lease revokes', () => {
  it('a revoke checked before the permission went is refused at apply, and the lease and its key stay', () => {
    const kv = applied(twoPcCommands());
    let index = 100;
    const checkedAt = kv.auth.revision;
    kv.apply({ type: 'leaseGrant', id: 7, ttlMs: 60_000, nowMs: 1 }, ++index);
    kv.apply({ type: 'put', key: 'tx/9/vote/a', value: 'yes', lease: 7, nowMs: 1 }, ++index);
    kv.apply(auth({ op: 'roleRevokePermission', name: 'participant-a', key: 'tx/*/vote/a', match: 'exact' }), ++index);
    const revoke: KvCommand = { type: 'leaseRevoke', id: 7, nowMs: 2, caller: { user: 'a', authRevision: checkedAt } };
    expect(kv.apply(revoke, ++index).result).toMatchObject({ ok: false, error: { code: 'permission_denied' } });
    expect(kv.leases().map((l) => l.id)).toEqual([7]);
    expect(kv.get('tx/9/vote/a')).toMatchObject({ ok: true, kv: { value: 'yes' } });
  });
});
