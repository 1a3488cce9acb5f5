/**
 * Goal: the store contract (docs/API.md, "The store contract") holds call
 * by call on a real 3-node cluster of separate processes: put/CAS/delete
 * results and their `previous`, records and revisions, the 404 error body,
 * range paging, txn compares and branches, serializable versus linearizable
 * reads (a leader cut off from its followers must not serve a linearizable
 * read), forwarding of writes sent to a follower, and exactly-once retries
 * with the Request-Id header.
 */
import { describe, expect, it } from 'vitest';
import { TestCluster, useTestCluster } from './support/cluster.js';
import { errorCode, http, kvPath, obj, type HttpReply } from './support/http.js';
import { waitFor } from './support/poll.js';

const BASE_PORT = 31000;

let tc: TestCluster;
useTestCluster({ name: 'contract', basePort: BASE_PORT }, (c) => (tc = c));

async function leaderUrl(): Promise<string> {
  return tc.url(await tc.leader());
}

async function followerUrls(): Promise<string[]> {
  const { followers } = await tc.followers();
  return followers.map((id) => tc.url(id));
}

function expectOk(reply: HttpReply): Record<string, unknown> {
  expect(reply.status, reply.text).toBe(200);
  return obj(reply);
}

async function put(base: string, key: string, value: string): Promise<{ revision: number; previous: string | null }> {
  return expectOk(await http(base, 'PUT', kvPath(key), { json: { value } })) as { revision: number; previous: string | null };
}

async function cas(base: string, key: string, expected: string | null, value: string): Promise<{ succeeded: boolean; previous: string | null; revision: number }> {
  return expectOk(await http(base, 'POST', kvPath(key, '/cas'), { json: { expected, value } })) as { succeeded: boolean; previous: string | null; revision: number };
}

async function get(base: string, key: string, consistency?: 'serializable'): Promise<Record<string, unknown> | null> {
  const reply = await http(base, 'GET', kvPath(key) + (consistency ? `?consistency=${consistency}` : ''));
  if (reply.status === 404) {
    expect(errorCode(reply), reply.text).toBe('key_not_found');
    return null;
  }
  return expectOk(reply);
}

async function revisionNow(base: string): Promise<number> {
  const r = expectOk(await http(base, 'GET', '/v1/kv?prefix=&limit=1'));
  return r['revision'] as number;
}

describe('single-key writes', () => {
  it('put returns the previous value; get returns the record with version and revisions', async () => {
    const base = await leaderUrl();
    const first = await put(base, 'put/k', 'v1');
    expect(first.previous).toBeNull();
    expect(first.revision).toBeGreaterThan(1);
    expect(await get(base, 'put/k')).toEqual({ key: 'put/k', value: 'v1', version: 1, createRevision: first.revision, modRevision: first.revision });

    const second = await put(base, 'put/k', 'v2');
    expect(second).toEqual({ revision: first.revision + 1, previous: 'v1' });
    expect(await get(base, 'put/k')).toEqual({ key: 'put/k', value: 'v2', version: 2, createRevision: first.revision, modRevision: second.revision });

    // An empty value is a value, not an absent key.
    const third = await put(base, 'put/k', '');
    expect(third.previous).toBe('v2');
    expect((await get(base, 'put/k'))?.['value']).toBe('');
    expect((await put(base, 'put/k', 'v4')).previous).toBe('');
  });

  it('CAS: expected null creates only an absent key; previous is always the value before', async () => {
    const base = await leaderUrl();
    const created = await cas(base, 'cas/k', null, 'a');
    expect(created.succeeded).toBe(true);
    expect(created.previous).toBeNull();
    expect(await get(base, 'cas/k')).toMatchObject({ value: 'a', version: 1, createRevision: created.revision, modRevision: created.revision });

    // expected null on a present key fails and reports the current value; nothing changes.
    const again = await cas(base, 'cas/k', null, 'b');
    expect(again).toEqual({ succeeded: false, previous: 'a', revision: created.revision });
    expect(await get(base, 'cas/k')).toMatchObject({ value: 'a', version: 1, modRevision: created.revision });

    // A matching expected value swaps.
    const swapped = await cas(base, 'cas/k', 'a', 'b');
    expect(swapped).toEqual({ succeeded: true, previous: 'a', revision: created.revision + 1 });
    expect(await get(base, 'cas/k')).toMatchObject({ value: 'b', version: 2, createRevision: created.revision, modRevision: swapped.revision });

    // A mismatch does not swap, reports the current value and keeps the revision.
    const mismatch = await cas(base, 'cas/k', 'a', 'c');
    expect(mismatch).toEqual({ succeeded: false, previous: 'b', revision: swapped.revision });
    expect((await get(base, 'cas/k'))?.['value']).toBe('b');

    // On an absent key a string expectation fails with previous null.
    const absent = await cas(base, 'cas/absent', 'x', 'y');
    expect(absent.succeeded).toBe(false);
    expect(absent.previous).toBeNull();
    expect(await get(base, 'cas/absent')).toBeNull();
  });

  it('delete returns deleted and previous; a deleted key can be created again from version 1', async () => {
    const base = await leaderUrl();
    const p = await put(base, 'del/k', 'gone soon');
    const del = expectOk(await http(base, 'DELETE', kvPath('del/k')));
    expect(del).toEqual({ deleted: true, previous: 'gone soon', revision: p.revision + 1 });
    expect(await get(base, 'del/k')).toBeNull();

    const rev = await revisionNow(base);
    const again = expectOk(await http(base, 'DELETE', kvPath('del/k')));
    expect(again).toEqual({ deleted: false, previous: null, revision: rev });
    expect(await revisionNow(base)).toBe(rev);

    const recreated = await cas(base, 'del/k', null, 'back');
    expect(recreated.succeeded).toBe(true);
    expect(await get(base, 'del/k')).toMatchObject({ value: 'back', version: 1, createRevision: recreated.revision });
  });

  it('GET of an absent key is 404 key_not_found with the contract error body', async () => {
    for (const base of tc.endpoints) {
      const reply = await http(base, 'GET', kvPath('no/such/key'));
      expect(reply.status).toBe(404);
      expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
      const body = obj(reply);
      expect(Object.keys(body)).toEqual(['error']);
      const err = body['error'] as Record<string, unknown>;
      expect(err['code']).toBe('key_not_found');
      expect(typeof err['message']).toBe('string');
      expect((err['message'] as string).length).toBeGreaterThan(0);
    }
  });
});

describe('range', () => {
  it('scans a prefix in key byte order, with limit, after and more', async () => {
    const base = await leaderUrl();
    // Byte order: upper case before lower case, multi-byte UTF-8 last.
    const keys = ['rng/b', 'rng/a', 'rng/B', 'rng/é', 'rng/c/d', 'rng/c', 'rng/d'];
    for (const k of keys) await put(base, k, `value of ${k}`);
    await put(base, 'rng', 'not under the prefix');
    await put(base, 'rnh/x', 'not under the prefix');
    const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

    const all = expectOk(await http(base, 'GET', '/v1/kv?prefix=rng%2F'));
    const kvs = all['kvs'] as Record<string, unknown>[];
    expect(kvs.map((kv) => kv['key'])).toEqual(sorted);
    expect(all['more']).toBe(false);
    expect(kvs[0]).toMatchObject({ key: sorted[0], value: `value of ${sorted[0]}`, version: 1 });
    expect(typeof all['revision']).toBe('number');

    // Paging with limit and after visits every key once, in order; `more` is false only on the last page.
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const q = new URLSearchParams({ prefix: 'rng/', limit: '3' });
      if (after !== undefined) q.set('after', after);
      const r = expectOk(await http(base, 'GET', `/v1/kv?${q.toString()}`));
      const pageKeys = (r['kvs'] as { key: string }[]).map((kv) => kv.key);
      seen.push(...pageKeys);
      const expectMore = seen.length < sorted.length;
      expect(r['more'], `page ${page}: ${pageKeys.join(',')}`).toBe(expectMore);
      if (!expectMore) break;
      after = pageKeys[pageKeys.length - 1];
    }
    expect(seen).toEqual(sorted);

    const exact = expectOk(await http(base, 'GET', `/v1/kv?prefix=rng%2F&limit=${sorted.length}`));
    expect(exact['more']).toBe(false);
    const past = expectOk(await http(base, 'GET', `/v1/kv?prefix=rng%2F&after=${encodeURIComponent(sorted[sorted.length - 1] as string)}`));
    expect(past['kvs']).toEqual([]);
    expect(past['more']).toBe(false);
    const none = expectOk(await http(base, 'GET', '/v1/kv?prefix=zzz-nothing%2F'));
    expect(none).toMatchObject({ kvs: [], more: false });

    // Every node answers the same scan (linearizable by default).
    for (const other of tc.endpoints) {
      const r = expectOk(await http(other, 'GET', '/v1/kv?prefix=rng%2F'));
      expect((r['kvs'] as { key: string }[]).map((kv) => kv.key)).toEqual(sorted);
    }
  });
});

describe('txn', () => {
  it('compares value, version, createRevision and modRevision and runs the matching branch atomically', async () => {
    const base = await leaderUrl();
    await put(base, 'txn/a', '1');
    await put(base, 'txn/a', '2');
    await put(base, 'txn/b', 'bee');
    const a = (await get(base, 'txn/a')) as { version: number; createRevision: number; modRevision: number };
    expect(a.version).toBe(2);

    const before = await revisionNow(base);
    const ok = expectOk(
      await http(base, 'POST', '/v1/txn', {
        json: {
          compare: [
            { key: 'txn/a', target: 'value', op: '=', value: '2' },
            { key: 'txn/a', target: 'version', op: '=', value: 2 },
            { key: 'txn/a', target: 'createRevision', op: '=', value: a.createRevision },
            { key: 'txn/a', target: 'modRevision', op: '=', value: a.modRevision },
            { key: 'txn/a', target: 'modRevision', op: '<', value: before + 1 },
            { key: 'txn/b', target: 'value', op: '!=', value: 'wasp' },
            { key: 'txn/b', target: 'value', op: '>', value: 'bea' },
            { key: 'txn/missing', target: 'version', op: '=', value: 0 },
            { key: 'txn/missing', target: 'createRevision', op: '=', value: 0 },
          ],
          success: [
            { type: 'put', key: 'txn/a', value: '3' },
            { type: 'put', key: 'txn/c', value: 'new' },
            { type: 'delete', key: 'txn/b' },
            { type: 'get', key: 'txn/b' },
          ],
          failure: [{ type: 'put', key: 'txn/failure-ran', value: 'yes' }],
        },
      }),
    );
    expect(ok['succeeded']).toBe(true);
    // One revision for the whole transaction.
    expect(ok['revision']).toBe(before + 1);
    const results = ok['results'] as Record<string, unknown>[];
    expect(results).toHaveLength(4);
    expect(results[0]).toMatchObject({ type: 'put', previous: '2', revision: before + 1 });
    expect(results[1]).toMatchObject({ type: 'put', previous: null, revision: before + 1 });
    expect(results[2]).toMatchObject({ type: 'delete', deleted: true, previous: 'bee' });
    expect(results[3]).toMatchObject({ type: 'get', kv: null });
    expect(await get(base, 'txn/a')).toMatchObject({ value: '3', version: 3, modRevision: before + 1 });
    expect(await get(base, 'txn/c')).toMatchObject({ value: 'new', version: 1, createRevision: before + 1 });
    expect(await get(base, 'txn/b')).toBeNull();
    expect(await get(base, 'txn/failure-ran')).toBeNull();

    // Any compare that fails runs the failure branch; the success branch writes nothing.
    for (const failing of [
      { key: 'txn/a', target: 'value', op: '=', value: '2' },
      { key: 'txn/a', target: 'version', op: '>', value: 3 },
      { key: 'txn/a', target: 'createRevision', op: '!=', value: a.createRevision },
      { key: 'txn/a', target: 'modRevision', op: '<', value: before + 1 },
      { key: 'txn/missing', target: 'value', op: '!=', value: 'anything' },
    ]) {
      const rev = await revisionNow(base);
      const no = expectOk(
        await http(base, 'POST', '/v1/txn', {
          json: {
            compare: [{ key: 'txn/c', target: 'value', op: '=', value: 'new' }, failing],
            success: [{ type: 'put', key: 'txn/should-not-exist', value: 'x' }],
            failure: [
              { type: 'get', key: 'txn/a' },
              { type: 'range', prefix: 'txn/', limit: 1 },
            ],
          },
        }),
      );
      expect(no['succeeded'], JSON.stringify(failing)).toBe(false);
      expect(no['revision'], 'a read-only branch keeps the revision').toBe(rev);
      const res = no['results'] as Record<string, unknown>[];
      expect((res[0]?.['kv'] as Record<string, unknown>)['value']).toBe('3');
      expect(res[1]).toMatchObject({ type: 'range', more: true });
      expect((res[1]?.['kvs'] as { key: string }[]).map((kv) => kv.key)).toEqual(['txn/a']);
      expect(await get(base, 'txn/should-not-exist')).toBeNull();
    }
  });
});

describe('routing and consistency', () => {
  it('writes sent to a follower are forwarded to the leader and succeed', async () => {
    const base = await leaderUrl();
    for (const f of await followerUrls()) {
      const key = `fwd/${f.slice(-5)}`;
      const p = await put(f, key, 'via follower');
      expect(p.previous).toBeNull();
      expect((await cas(f, key, 'via follower', 'cas via follower')).succeeded).toBe(true);
      const t = expectOk(
        await http(f, 'POST', '/v1/txn', {
          json: { compare: [{ key, target: 'value', op: '=', value: 'cas via follower' }], success: [{ type: 'put', key: `${key}/txn`, value: 't' }] },
        }),
      );
      expect(t['succeeded']).toBe(true);
      expect(await get(base, key)).toMatchObject({ value: 'cas via follower', version: 2 });
      expect(await get(base, `${key}/txn`)).toMatchObject({ value: 't' });
      expect(expectOk(await http(f, 'DELETE', kvPath(key)))).toMatchObject({ deleted: true, previous: 'cas via follower' });
      expect(await get(base, key)).toBeNull();
      // A client's own x-forwarded-by (not naming a member) does not stop the forward.
      const spoofed = await http(f, 'PUT', kvPath(`${key}/spoof`), { json: { value: 's' }, headers: { 'x-forwarded-by': 'some-proxy' } });
      expect(spoofed.status).toBe(200);
    }
  });

  it('a linearizable get on any node sees an acknowledged write at once; a serializable one eventually', async () => {
    const base = await leaderUrl();
    for (let i = 0; i < 5; i++) {
      await put(base, 'lin/k', `v${i}`);
      // Acknowledged, so every linearizable read that starts now must see it, on every node.
      for (const url of tc.endpoints) expect((await get(url, 'lin/k'))?.['value'], url).toBe(`v${i}`);
    }
    for (const f of await followerUrls()) {
      await waitFor(`serializable read on ${f} to catch up`, 5_000, async () => (await get(f, 'lin/k', 'serializable'))?.['value'] === 'v4');
    }
  });

  it('Request-Id: a retried write returns the original result and is applied once', async () => {
    const base = await leaderUrl();
    const [follower] = await followerUrls();
    const session = `contract-${process.pid}-${Date.now()}`;

    const putOnce = (url: string): Promise<HttpReply> =>
      http(url, 'PUT', kvPath('rid/put'), { json: { value: 'once' }, headers: { 'request-id': `${session}-put:1` } });
    const first = expectOk(await putOnce(base));
    expect(first['previous']).toBeNull();
    const retry = expectOk(await putOnce(base));
    expect(retry).toEqual({ revision: first['revision'], previous: null });
    // Applied once: still version 1 at the first revision, and the store revision did not move.
    expect(await get(base, 'rid/put')).toMatchObject({ value: 'once', version: 1, modRevision: first['revision'] });
    expect(await revisionNow(base)).toBe(first['revision']);

    // A CAS shows it plainly: applying it twice would fail the second time.
    await put(base, 'rid/cas', 'a');
    const casOnce = (url: string, seq: number, expected: string, value: string): Promise<HttpReply> =>
      http(url, 'POST', kvPath('rid/cas', '/cas'), { json: { expected, value }, headers: { 'request-id': `${session}-cas:${seq}` } });
    const swapped = expectOk(await casOnce(base, 1, 'a', 'b'));
    expect(swapped).toMatchObject({ succeeded: true, previous: 'a' });
    // The retry, even through a follower, gets the original answer, not "succeeded: false, previous: b".
    const again = expectOk(await casOnce(follower ?? base, 1, 'a', 'b'));
    expect(again).toEqual(swapped);
    expect(await get(base, 'rid/cas')).toMatchObject({ value: 'b', version: 2, modRevision: swapped['revision'] });

    // The next sequence number is a new write; an older one is refused, not applied.
    expect(expectOk(await casOnce(base, 2, 'b', 'c'))).toMatchObject({ succeeded: true, previous: 'b' });
    const stale = await casOnce(base, 1, 'a', 'b');
    expect(stale.status, stale.text).toBe(409);
    expect(errorCode(stale)).toBe('request_id_stale');
    expect(await get(base, 'rid/cas')).toMatchObject({ value: 'c', version: 3 });
  });

  it('a leader cut off from both followers serves serializable reads but never a linearizable one', async () => {
    const { leader, followers } = await tc.followers();
    const base = tc.url(leader);
    const p = await put(base, 'iso/k', 'last');
    for (const f of followers) await tc.kill9(f);
    try {
      // The local replica still answers serializable reads, with what it has.
      expect((await get(base, 'iso/k', 'serializable'))?.['value']).toBe('last');
      // A linearizable read needs a quorum: it must fail (503 no_leader or 504 timeout), never answer.
      const lin = await http(base, 'GET', kvPath('iso/k'), { timeoutMs: 15_000 });
      expect([503, 504], lin.text).toContain(lin.status);
      expect(errorCode(lin), lin.text).toMatch(/^(no_leader|request_timeout)$/);
      // A write cannot commit either.
      const w = await http(base, 'PUT', kvPath('iso/k'), { json: { value: 'lost?' }, timeoutMs: 15_000 });
      expect([503, 504], w.text).toContain(w.status);
    } finally {
      for (const f of followers) await tc.restart(f);
    }
    const newLeader = await tc.leader();
    const value = (await get(tc.url(newLeader), 'iso/k'))?.['value'];
    // The write above got no quorum when it was tried; it may still commit later (its outcome was unknown).
    expect(['last', 'lost?']).toContain(value);
    expect(p.previous).toBeNull();
  });
});
