/**
 * The TxStore backend over the built-in store's client (store/client): CAS,
 * txn, range, watch and leases map one to one; lease ids travel as strings.
 */
import { StoreError, type KeyValue, type StoreClient } from '../../store/client/index.js';
import { isCreateRevisionGuard, TxStoreError, type TxCasResult, type TxLeaseId, type RangeOptions, type TxGuard, type TxKeyValue, type TxStore, type TxWatchEvent, type TxWrite, type WatchOptions, type WriteOptions } from './txstore.js';


function mapError(e: unknown): unknown {
  if (e instanceof StoreError) return new TxStoreError(e.code, e.status, e.message, e.details, { cause: e });
  return e;
}

function leaseNumber(id: TxLeaseId): number {
  const n = Number(id);
  if (!Number.isSafeInteger(n) || n < 0) throw new TxStoreError('lease_not_found', 404, `no lease ${id}`);
  return n;
}

function toKv(kv: KeyValue): TxKeyValue {
  const base = { key: kv.key, value: kv.value, version: kv.version, createRevision: kv.createRevision, modRevision: kv.modRevision };
  return kv.lease === undefined || kv.lease === 0 ? base : { ...base, lease: String(kv.lease) };
}

export class BuiltinTxStore implements TxStore {
  constructor(readonly client: StoreClient) {}

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw mapError(e);
    }
  }

  private leaseOpts(opts: WriteOptions | undefined): { lease?: number } {
    return opts?.lease === undefined ? {} : { lease: leaseNumber(opts.lease) };
  }

  get(key: string): Promise<TxKeyValue | null> {
    return this.call(async () => {
      const kv = await this.client.get(key);
      return kv === null ? null : toKv(kv);
    });
  }

  casCreate(key: string, value: string, opts?: WriteOptions): Promise<TxCasResult> {
    return this.call(() => this.client.cas(key, null, value, this.leaseOpts(opts)));
  }

  casValue(key: string, expected: string, value: string, opts?: WriteOptions): Promise<TxCasResult> {
    return this.call(() => this.client.cas(key, expected, value, this.leaseOpts(opts)));
  }

  put(key: string, value: string, opts?: WriteOptions): Promise<{ revision: number; previous: string | null }> {
    return this.call(() => this.client.put(key, value, this.leaseOpts(opts)));
  }

  delete(key: string): Promise<{ deleted: boolean; previous: string | null; revision: number }> {
    return this.call(() => this.client.delete(key));
  }

  range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: TxKeyValue[]; more: boolean; revision: number }> {
    return this.call(async () => {
      const r = await this.client.range(prefix, opts);
      return { kvs: r.kvs.map(toKv), more: r.more, revision: r.revision };
    });
  }

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<TxWatchEvent> {
    const clientOpts: { fromRevision?: number; signal?: AbortSignal } = {};
    if (opts.fromRevision !== undefined) clientOpts.fromRevision = opts.fromRevision;
    if (opts.signal !== undefined) clientOpts.signal = opts.signal;
    try {
      for await (const e of this.client.watch({ prefix }, clientOpts)) {
        yield { type: e.type, key: e.key, value: e.type === 'delete' ? null : e.value, revision: e.revision };
      }
    } catch (e) {
      throw mapError(e);
    }
  }

  txn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<{ succeeded: boolean; revision: number }> {
    return this.call(async () => {
      // etcd semantics: an absent key has version 0, and a value compare on an absent key fails.
      const compare = guards.map((g) => {
        if (isCreateRevisionGuard(g)) return { key: g.key, target: 'createRevision' as const, op: '=' as const, value: g.createRevision };
        return g.value === null ? { key: g.key, target: 'version' as const, op: '=' as const, value: 0 } : { key: g.key, target: 'value' as const, op: '=' as const, value: g.value };
      });
      const success = writes.map((w) =>
        w.type === 'delete' ? { type: 'delete' as const, key: w.key } : { type: 'put' as const, key: w.key, value: w.value, ...this.leaseOpts(w.lease === undefined ? undefined : { lease: w.lease }) },
      );
      const r = await this.client.txn(compare, success, []);
      return { succeeded: r.succeeded, revision: r.revision };
    });
  }

  grantLease(ttlMs: number): Promise<{ id: TxLeaseId; ttlMs: number }> {
    return this.call(async () => {
      const r = await this.client.grantLease(ttlMs);
      return { id: String(r.id), ttlMs: r.ttlMs };
    });
  }

  keepAlive(id: TxLeaseId): Promise<{ id: TxLeaseId; ttlMs: number }> {
    return this.call(async () => {
      const r = await this.client.keepAlive(leaseNumber(id));
      return { id: String(r.id), ttlMs: r.ttlMs };
    });
  }

  revokeLease(id: TxLeaseId): Promise<{ revoked: boolean }> {
    return this.call(async () => ({ revoked: (await this.client.revokeLease(leaseNumber(id))).revoked }));
  }
}
