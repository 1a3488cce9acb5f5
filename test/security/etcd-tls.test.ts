/**
 * Goal: the 2PC runs on an etcd cluster with TLS and auth turned on, as a
 * careful operator runs it: Debian's etcd, 3 members serving their client
 * URLs over TLS with --client-cert-auth (dev certificates of lib/certs.ts),
 * a root user, a 2PC user, auth enabled, and tokens that expire after 2 s
 * without use. Opened the way the processes open it (`etcds://...` and the
 * RAFT2PC_ETCD_* variables through coordinator/txstore/open.ts), the store
 * passes the whole TxStore contract (an expired token is renewed on the
 * way, unary calls and watch streams alike). A wrong password, a CA that
 * does not sign etcd's certificate, a client certificate from another CA or
 * none at all are refused when the store is opened, with an error that
 * says which; a user etcd does not know gets 403 on its first call.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdTxStore } from '../../coordinator/txstore/etcd/etcd-store.js';
import { openTxStore, parseStoreSpec, type OpenedStore } from '../../coordinator/txstore/open.js';
import { TxStoreError } from '../../coordinator/txstore/txstore.js';
import { makeDevCertificates, type DevCertFiles } from '../../lib/certs.js';
import { etcdForTests, etcdVersion, startEtcdCluster, trackFailures, type EtcdCluster } from '../support/etcd.js';
import { collect, txStoreContract } from '../coordinator/txstore.case.js';

/** This file's ports: 29900-29905. */
const BASE_PORT = 29_900;
const BIN = etcdForTests('test/security/etcd-tls.test.ts');
/** etcd's --auth-token-ttl here: short, so the contract's pauses outlive tokens and renewal is exercised. */
const TOKEN_TTL_S = 2;
const AUTH = { rootPassword: 'root-pw-7f3a', user: 'twopc', password: 'twopc-pw-91c2' };

async function openWith(cluster: EtcdCluster, env: Record<string, string>): Promise<OpenedStore> {
  return openTxStore(parseStoreSpec(cluster.storeFlag), 'etcd-tls', { ...process.env, ...env });
}

async function refusal(p: Promise<unknown>): Promise<TxStoreError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof TxStoreError)) throw new Error(`expected a TxStoreError, got ${String(e)}`);
  return e;
}

describe.skipIf(BIN === undefined)('etcd with TLS and auth', () => {
  const failures = trackFailures();
  let started = false;
  let dir: string;
  let certs: DevCertFiles;
  let rogue: DevCertFiles;
  let cluster: EtcdCluster;
  let opened: OpenedStore;
  let store: EtcdTxStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'sec-etcd-tls-'));
    certs = await makeDevCertificates({ dir: join(dir, 'certs') });
    rogue = await makeDevCertificates({ dir: join(dir, 'rogue') });
    console.log(`etcd ${etcdVersion(BIN as string)} with TLS and auth, 3 members on ${BASE_PORT}-${BASE_PORT + 5}, data and logs in ${dir}`);
    cluster = await startEtcdCluster(BIN as string, join(dir, 'etcd'), BASE_PORT, 30_000, { certs, auth: AUTH, tokenTtlSeconds: TOKEN_TTL_S });
    opened = await openWith(cluster, cluster.clientEnv);
    if (!(opened.store instanceof EtcdTxStore)) throw new Error(`${cluster.storeFlag} opened ${opened.store.constructor.name}`);
    store = opened.store;
    started = true;
  }, 90_000);

  afterAll(async () => {
    await opened?.close();
    await cluster?.stop();
    cluster?.dispose(failures.failed || !started || process.env['TWOPC_KEEP'] === '1');
  }, 30_000);

  it('etcds:// names the members over https', () => {
    expect(cluster.storeFlag).toMatch(/^etcds:\/\//);
    expect(parseStoreSpec(cluster.storeFlag)).toEqual({ kind: 'etcd', endpoints: cluster.endpoints });
    for (const e of cluster.endpoints) expect(e).toMatch(/^https:\/\//);
  });

  txStoreContract('EtcdTxStore over TLS with auth', () => store, {
    changeLeader: async () => {
      await cluster.transferLeader();
    },
  });

  it('an expired token is renewed: a write and a watch work after the token outlived its TTL', async () => {
    const first = await store.put('token/a', '1');
    // Idle past the TTL: etcd forgets the token (simple tokens expire when unused).
    await new Promise((r) => setTimeout(r, (TOKEN_TTL_S + 1.5) * 1_000));
    const watched = collect(store, 'token/', first.revision, 2);
    await store.put('token/b', '2');
    expect((await watched).map((e) => e.key)).toEqual(['token/a', 'token/b']);
    await new Promise((r) => setTimeout(r, (TOKEN_TTL_S + 1.5) * 1_000));
    expect((await store.casCreate('token/c', '3')).succeeded).toBe(true);
  });

  it('a wrong password is refused at open with 401', async () => {
    const e = await refusal(openWith(cluster, { ...cluster.clientEnv, RAFT2PC_ETCD_PASSWORD: 'not-the-password' }));
    expect(e.status).toBe(401);
    expect(e.code).toBe('unauthenticated');
    expect(e.message).toMatch(/etcd refused user "twopc".*authentication failed/);
  });

  it('a CA that does not sign etcd\'s certificate is refused at open, saying so', async () => {
    const e = await refusal(openWith(cluster, { ...cluster.clientEnv, RAFT2PC_ETCD_CA_FILE: rogue.caFile }));
    expect(e.code).toBe('etcd_tls_failed');
    expect(e.message).toMatch(/TLS to etcd failed.*certificate/i);
  });

  it('a client certificate from another CA, or none, is refused at open', async () => {
    const other = await refusal(openWith(cluster, { ...cluster.clientEnv, RAFT2PC_ETCD_CERT_FILE: rogue.clientCertFile, RAFT2PC_ETCD_KEY_FILE: rogue.clientKeyFile }));
    expect(other.code).toBe('etcd_tls_failed');
    const none = await refusal(openWith(cluster, { ...cluster.clientEnv, RAFT2PC_ETCD_CERT_FILE: '', RAFT2PC_ETCD_KEY_FILE: '' }));
    expect(none.code).toBe('etcd_tls_failed');
  });

  it('without credentials, the certificate alone (a user etcd does not know) gets 403', async () => {
    const anon = await openWith(cluster, { ...cluster.clientEnv, RAFT2PC_ETCD_USER: '', RAFT2PC_ETCD_PASSWORD: '' });
    try {
      const e = await refusal(anon.store.get('tx/anything'));
      expect(e.status).toBe(403);
      expect(e.code).toBe('permission_denied');
    } finally {
      await anon.close();
    }
  });

  it('a user without a password is a configuration error', async () => {
    const e = await refusal(openWith(cluster, { ...cluster.clientEnv, RAFT2PC_ETCD_PASSWORD: '' }));
    expect(e.code).toBe('invalid_config');
  });
});
