// Goal: random command sequences (seeded; the seed is in every assertion
// message) give exactly the results, events, reads and watch history of a
// deliberately simple reference model: a Map plus a full scan for every range
// and Buffer.compare for UTF-8 key order. Along the way the machine is
// snapshotted and restored, which must not change any later answer.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import type { Compare, KeyValue, KvCommand, KvEvent, TxnOp } from '../../store/kv/index.js';
import { generator } from './commands.js';
import { newKv, restoreKv } from './kv-factory.js';

type Json = Record<string, unknown>;

const byBytes = (x: string, y: string) => Buffer.compare(Buffer.from(x), Buffer.from(y));

/** The reference: obviously correct, not fast. Failures are reduced to their code. */
class Model {
  revision = 1;
  readonly keys = new Map<string, KeyValue>();
  readonly leases = new Map<number, number>();
  readonly events: KvEvent[] = [];
  readonly sessions = new Map<string, { seq: number; result: Json }>();

  apply(c: Json): { result: Json; events: KvEvent[] } {
    // Input checks come before sessions. Like etcd, a key written twice in either txn branch is refused.
    for (const branch of c['type'] === 'txn' ? ['success', 'failure'] : []) {
      const writes = (c[branch] as TxnOp[]).filter((o) => o.type === 'put' || o.type === 'delete').map((o) => o.key);
      if (new Set(writes).size !== writes.length) return this.failure('duplicate_key_in_txn');
    }
    const id = c['requestId'] as { clientId: string; seq: number } | undefined;
    const session = id && this.sessions.get(id.clientId);
    if (id && session && id.seq < session.seq) return this.failure('request_id_stale');
    if (id && session && id.seq === session.seq) return { result: { ...session.result, duplicate: true }, events: [] };
    const start = this.events.length;
    const result = this.exec(c);
    if (id && result['ok'] === true) this.sessions.set(id.clientId, { seq: id.seq, result });
    return { result, events: this.events.slice(start) };
  }

  private exec(c: Json): Json {
    const key = c['key'] as string;
    switch (c['type']) {
      case 'get':
        return { ok: true, ...this.read(c) };
      case 'range':
        return { ok: true, ...this.read(c) };
      case 'put': {
        if (!this.leaseOk(c)) return this.code('lease_not_found');
        const previous = this.put(c, ++this.revision);
        return { ok: true, type: 'put', revision: this.revision, previous };
      }
      case 'cas': {
        if (!this.leaseOk(c)) return this.code('lease_not_found');
        const previous = this.keys.get(key)?.value ?? null;
        if (previous !== c['expected']) return { ok: true, type: 'cas', succeeded: false, previous, revision: this.revision };
        this.put(c, ++this.revision);
        return { ok: true, type: 'cas', succeeded: true, previous, revision: this.revision };
      }
      case 'delete': {
        const previous = this.keys.get(key)?.value ?? null;
        if (previous !== null) this.del(key, ++this.revision);
        return { ok: true, type: 'delete', deleted: previous !== null, previous, revision: this.revision };
      }
      case 'txn':
        return this.txn(c);
      case 'leaseGrant': {
        if (this.leases.has(c['id'] as number)) return this.code('lease_exists');
        this.leases.set(c['id'] as number, c['ttlMs'] as number);
        return { ok: true, type: 'leaseGrant', id: c['id'], ttlMs: c['ttlMs'], revision: this.revision };
      }
      case 'leaseRevoke': {
        const lease = c['id'] as number;
        if (!this.leases.has(lease)) return this.code('lease_not_found');
        const attached = [...this.keys.values()].filter((kv) => kv.lease === lease).map((kv) => kv.key).sort(byBytes);
        if (attached.length > 0) this.revision++;
        for (const k of attached) this.del(k, this.revision);
        this.leases.delete(lease);
        return { ok: true, type: 'leaseRevoke', id: lease, deleted: attached.length, revision: this.revision };
      }
    }
    throw new Error(`model: unknown command ${JSON.stringify(c)}`);
  }

  private txn(c: Json): Json {
    const holds = (c['compare'] as Compare[]).every((cmp) => {
      const kv = this.keys.get(cmp.key);
      if (cmp.target === 'value' && kv === undefined) return false;
      const actual = kv === undefined ? 0 : kv[cmp.target];
      const sign = typeof actual === 'string' ? byBytes(actual, cmp.value as string) : actual - (cmp.value as number);
      return { '=': sign === 0, '!=': sign !== 0, '<': sign < 0, '>': sign > 0 }[cmp.op];
    });
    const ops = c[holds ? 'success' : 'failure'] as TxnOp[];
    if (!ops.every((o) => o.type !== 'put' || this.leaseOk(o as unknown as Json))) return this.code('lease_not_found');
    const changes = ops.some((o) => o.type === 'put' || (o.type === 'delete' && this.keys.has(o.key)));
    if (changes) this.revision++;
    const results = ops.map((o) => {
      if (o.type === 'put') return { type: 'put', revision: this.revision, previous: this.put(o as unknown as Json, this.revision) };
      if (o.type === 'delete') {
        const previous = this.keys.get(o.key)?.value ?? null;
        if (previous !== null) this.del(o.key, this.revision);
        return { type: 'delete', deleted: previous !== null, previous, revision: this.revision };
      }
      return this.read(o as unknown as Json);
    });
    return { ok: true, type: 'txn', succeeded: holds, revision: this.revision, results };
  }

  read(c: Json): Json {
    if (c['type'] === 'get') return { type: 'get', kv: this.keys.get(c['key'] as string) ?? null, revision: this.revision };
    const after = c['after'] as string | undefined;
    const limit = (c['limit'] as number | undefined) ?? 10_000;
    const all = [...this.keys.keys()]
      .filter((k) => k.startsWith(c['prefix'] as string) && (after === undefined || byBytes(k, after) > 0))
      .sort(byBytes);
    const kvs = all.slice(0, limit).map((k) => this.keys.get(k));
    return { type: 'range', kvs, more: all.length > limit, revision: this.revision };
  }

  private put(c: Json, revision: number): string | null {
    const key = c['key'] as string;
    const old = this.keys.get(key);
    const kv: KeyValue = {
      key,
      value: c['value'] as string,
      version: (old?.version ?? 0) + 1,
      createRevision: old?.createRevision ?? revision,
      modRevision: revision,
      ...(c['lease'] === undefined ? {} : { lease: c['lease'] as number }),
    };
    this.keys.set(key, kv);
    this.events.push({ type: 'put', key, value: kv.value, prevValue: old?.value ?? null, revision });
    return old?.value ?? null;
  }

  private del(key: string, revision: number): void {
    const old = this.keys.get(key) as KeyValue;
    this.keys.delete(key);
    this.events.push({ type: 'delete', key, value: null, prevValue: old.value, revision });
  }

  private leaseOk(c: Json): boolean {
    return c['lease'] === undefined || this.leases.has(c['lease'] as number);
  }

  private code(code: string): Json {
    return { ok: false, code };
  }

  private failure(code: string): { result: Json; events: KvEvent[] } {
    return { result: this.code(code), events: [] };
  }
}

function normalize(result: unknown): unknown {
  const r = result as { ok: boolean; error?: { code: string } };
  return r.ok ? r : { ok: false, code: r.error?.code };
}

describe('randomized against a reference model', () => {
  const SEEDS = Array.from({ length: 25 }, (_, i) => 1000 + i * 7919);
  for (const seed of SEEDS) {
    it(`agrees on seed ${seed}`, () => {
      const random = new SeededRandom(seed);
      const next = generator(random);
      const model = new Model();
      let kv = newKv();
      const clients = ['c1', 'c2', 'c3'];
      const seqs = new Map<string, number>();
      const last = new Map<string, KvCommand>();
      for (let step = 1; step <= 400; step++) {
        const where = `seed ${seed} step ${step}`;
        let command = next();
        const clientId = random.pick(clients);
        if (command.type !== 'get' && command.type !== 'range' && random.chance(0.4)) {
          const retry = last.get(clientId);
          if (retry !== undefined && random.chance(0.3)) {
            command = retry; // a client retrying its last write: a duplicate
          } else {
            const seq = (seqs.get(clientId) ?? 0) + (random.chance(0.1) ? -1 : 1); // sometimes stale
            if (seq > 0) {
              seqs.set(clientId, Math.max(seq, seqs.get(clientId) ?? 0));
              command = { ...command, requestId: { clientId, seq }, nowMs: step };
              last.set(clientId, command);
            }
          }
        }
        const expected = model.apply(command as unknown as Json);
        const actual = kv.apply(command, step);
        expect(normalize(actual.result), `${where}: ${JSON.stringify(command)}`).toEqual(expected.result);
        expect(actual.events, `${where}: events`).toEqual(expected.events);
        expect(kv.revision, `${where}: revision`).toBe(model.revision);
        if (step % 50 === 0) {
          expect(kv.range({ prefix: '' }), `${where}: full range`).toEqual({ ok: true, ...model.read({ type: 'range', prefix: '' }) });
          expect(kv.eventsSince(1, { prefix: '' }, 100_000), `${where}: history`).toEqual({
            ok: true,
            events: model.events,
            nextRevision: model.revision + 1,
            more: false,
          });
          const modelLeases = [...model.leases.keys()].sort();
          expect(kv.leases().map((l) => l.id).sort(), `${where}: leases`).toEqual(modelLeases);
        }
        if (step % 97 === 0) {
          const data = kv.snapshot();
          kv = restoreKv(data);
          expect(kv.snapshot(), `${where}: snapshot round trip`).toBe(data);
        }
      }
    });
  }
});
