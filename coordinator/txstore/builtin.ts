/**
 * The TxStore backend over the built-in store's client (store/client): CAS,
 * txn, range, watch and leases map one to one; lease ids travel as strings.
 */
import { StoreError, type BatchWrite, type KeyValue, type StoreClient, type TxnCompare, type TxnOp } from '../../store/client/index.js';
import { isCreateRevisionGuard, TxStoreError, type TxBatchOutcome, type TxBatchWrite, type TxBatchWriter, type TxCasResult, type TxLeaseId, type RangeOptions, type TxGuard, type TxKeyValue, type TxStore, type TxWatchEvent, type TxWrite, type WatchOptions, type WriteOptions } from './txstore.js';


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

export class BuiltinTxStore implements TxStore, TxBatchWriter {
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
    const clientOpts: { fromRevision?: number; signal?: AbortSignal; match?: readonly string[] } = {};
    if (opts.fromRevision !== undefined) clientOpts.fromRevision = opts.fromRevision;
    if (opts.signal !== undefined) clientOpts.signal = opts.signal;
    if (opts.match !== undefined) clientOpts.match = opts.match;
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
      const t = this.txnWrite(guards, writes);
      const r = await this.client.txn(t.compare, t.success, []);
      return { succeeded: r.succeeded, revision: r.revision };
    });
  }

  /** Many independent writes in one request (POST /v1/batch); each outcome as its single method gives it. */
  writeBatch(writes: readonly TxBatchWrite[]): Promise<TxBatchOutcome[]> {
    return this.call(async () => {
      const results = await this.client.batch(writes.map((w) => this.batchWrite(w)));
      return results.map((r, i): TxBatchOutcome => {
        if (!r.ok) return { ok: false, error: mapError(r.error) };
        const v = r.value;
        switch (writes[i]!.kind) {
          case 'cas':
            return { ok: true, value: { succeeded: v['succeeded'], previous: v['previous'] ?? null, revision: v['revision'] } };
          case 'put':
            return { ok: true, value: { revision: v['revision'], previous: v['previous'] ?? null } };
          case 'delete':
            return { ok: true, value: { deleted: v['deleted'], previous: v['previous'] ?? null, revision: v['revision'] } };
          case 'txn':
            return { ok: true, value: { succeeded: v['succeeded'], revision: v['revision'] } };
        }
      });
    });
  }

  private batchWrite(w: TxBatchWrite): BatchWrite {
    switch (w.kind) {
      case 'cas':
        return { type: 'cas', key: w.key, expected: w.expected, value: w.value, ...this.leaseOpts(w.opts) };
      case 'put':
        return { type: 'put', key: w.key, value: w.value, ...this.leaseOpts(w.opts) };
      case 'delete':
        return { type: 'delete', key: w.key };
      case 'txn':
        return { type: 'txn', ...this.txnWrite(w.guards, w.writes) };
    }
  }

  /** A TxStore txn in the store's terms. etcd semantics: an absent key has version 0, and a value compare on an absent key fails. */
  private txnWrite(guards: readonly TxGuard[], writes: readonly TxWrite[]): { compare: TxnCompare[]; success: TxnOp[] } {
    const compare = guards.map((g): TxnCompare => {
      if (isCreateRevisionGuard(g)) return { key: g.key, target: 'createRevision', op: '=', value: g.createRevision };
      return g.value === null ? { key: g.key, target: 'version', op: '=', value: 0 } : { key: g.key, target: 'value', op: '=', value: g.value };
    });
    const success = writes.map((w): TxnOp => (w.type === 'delete' ? { type: 'delete', key: w.key } : { type: 'put', key: w.key, value: w.value, ...this.leaseOpts(w.lease === undefined ? undefined : { lease: w.lease }) }));
    return { compare, success };
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
