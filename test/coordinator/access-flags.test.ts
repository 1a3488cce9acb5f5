// Goal: a service's store credentials can come from flags as well as from
// the RAFT2PC_* variables, with the flag winning, secrets read from files
// (never from argv), and a bad file a usage error that names its flag; and
// the result is what openTxStore reads (storeCredentialsFrom, the etcd
// variables).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/cli.js';
import { storeAccessEnv } from '../../coordinator/txstore/access-flags.js';
import { storeCredentialsFrom } from '../../coordinator/txstore/open.js';
import { coordinatorCommand } from '../../coordinator/service/main.js';

const dir = mkdtempSync(join(tmpdir(), 'access-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
};

describe('store access flags', () => {
  it('put the user and the password file into the credentials openTxStore takes, over the variables', () => {
    const env = storeAccessEnv({ 'store-user': 'coord', 'store-password-file': file('pw', 's3cret\n') }, { RAFT2PC_STORE_USER: 'other', RAFT2PC_STORE_PASSWORD: 'old' });
    expect(storeCredentialsFrom(env)).toEqual({ user: 'coord', password: 's3cret' });
  });

  it('read a token file, and leave the variables as they are when no flag is given', () => {
    expect(storeCredentialsFrom(storeAccessEnv({ 'store-token-file': file('tok', 'r2p1.abc.def') }, {}))).toEqual({ token: 'r2p1.abc.def' });
    expect(storeCredentialsFrom(storeAccessEnv({}, { RAFT2PC_STORE_TOKEN: 'from-env' }))).toEqual({ token: 'from-env' });
  });

  it("name etcd's TLS files and user by the variables etcd/security.ts reads", () => {
    const env = storeAccessEnv({ 'etcd-ca-file': '/ca.pem', 'etcd-cert-file': '/c.pem', 'etcd-key-file': '/k.pem', 'etcd-user': 'u', 'etcd-password-file': '/pw' }, {});
    expect(env).toMatchObject({ RAFT2PC_ETCD_CA_FILE: '/ca.pem', RAFT2PC_ETCD_CERT_FILE: '/c.pem', RAFT2PC_ETCD_KEY_FILE: '/k.pem', RAFT2PC_ETCD_USER: 'u', RAFT2PC_ETCD_PASSWORD_FILE: '/pw' });
  });

  it('refuse a missing or empty secret file with a usage error naming the flag', () => {
    const subjectOf = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as UsageError).subject;
      }
      return undefined;
    };
    expect(subjectOf(() => storeAccessEnv({ 'store-password-file': join(dir, 'nope') }, {}))).toBe('--store-password-file');
    expect(subjectOf(() => storeAccessEnv({ 'store-token-file': file('empty', '\n') }, {}))).toBe('--store-token-file');
  });

  it('are flags of the coordinator, each with its RAFT2PC_ twin', () => {
    for (const flag of ['store-user', 'store-password-file', 'store-token-file', 'etcd-ca-file', 'etcd-user', 'etcd-password-file']) {
      expect(Object.keys(coordinatorCommand.flags)).toContain(flag);
    }
  });
});
