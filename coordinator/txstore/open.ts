/**
 * One place that turns a `--store` value into a TxStore, so every process
 * (coordinator, participants, demo, benchmarks) accepts the same spelling:
 *
 *   http://127.0.0.1:2379,http://127.0.0.1:2380   the built-in store (default)
 *   etcd://127.0.0.1:2379,127.0.0.1:22379          an existing etcd cluster
 *
 * The environment variable TWOPC_STORE is read when no flag is given.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import { StoreClient } from '../../store/client/index.js';
import { BuiltinTxStore } from './builtin.js';
import type { TxStore } from './txstore.js';

export type StoreKind = 'builtin' | 'etcd';

export interface StoreSpec {
  readonly kind: StoreKind;
  /** Full URLs (http://host:port) for both kinds. */
  readonly endpoints: readonly string[];
}

export const STORE_ENV = 'TWOPC_STORE';

export function parseStoreSpec(text: string): StoreSpec {
  const trimmed = text.trim();
  const etcd = trimmed.startsWith('etcd://');
  const body = etcd ? trimmed.slice('etcd://'.length) : trimmed;
  const parts = body.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new AppError('invalid_store', 400, `store spec "${text}" names no endpoint`);
  const endpoints = parts.map((p) => {
    const url = /^https?:\/\//.test(p) ? p : `http://${p}`;
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

/**
 * Opens the store. `clientName` prefixes the built-in store's client id; a
 * random suffix keeps a restarted process from reusing the old process's
 * write sequence numbers (the store deduplicates by client id and sequence).
 */
export async function openTxStore(spec: StoreSpec, clientName: string): Promise<OpenedStore> {
  if (spec.kind === 'builtin') {
    const client = new StoreClient({ endpoints: [...spec.endpoints], clientId: `${clientName}-${randomBytes(6).toString('hex')}` });
    return { store: new BuiltinTxStore(client), spec, close: async () => client.close() };
  }
  // Loaded lazily so that users of the built-in store never load the etcd client.
  const { openEtcdTxStore } = await import('./etcd/etcd-store.js');
  return openEtcdTxStore(spec);
}

/** The coordination store, as every process that reaches it takes it (coordinators, participants, the demo app). */
export const STORE_FLAG = {
  type: 'string',
  required: true,
  parse: parseStoreSpec,
  envAliases: [STORE_ENV],
  placeholder: 'http://host:port,...|etcd://host:port,...',
  description: 'the built-in store (http://...) or an etcd cluster (etcd://...)',
} as const;
