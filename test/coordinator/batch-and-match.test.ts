// Goal: group commit of store writes and narrower watches (issue 17).
// POST /v1/batch applies independent writes each as if alone, with its own
// answer and at most once per Request-Id; one bad item refuses the whole
// batch and writes nothing.
// BatchingTxStore, the wrapper every 2PC process writes through, passes the
// same TxStore contract as the plain backend, and under concurrency really
// sends fewer requests than writes. A watch with `match` patterns delivers
// only the keys that match, and its resume point past the rest.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchingTxStore } from '../../coordinator/txstore/batching.js';
import { BuiltinTxStore, TxStoreError } from '../../coordinator/txstore/index.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { StoreClient } from '../../store/client/index.js';
import { txStoreContract } from './txstore.case.js';

const BASE_PORT = 36400;

let cluster: LocalCluster | undefined;
let dataDir = '';
let client: StoreClient;
let store: BatchingTxStore;

beforeAll(async () => {
  dataDir = mkdtempSync(join(os.tmpdir(), 'txstore-batching-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir, logToFiles: true });
  cluster.start();
  await cluster.waitForLeader(30_000);
  client = new StoreClient({ endpoints: cluster.endpoints });
  store = new BatchingTxStore(new BuiltinTxStore(client), keepAliveTimers);
}, 60_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

txStoreContract('BatchingTxStore over the built-in store', () => store);

async function postBatch(items: unknown[]): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cluster!.endpoints[0]}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('POST /v1/batch', () => {
  it('answers each item as its own write: a CAS that loses does not stop the others', async () => {
    await client.put('b/taken', 'x');
    const r = await postBatch([
      { type: 'cas', key: 'b/taken', expected: null, value: 'y' },
      { type: 'cas', key: 'b/new', expected: null, value: 'y' },
      { type: 'put', key: 'b/put', value: 'p' },
      { type: 'txn', compare: [{ key: 'b/new', target: 'version', op: '=', value: 0 }], success: [{ type: 'put', key: 'b/t', value: 't' }] },
      { type: 'delete', key: 'b/taken' },
    ]);
    expect(r.status).toBe(200);
    const results = r.body['results'] as Record<string, unknown>[];
    expect(results[0]).toMatchObject({ succeeded: false, previous: 'x' });
    expect(results[1]).toMatchObject({ succeeded: true, previous: null });
    expect(results[2]).toMatchObject({ previous: null });
    // In item order: b/new exists by the time the txn is applied.
    expect(results[3]).toMatchObject({ succeeded: false });
    expect(results[4]).toMatchObject({ deleted: true, previous: 'x' });
    expect(await client.get('b/t')).toBeNull();
    expect((await client.get('b/put'))?.value).toBe('p');
  });

  it('refuses the whole batch when one item is bad, and writes nothing', async () => {
    const before = (await client.range('bad/')).kvs.length;
    for (const bad of [{ type: 'put', key: '', value: 'v' }, { type: 'put', key: 'bad/k' }, { type: 'cas', key: 'bad/k', value: 'v' }, { type: 'nope', key: 'bad/k' }, { type: 'put', key: 'bad/x', value: 'v', requestId: 'no-sequence' }]) {
      const r = await postBatch([{ type: 'put', key: 'bad/ok', value: 'v' }, bad]);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await postBatch([])).status).toBe(400);
    expect((await postBatch(Array.from({ length: 257 }, (_, i) => ({ type: 'put', key: `bad/${i}`, value: 'v' })))).status).toBe(400);
    expect((await client.range('bad/')).kvs.length).toBe(before);
  });

  it('applies an item at most once per Request-Id: a replayed batch answers what it did the first time', async () => {
    const items = [{ type: 'put', key: 'once/k', value: 'v1', requestId: 'batch-test-once:1' }];
    const first = await postBatch(items);
    await client.put('once/k', 'changed');
    const again = await postBatch(items);
    expect(again.body['results']).toEqual(first.body['results']);
    expect((await client.get('once/k'))?.value).toBe('changed');
  });

  it('refuses two items with the same Request-Id', async () => {
    const r = await postBatch([
      { type: 'put', key: 'dup/a', value: 'v', requestId: 'batch-test-dup:1' },
      { type: 'put', key: 'dup/b', value: 'v', requestId: 'batch-test-dup:1' },
    ]);
    expect(r.status).toBe(400);
    expect((r.body['error'] as Record<string, unknown>)['code']).toBe('duplicate_request_id');
  });
});

describe('BatchingTxStore', () => {
  it('sends concurrent writes in fewer requests than writes, each with its own outcome', async () => {
    const before = { ...store.stats };
    const n = 200;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => store.casCreate(`grp/${i % 150}`, `v${i}`)));
    const batches = store.stats.batches - before.batches;
    expect(store.stats.writes - before.writes).toBe(n);
    expect(batches).toBeLessThan(n / 4);
    // Keys 0..49 were written twice: exactly one CAS of each pair won.
    expect(results.filter((r) => r.succeeded).length).toBe(150);
    for (let k = 0; k < 50; k++) expect([results[k]!.succeeded, results[k + 150]!.succeeded].filter(Boolean)).toHaveLength(1);
  });

  it('rejects a failed write with the store error of that write alone', async () => {
    const [good, bad] = await Promise.allSettled([store.put('err/ok', 'v'), store.put('x'.repeat(2_000), 'v')]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    const e = (bad as PromiseRejectedResult).reason as TxStoreError;
    expect(e).toBeInstanceOf(TxStoreError);
    expect(e.status).toBeGreaterThanOrEqual(400);
    expect(e.status).toBeLessThan(500);
  });

  it('refuses writes past its queue bound with busy, and never loses the others', async () => {
    const small = new BatchingTxStore(new BuiltinTxStore(client), keepAliveTimers, { maxItems: 4, maxInflight: 1, maxQueued: 8 });
    const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => small.put(`q/${i}`, 'v')));
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const s of refused) expect(((s as PromiseRejectedResult).reason as TxStoreError).code).toBe('busy');
    const written = (await client.range('q/')).kvs.length;
    expect(written).toBe(settled.length - refused.length);
  });
});

describe('GET /v1/watch?match', () => {
  it('refuses malformed or too many patterns with 400', async () => {
    for (const q of ['match=w%2Fa*', 'match=', Array.from({ length: 17 }, (_, i) => `match=w%2F${i}`).join('&')]) {
      const res = await fetch(`${cluster!.endpoints[0]}/v1/watch?prefix=w%2F&${q}`);
      expect(res.status, q).toBe(400);
      await res.body?.cancel();
    }
  });

  it('sends the resume point alone (a progress event) for revisions with nothing that matches', async () => {
    const from = (await client.put('w/first', 'x')).revision;
    const ac = new AbortController();
    const res = await fetch(`${cluster!.endpoints[0]}/v1/watch?prefix=w%2F&match=w%2Fnever&fromRevision=${from}`, { signal: ac.signal });
    const last = (await client.put('w/second', 'y')).revision;
    const reader = res.body!.getReader();
    const deadline = Date.now() + 10_000;
    let text = '';
    try {
      while (!text.includes(`id: ${last}\n`) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    } finally {
      ac.abort();
    }
    expect(text).toContain(`id: ${last}\nevent: progress`);
    expect(text).not.toContain('event: put');
  });
});
