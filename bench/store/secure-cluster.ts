/**
 * bench:store's secure cluster (--compare-secure): our 3 nodes with TLS on
 * every link (HTTPS with client certificates, peer mTLS: lib/certs.ts's
 * development CA) and auth on, and the token of a user whose one role reads
 * and writes `bench/`, so every benchmarked request pays what a secure
 * deployment pays: the TLS record layer, the token's HMAC and the key's
 * permission check (docs/SECURITY.md).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeDevCertificates } from '../../lib/certs.js';
import type { HttpClientTls } from '../../lib/http-client.js';
import { StoreClient } from '../../store/client/index.js';
import { clientTlsOf, LocalCluster } from '../../store/node/launcher.js';

/** The longest token the store issues (CREDENTIAL_LIMITS.maxTokenTtlMs): a run outlives the default 5 minutes. */
const TOKEN_TTL_MS = 60 * 60_000;

export interface SecureCluster {
  readonly cluster: LocalCluster;
  readonly tls: HttpClientTls;
  /** Set by `setUp`: the bench user's token. */
  token: string;
}

/** The cluster and its certificates (made now); nothing started yet. */
export async function planSecureCluster(dataDir: string, basePort: number, extraArgs: readonly string[], program?: string): Promise<SecureCluster> {
  const certs = await makeDevCertificates({ dir: join(dataDir, 'certs') });
  const cluster = new LocalCluster({ nodes: 3, basePort, dataDir: join(dataDir, 'store'), logToFiles: true, certs, extraArgs: [...extraArgs], ...(program === undefined ? {} : { program }) });
  return { cluster, tls: clientTlsOf(certs), token: '' };
}

/** On a started cluster: root, the bench role and user, `auth enable`, then the bench user's token. */
export async function setUpAuth(secure: SecureCluster): Promise<void> {
  const passwords = { root: randomBytes(12).toString('hex'), bench: randomBytes(12).toString('hex') };
  const client = new StoreClient({ endpoints: secure.cluster.endpoints, tls: secure.tls, deadlineMs: 20_000 });
  try {
    await client.authRequest('POST', '/v1/auth/users', { name: 'root', password: passwords.root });
    await client.authRequest('POST', '/v1/auth/users/root/roles', { role: 'root' });
    await client.authRequest('POST', '/v1/auth/roles', { name: 'bench' });
    await client.authRequest('POST', '/v1/auth/roles/bench/permissions', { key: 'bench/', match: 'prefix', perm: 'readwrite' });
    await client.authRequest('POST', '/v1/auth/users', { name: 'bench', password: passwords.bench });
    await client.authRequest('POST', '/v1/auth/users/bench/roles', { role: 'bench' });
    await client.authRequest('POST', '/v1/auth/enable');
    const issued = await client.authRequest<{ token: string }>('POST', '/v1/auth/authenticate', { name: 'bench', password: passwords.bench, ttlMs: TOKEN_TTL_MS });
    secure.token = issued.token;
  } finally {
    client.close();
  }
}
