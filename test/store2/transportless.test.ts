/**
 * Goal: the store API and the store client need nothing of node:http, so the
 * deterministic simulation can run both for real. A 3-node cluster of real
 * StoreNodes on in-memory storage and messages; every request goes through
 * StoreApi.serve (text in, text out), forwards through the injected
 * requester, watches through StoreApi.openWatch into a memory sink, and the
 * real StoreClient talks to it through its injected `http` and
 * `openStream`. Then the watch hub alone (keepalive on injected timers, slow
 * watchers), and the client's deadlines, backoff and jitter on injected
 * timers and randomness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors.js';
import { HttpClientError, type HttpRequest, type HttpRequester } from '../../lib/http-client.js';
import { encodeReply, errorReply } from '../../lib/http.js';
import { SeededRandom } from '../../lib/random.js';
import { sleepWith, type Timers } from '../../lib/timers.js';
import { WatchHub, defaultWatchLimits } from '../../store/api/watch.js';
import { StoreClient, StoreError, type WatchEvent } from '../../store/client/client.js';
import { SseParser } from '../../store/client/sse.js';
import { KvStateMachine } from '../../store/kv/index.js';
import { MemoryCluster, MemorySink } from './support/memory-cluster.js';

/** Events kept for resume, small so a test can outrun the history. */
const HISTORY_EVENTS = 20;

let c: MemoryCluster;
beforeAll(async () => {
  c = await MemoryCluster.start(3, { watchHistoryEvents: HISTORY_EVENTS });
  await c.ready();
});
afterAll(async () => {
  await c?.stop();
});

async function serveJson(id: string, method: string, target: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Readonly<Record<string, string>> }> {
  const api = c.apis.get(id);
  if (!api) throw new Error(`no node ${id}`);
  const res = await api.serve({ method, target, headers: { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  return { status: res.status, json: JSON.parse(res.text) as Record<string, unknown>, headers: res.headers };
}

function errorCode(r: { json: Record<string, unknown> }): unknown {
  return (r.json['error'] as Record<string, unknown> | undefined)?.['code'];
}

describe('StoreApi without sockets', () => {
  it('a follower forwards a write to the leader through the injected requester', async () => {
    const leader = await c.leader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const before = c.served.get(leader)?.length ?? 0;
    const put = await serveJson(follower, 'PUT', '/v1/kv/plain%2Fa', { value: 'v1' }, { 'request-id': 'plain:1' });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    const forwarded = (c.served.get(leader) ?? []).slice(before);
    expect(forwarded.map((r) => [r.method, new URL(r.url).pathname, r.headers?.['x-forwarded-by'], r.headers?.['request-id']])).toEqual([['PUT', '/v1/kv/plain%2Fa', follower, 'plain:1']]);
    const got = await serveJson(follower, 'GET', '/v1/kv/plain%2Fa');
    expect(got.json).toMatchObject({ key: 'plain/a', value: 'v1', version: 1 });
  });

  it('answers the contract errors: codes, statuses, retry-after', async () => {
    const leader = await c.leader();
    expect(errorCode(await serveJson(leader, 'GET', '/v1/kv/missing'))).toBe('key_not_found');
    const r405 = await serveJson(leader, 'PATCH', '/v1/kv/a');
    expect([r405.status, errorCode(r405)]).toEqual([405, 'method_not_allowed']);
    // The path is judged before the body: POST on a plain key is a 404 whatever the body holds.
    const r404 = await serveJson(leader, 'POST', '/v1/kv/a', '{not json');
    expect([r404.status, errorCode(r404)]).toEqual([404, 'not_found']);
    const bad = await serveJson(leader, 'PUT', '/v1/kv/a', '{"value":');
    expect([bad.status, errorCode(bad)]).toEqual([400, 'invalid_json']);
    const big = await serveJson(leader, 'PUT', '/v1/kv/a', { value: 'x'.repeat(3 << 20) });
    expect([big.status, errorCode(big)]).toEqual([413, 'body_too_large']);
    const rid = await serveJson(leader, 'PUT', '/v1/kv/a', { value: 'x' }, { 'request-id': 'a:0' });
    expect([rid.status, errorCode(rid)]).toEqual([400, 'invalid_request_id']);
    expect(errorCode(await serveJson(leader, 'GET', '/v1/kv/%E0%A4%A'))).toBe('invalid_path');
    expect(errorCode(await serveJson(leader, 'GET', '/v1/watch?prefix=a'))).toBe('stream_not_supported');
    const metrics = await c.apis.get(leader)?.serve({ method: 'GET', target: '/metrics' });
    expect(metrics?.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics?.text).toMatch(/^store_raft_is_leader 1$/m);
    const tooMany = encodeReply(errorReply(new AppError('no_leader', 503, 'x', { retryAfterSeconds: 1 })));
    expect(tooMany.headers['retry-after']).toBe('1');
  });

  it('a watch opened into a sink gets the SSE text the client parser reads', async () => {
    const leader = await c.leader();
    const api = c.apis.get(leader);
    if (!api) throw new Error('no api');
    const put = await serveJson(leader, 'PUT', '/v1/kv/sse%2Fone', { value: 'a' });
    const rev = put.json['revision'] as number;
    const sink = new MemorySink();
    api.openWatch({ query: new URLSearchParams({ prefix: 'sse/', fromRevision: String(rev) }), headers: {} }, sink);
    expect(sink.text).toBe(`: watching from revision ${rev}\n\nid: ${rev}\nevent: put\ndata: {"type":"put","key":"sse/one","value":"a","revision":${rev}}\n\n`);
    expect(new SseParser().push(sink.text)).toEqual([{ event: 'put', data: `{"type":"put","key":"sse/one","value":"a","revision":${rev}}`, id: String(rev) }]);
    sink.close();
    // Last-Event-ID resumes after the revision it names.
    const resumed = new MemorySink();
    api.openWatch({ query: new URLSearchParams({ prefix: 'sse/' }), headers: { 'last-event-id': String(rev - 1) } }, resumed);
    expect(resumed.text).toContain(`id: ${rev}\n`);
    resumed.close();
  });
});

describe('StoreApi watch history', () => {
  it('a start older than the history is refused with 410 compacted before the sink is touched', async () => {
    const leader = await c.leader();
    for (let i = 0; i < HISTORY_EVENTS + 5; i++) await serveJson(leader, 'PUT', `/v1/kv/old%2F${i}`, { value: 'x' });
    const sink = new MemorySink();
    let err: unknown;
    try {
      c.apis.get(leader)?.openWatch({ query: new URLSearchParams({ prefix: 'old/', fromRevision: '1' }), headers: {} }, sink);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    const reply = encodeReply(errorReply(err));
    expect(reply.status).toBe(410);
    expect(JSON.parse(reply.text)).toMatchObject({ error: { code: 'compacted' } });
    expect(sink.chunks).toEqual([]);
  });
});

describe('StoreClient on an injected transport', () => {
  let client: StoreClient;
  beforeAll(() => {
    client = new StoreClient({ endpoints: c.endpoints, http: c.requester(), openStream: c.openStream, random: new SeededRandom(5) });
  });
  afterAll(() => client.close());

  it('writes, reads, CAS, txn and leases through any node', async () => {
    expect(client.clientId).toMatch(/^[0-9a-f]{32}$/);
    const put = await client.put('cl/a', '1');
    expect(put.previous).toBeNull();
    expect((await client.get('cl/a'))?.value).toBe('1');
    expect((await client.cas('cl/a', '1', '2')).succeeded).toBe(true);
    const txn = await client.txn([{ key: 'cl/a', target: 'value', op: '=', value: '2' }], [{ type: 'put', key: 'cl/b', value: 'x' }]);
    expect(txn.succeeded).toBe(true);
    expect((await client.range('cl/')).kvs.map((kv) => kv.key)).toEqual(['cl/a', 'cl/b']);
    const lease = await client.grantLease(60_000);
    expect(lease.id).toBeGreaterThan(0);
    expect((await client.keepAlive(lease.id)).id).toBe(lease.id);
    expect((await client.revokeLease(lease.id)).revoked).toBe(true);
    expect((await client.delete('cl/b')).deleted).toBe(true);
  });

  it('watches through openStream, resuming across streams', async () => {
    const ac = new AbortController();
    const start = (await client.put('cw/0', 'start')).revision;
    const seen: WatchEvent[] = [];
    const done = (async () => {
      for await (const ev of client.watch({ prefix: 'cw/' }, { fromRevision: start + 1, signal: ac.signal })) {
        seen.push(ev);
        if (seen.length === 3) ac.abort();
      }
    })();
    for (const k of ['1', '2', '3']) await client.put(`cw/${k}`, k);
    await done;
    expect(seen.map((e) => [e.type, e.key, e.value])).toEqual([
      ['put', 'cw/1', '1'],
      ['put', 'cw/2', '2'],
      ['put', 'cw/3', '3'],
    ]);
  });

  it('a watch from a compacted revision throws StoreError compacted', async () => {
    const it = client.watch({ prefix: 'old/' }, { fromRevision: 1 });
    await expect(it.next()).rejects.toMatchObject({ code: 'compacted', status: 410 });
  });
});

/** Timers that run nothing on their own: `every` callbacks are kept for the test to fire, `sleep` advances the clock at once. */
class StepTimers implements Timers {
  now = 0;
  readonly intervals: (() => void)[] = [];
  readonly sleeps: number[] = [];
  nowMs(): number {
    return 1_700_000_000_000 + this.now;
  }
  monotonicMs(): number {
    return this.now;
  }
  after(delayMs: number, fn: () => void): () => void {
    this.sleeps.push(delayMs);
    this.now += delayMs;
    queueMicrotask(fn);
    return () => {};
  }
  every(_intervalMs: number, fn: () => void): () => void {
    this.intervals.push(fn);
    return () => this.intervals.splice(this.intervals.indexOf(fn), 1);
  }
  soon(fn: () => void): void {
    queueMicrotask(fn);
  }
  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, delayMs, signal);
  }
}

describe('WatchHub on injected timers and sinks', () => {
  function kvWith(puts: number): KvStateMachine {
    const kv = new KvStateMachine();
    for (let i = 1; i <= puts; i++) kv.apply({ type: 'put', key: `w/${i}`, value: 'v'.repeat(100), nowMs: 0 }, i);
    return kv;
  }

  it('keepalive comments go out on the injected timer; close ends every sink and stops the timer', () => {
    const timers = new StepTimers();
    const hub = new WatchHub({ kvState: kvWith(1) }, timers);
    const sink = new MemorySink();
    hub.open({ query: new URLSearchParams({ prefix: 'w/' }), headers: {} }, sink);
    expect(timers.intervals).toHaveLength(1);
    timers.intervals[0]?.();
    expect(sink.chunks.at(-1)).toBe(': keepalive\n\n');
    hub.close();
    expect(sink.ended).toBe(true);
    expect(timers.intervals).toHaveLength(0);
  });

  it('a sink that reports itself full gets a cancelled event and is ended', () => {
    const kv = kvWith(5);
    const hub = new WatchHub({ kvState: kv }, new StepTimers(), { ...defaultWatchLimits, maxBufferedBytes: 200 });
    const sink = new MemorySink(200);
    hub.open({ query: new URLSearchParams({ prefix: 'w/', fromRevision: '1' }), headers: {} }, sink);
    expect(sink.ended).toBe(true);
    expect(hub.size).toBe(0);
    const msgs = new SseParser().push(sink.text);
    expect(msgs.at(-1)?.event).toBe('cancelled');
    expect(JSON.parse(msgs.at(-1)?.data ?? '{}')).toMatchObject({ reason: 'slow_watcher', details: { nextRevision: kv.revision + 1 } });
  });

  it('a closed connection leaves the hub', () => {
    const hub = new WatchHub({ kvState: kvWith(1) }, new StepTimers());
    const sink = new MemorySink();
    hub.open({ query: new URLSearchParams({ key: 'w/1' }), headers: {} }, sink);
    expect(hub.size).toBe(1);
    sink.close();
    expect(hub.size).toBe(0);
    hub.close();
  });
});

describe('StoreClient deadlines, backoff and jitter on injected timers and randomness', () => {
  /** Answers 503 no_leader to /v1/status always and to other calls `failures` times, then 200. */
  function flaky(failures: number): HttpRequester & { readonly calls: HttpRequest[] } {
    const calls: HttpRequest[] = [];
    let closed = false;
    return {
      calls,
      request: async (r) => {
        if (closed) throw new HttpClientError('closed', 'closed');
        if (!r.url.endsWith('/v1/status')) calls.push(r);
        if (r.url.endsWith('/v1/status') || calls.length <= failures) return { status: 503, headers: {}, text: JSON.stringify({ error: { code: 'no_leader', message: 'election' } }) };
        return { status: 200, headers: {}, text: JSON.stringify({ revision: 7, previous: null }) };
      },
      close: () => {
        closed = true;
      },
    };
  }

  it('retries with the same Request-Id; the waits come from the injected timers and random', async () => {
    const timers = new StepTimers();
    const http = flaky(3);
    const client = new StoreClient({ endpoints: ['http://x'], clientId: 'c', http, timers, random: new SeededRandom(9) });
    expect(await client.put('k', 'v')).toEqual({ revision: 7, previous: null });
    const writes = http.calls;
    expect(writes).toHaveLength(4);
    expect(new Set(writes.map((r) => r.headers?.['request-id']))).toEqual(new Set(['c.0:1']));
    const jitter = new SeededRandom(9);
    const expected = [0, 1, 2].map((attempt) => Math.min(500, 20 * 2 ** attempt) * (0.5 + jitter.float() / 2));
    expect(timers.sleeps).toEqual(expected);
    client.close();
    await expect(client.get('k')).rejects.toMatchObject({ code: 'client_closed' });
  });

  it('gives up at the deadline on the injected clock', async () => {
    const timers = new StepTimers();
    const client = new StoreClient({ endpoints: ['http://x'], http: flaky(1_000), timers, random: new SeededRandom(1), deadlineMs: 2_000, maxAttempts: 1_000 });
    await expect(client.get('k')).rejects.toBeInstanceOf(StoreError);
    expect(timers.now).toBeGreaterThanOrEqual(2_000);
    expect(timers.now).toBeLessThan(2_000 + 500);
  });
});
