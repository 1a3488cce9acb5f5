/**
 * Goal: on every service, every state-changing route (taken from its
 * OpenAPI document or router, so a new route is covered without an edit
 * here) refuses a body that is not `application/json` with 415
 * `unsupported_media_type`, changes nothing, and leaks nothing; a
 * cross-site browser POST is refused with 403; no CORS header is sent
 * unless configured; over-long URLs get 414 and too many requests in
 * flight get 429 with Retry-After; work nested past the depth limit is
 * refused before it could make JSON.stringify throw.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpGuard } from '../../lib/http-guard.js';
import { inBlock, isStateChangingMethod, leaksInternals, participantService, SERVICES, stillServing, type ServiceUnderTest } from './support.js';

/** Ports 29500-29549 are this file's: 5 for each service, then the guard's and the deep-JSON tests'. */
const BASE_PORT = 29_500;
const PORTS_PER_SERVICE = 5;

/** Types a browser form or a careless client sends; none is JSON. */
const NOT_JSON: readonly (string | undefined)[] = [
  'text/plain',
  'text/plain;charset=UTF-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  'application/jsonx',
  'text/json',
  undefined, // a body with no type at all
];

describe.each(SERVICES.map(([name, start], i) => [name, start, BASE_PORT + PORTS_PER_SERVICE * i] as const))('%s', (_name, start, first) => {
  let s: ServiceUnderTest;
  beforeAll(async () => {
    s = await start({ first, count: PORTS_PER_SERVICE });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('refuses a non-JSON body on every state-changing route with 415, changing nothing', async () => {
    const writes = s.routes.filter((r) => isStateChangingMethod(r.method));
    expect(writes.length).toBeGreaterThan(0);
    const before = await s.fingerprint();
    for (const r of writes) {
      for (const type of NOT_JSON) {
        const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type };
        const res = await fetch(`${s.url}${r.path}`, { method: r.method, headers, body: type === undefined ? new Blob(['{"a":1}']) : '{"a":1}' });
        const text = await res.text();
        expect([res.status, text], `${r.method} ${r.path} as ${type ?? 'no type'}`).toEqual([415, expect.stringContaining('"unsupported_media_type"')]);
        expect(leaksInternals(text)).toBe(false);
      }
    }
    expect(await s.fingerprint()).toEqual(before);
  });

  it('refuses a state-changing call from another origin with 403, and sends no CORS headers', async () => {
    const r = s.routes.find((x) => isStateChangingMethod(x.method));
    if (r === undefined) throw new Error('no state-changing route');
    const before = await s.fingerprint();
    const res = await fetch(`${s.url}${r.path}`, { method: r.method, headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('cross_origin_refused');
    const get = await fetch(`${s.url}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
    expect(await s.fingerprint()).toEqual(before);
  });

  it('answers an over-long URL with 414, over-long headers with 431, and still serves', async () => {
    const res = await fetch(`${s.url}/${'a'.repeat(9_000)}`);
    expect(res.status).toBe(414);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('url_too_long');
    const headers = await fetch(`${s.url}/healthz`, { headers: { 'x-big': 'b'.repeat(20_000) } });
    expect(headers.status).toBe(431);
    await stillServing(s);
  });
});

describe('the bound on requests in flight', () => {
  it('answers 429 too_many_requests with Retry-After past the bound, and admits again once one ends', async () => {
    const guard = new HttpGuard({ ...new HttpGuard().limits, maxConcurrentRequests: 2 });
    const held: http.ServerResponse[] = [];
    const server = http.createServer(guard.listener((_req, res) => void held.push(res)));
    const port = await inBlock({ first: BASE_PORT + 30, count: 10 }, (p) => new Promise<number>((resolve, reject) => server.once('error', reject).listen(p, '127.0.0.1', () => resolve(p))));
    try {
      const url = `http://127.0.0.1:${port}/x`;
      const pending = [fetch(url), fetch(url)];
      await expect.poll(() => held.length, { timeout: 5_000 }).toBe(2);
      const refused = await fetch(url);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('too_many_requests');
      for (const res of held.splice(0)) res.end('{}');
      await Promise.all(pending);
      await expect.poll(() => guard.requestsInFlight, { timeout: 5_000 }).toBe(0);
      const third = fetch(url);
      await expect.poll(() => held.length, { timeout: 5_000 }).toBe(1);
      held[0]?.end('{}');
      expect((await third).status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('CORS, when origins are configured', () => {
  it('answers a configured origin with its headers and a preflight with 204, and no other origin', async () => {
    const guard = new HttpGuard({ ...new HttpGuard().limits, allowedOrigins: ['https://app.example'] });
    const server = http.createServer(guard.listener((_req, res) => void res.end('{}')));
    const port = await inBlock({ first: BASE_PORT + 25, count: 5 }, (p) => new Promise<number>((resolve, reject) => server.once('error', reject).listen(p, '127.0.0.1', () => resolve(p))));
    try {
      const url = `http://127.0.0.1:${port}/x`;
      const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      expect([preflight.status, preflight.headers.get('access-control-allow-origin')]).toEqual([204, 'https://app.example']);
      const post = await fetch(url, { method: 'POST', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body: '{}' });
      expect([post.status, post.headers.get('access-control-allow-origin')]).toEqual([200, 'https://app.example']);
      const other = await fetch(url, { headers: { origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('deep JSON', () => {
  it('refuses otherwise valid work nested past MAX_JSON_DEPTH with 400 json_too_deep, writing nothing', async () => {
    const s = await participantService({ first: BASE_PORT + 40, count: 10 });
    try {
      const before = await s.fingerprint();
      const depth = 50_000;
      const body = `{"txId":"t-deep","work":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const res = await fetch(`${s.url}/2pc/work`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('json_too_deep');
      const shallow = await fetch(`${s.url}/2pc/work`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"txId":"t-ok","work":[[[1]]]}' });
      expect(shallow.status).toBe(200);
      expect(await s.fingerprint()).not.toEqual(before);
    } finally {
      await s.stop();
    }
  });
});
