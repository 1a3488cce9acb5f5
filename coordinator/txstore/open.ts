/**
 * One place that turns a `--store` value into a TxStore, so every process
 * (coordinator, participants, demo, benchmarks) accepts the same spelling:
 *
 *   http://127.0.0.1:2379,http://127.0.0.1:2380   the built-in store (default)
 *   etcd://127.0.0.1:2379,127.0.0.1:22379          an existing etcd cluster
 *   etcds://10.0.0.1:2379,...                      the same over TLS (and RAFT2PC_ETCD_* for CA, certificate, user)
 *
 * The environment variable TWOPC_STORE is read when no flag is given.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import { StoreClient } from '../../store/client/index.js';
import { BatchingTxStore } from './batching.js';
import { BuiltinTxStore } from './builtin.js';
import { keepAliveTimers } from '../../lib/timers.js';
import type { TxStore } from './txstore.js';

export type StoreKind = 'builtin' | 'etcd';

export interface StoreSpec {
  readonly kind: StoreKind;
  /** Full URLs (http://host:port) for both kinds. */
  readonly endpoints: readonly string[];
}

export const STORE_ENV = 'TWOPC_STORE';
/** `off`: every store write is its own request (no group commit), for comparisons. */
export const STORE_BATCH_ENV = 'TWOPC_STORE_BATCH';

export function parseStoreSpec(text: string): StoreSpec {
  const trimmed = text.trim();
  // etcds://: etcd over TLS (its CA and client certificate: RAFT2PC_ETCD_*, etcd/security.ts).
  const scheme = /^etcds?:\/\//.exec(trimmed)?.[0];
  const etcd = scheme !== undefined;
  const body = scheme === undefined ? trimmed : trimmed.slice(scheme.length);
  const bare = scheme === 'etcds://' ? 'https' : 'http';
  const parts = body.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new AppError('invalid_store', 400, `store spec "${text}" names no endpoint`);
  const endpoints = parts.map((p) => {
    const url = /^https?:\/\//.test(p) ? p : `${bare}://${p}`;
    try {
      new URL(url);
    } catch {
      throw new AppError('invalid_store', 400, `store endpoint "${p}" is not host:port or a URL`);
    }
    return url.replace(/\/+$/, '');
  });
  return { kind: etcd ? 'etcd' : 'builtin', endpoints };
}

/** The flag's value, else TWOPC_STORE, else undefined. */
export function storeSpecFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): StoreSpec | undefined {
  const text = flag ?? env[STORE_ENV];
  return text === undefined || text.trim() === '' ? undefined : parseStoreSpec(text);
}

export interface OpenedStore {
  readonly store: TxStore;
  readonly spec: StoreSpec;
  close(): Promise<void>;
}

/** The built-in store's credentials when its auth is on (docs/SECURITY.md): a user and password, or a token. */
export const STORE_USER_ENV = 'RAFT2PC_STORE_USER';
export const STORE_PASSWORD_ENV = 'RAFT2PC_STORE_PASSWORD';
export const STORE_TOKEN_ENV = 'RAFT2PC_STORE_TOKEN';

/** The credentials the variables give (none when unset); a user without a password is a mistake, said at once. */
export function storeCredentialsFrom(env: NodeJS.ProcessEnv): { user?: string; password?: string; token?: string } {
  const user = env[STORE_USER_ENV];
  const password = env[STORE_PASSWORD_ENV];
  const token = env[STORE_TOKEN_ENV];
  if ((user === undefined || user === '') !== (password === undefined || password === '')) {
    throw new AppError('invalid_store', 400, `set both ${STORE_USER_ENV} and ${STORE_PASSWORD_ENV}, or neither`);
  }
  if (user !== undefined && user !== '') return { user, password: password as string };
  return token === undefined || token === '' ? {} : { token };
}

/**
 * Opens the store. `clientName` prefixes the built-in store's client id; a
 * random suffix keeps a restarted process from reusing the old process's
 * write sequence numbers (the store deduplicates by client id and sequence).
 * The built-in store's credentials come from `env` (storeCredentialsFrom).
 */
export async function openTxStore(spec: StoreSpec, clientName: string, env: NodeJS.ProcessEnv = process.env): Promise<OpenedStore> {
  if (spec.kind === 'builtin') {
    const client = new StoreClient({ endpoints: [...spec.endpoints], clientId: `${clientName}-${randomBytes(6).toString('hex')}`, ...storeCredentialsFrom(env) });
    const builtin = new BuiltinTxStore(client);
    // Group commit: writes made while earlier ones are in flight go as one batch (batching.ts).
    const store = env[STORE_BATCH_ENV] === 'off' ? builtin : new BatchingTxStore(builtin, keepAliveTimers);
    return { store, spec, close: async () => client.close() };
  }
  // Loaded lazily so that users of the built-in store never load the etcd client.
  const { openEtcdTxStore } = await import('./etcd/etcd-store.js');
  return openEtcdTxStore(spec, env);
}

/** The coordination store, as every process that reaches it takes it (coordinators, participants, the demo app). */
export const STORE_FLAG = {
  type: 'string',
  required: true,
  parse: parseStoreSpec,
  envAliases: [STORE_ENV],
  placeholder: 'http://host:port,...|etcd://host:port,...',
  description: 'the built-in store (http://...) or an etcd cluster (etcd://..., etcds://... over TLS; its CA, certificate and user: the --etcd-* flags)',
} as const;
