/**
 * Goal: the undici client that replaced fetch on the hot paths
 * (lib/http-client.ts) answers as fetch did for the callers (status and body
 * of any answer, 4xx included), fails with a typed error on every way a
 * request can get no complete answer (refused, timeout, oversize body, other
 * schemes, closed client), and really keeps connections alive: many
 * sequential requests share one socket, and an idle pooled socket does not
 * keep a process alive; with `pipelining`, resendable requests share a few
 * connections and no other request is ever pipelined. Against a real
 * node:http server on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient, HttpClientError } from '../../lib/http-client.js';
import { closedPort } from '../support/ports.js';

let server: http.Server;
let base: string;
/** TCP connections the server accepted, for the keep-alive checks. */
let connections = 0;
/** The most requests one connection had unanswered at once (more than 1: pipelined). */
let maxInFlightPerSocket = 0;
/** Requests per path and query, as the server received them (a resent request counts twice). */
const received = new Map<string, number>();
const inFlight = new WeakMap<object, number>();
/** The connections requests arrived on since the last clear. */
const sockets = new Set<object>();

beforeAll(async () => {
  server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const n = (inFlight.get(req.socket) ?? 0) + 1;
    inFlight.set(req.socket, n);
    maxInFlightPerSocket = Math.max(maxInFlightPerSocket, n);
    sockets.add(req.socket);
    res.on('close', () => inFlight.set(req.socket, (inFlight.get(req.socket) ?? 1) - 1));
    received.set(req.url ?? '', (received.get(req.url ?? '') ?? 0) + 1);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/echo') {
        const text = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      } else if (url.pathname === '/missing') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"key_not_found"}}');
      } else if (url.pathname === '/break') {
        // No answer: the connection drops under the request.
        req.socket.destroy();
      } else if (url.pathname === '/slow') {
        setTimeout(() => res.end('late'), Number(url.searchParams.get('ms'))).unref();
      } else if (url.pathname === '/cut') {
        // Half the declared body, then the connection drops.
        res.writeHead(200, { 'content-length': 100 });
        res.write('x'.repeat(50), () => res.destroy());
      } else if (url.pathname === '/big') {
        const bytes = Number(url.searchParams.get('bytes'));
        // Without content-length the size is only known while reading: chunked.
        if (url.searchParams.get('chunked') === '1') {
          res.writeHead(200);
          for (let sent = 0; sent < bytes; sent += 256) res.write('x'.repeat(Math.min(256, bytes - sent)));
          res.end();
        } else {
          res.writeHead(200, { 'content-length': bytes }).end('x'.repeat(bytes));
        }
      } else {
        res.writeHead(500).end();
      }
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const clients: HttpClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

function client(opts: ConstructorParameters<typeof HttpClient>[0] = {}): HttpClient {
  const c = new HttpClient(opts);
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<HttpClientError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(HttpClientError);
  return e as HttpClientError;
}

describe('answers', () => {
  it('sends method, path, query, headers and body, and returns status and text', async () => {
    const res = await client().request({ method: 'POST', url: `${base}/echo?a=1&b=x%2Fy`, headers: { 'content-type': 'application/json', 'request-id': 'c.0:7' }, body: '{"v":"é"}' });
    expect(res.status).toBe(200);
    const echoed = JSON.parse(res.text) as { method: string; path: string; headers: Record<string, string>; body: string };
    expect(echoed.method).toBe('POST');
    expect(echoed.path).toBe('/echo?a=1&b=x%2Fy');
    expect(echoed.headers['request-id']).toBe('c.0:7');
    expect(echoed.headers['content-length']).toBe(String(Buffer.byteLength('{"v":"é"}')));
    expect(echoed.body).toBe('{"v":"é"}');
  });

  it('passes a 4xx answer through with its body (the caller decides what it means)', async () => {
    const res = await client().request({ method: 'GET', url: `${base}/missing` });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toEqual({ error: { code: 'key_not_found' } });
  });
});

describe('failures', () => {
  it('times out a request with no answer, and frees its socket', async () => {
    const before = connections;
    const c = client({ requestTimeoutMs: 5_000 });
    const started = Date.now();
    const e = await failure(c.request({ method: 'GET', url: `${base}/slow?ms=2000`, timeoutMs: 150 }));
    expect(e.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_500);
    // The timed-out socket was destroyed, so the next request opens a new one
    // (undici may open one spare beside it while the old one closes).
    expect((await c.request({ method: 'GET', url: `${base}/missing` })).status).toBe(404);
    expect(connections - before).toBeGreaterThanOrEqual(2);
    expect(connections - before).toBeLessThanOrEqual(3);
  });

  it('uses the client-wide timeout when the request gives none', async () => {
    const e = await failure(client({ requestTimeoutMs: 100 }).request({ method: 'GET', url: `${base}/slow?ms=2000` }));
    expect(e.code).toBe('timeout');
  });

  it('refuses a body past the limit, declared or chunked', async () => {
    const c = client({ maxResponseBytes: 1_024 });
    expect((await c.request({ method: 'GET', url: `${base}/big?bytes=1024` })).text).toHaveLength(1_024);
    expect((await failure(c.request({ method: 'GET', url: `${base}/big?bytes=1025` }))).code).toBe('response_too_large');
    expect((await failure(c.request({ method: 'GET', url: `${base}/big?bytes=100000&chunked=1` }))).code).toBe('response_too_large');
    // Still usable afterwards.
    expect((await c.request({ method: 'GET', url: `${base}/missing` })).status).toBe(404);
  });

  it('reports a refused connection as a connection error', async () => {
    const port = await closedPort();
    const e = await failure(client().request({ method: 'GET', url: `http://127.0.0.1:${port}/x` }));
    expect(e.code).toBe('connection');
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('reports an answer cut off mid-body as a connection error', async () => {
    const e = await failure(client().request({ method: 'GET', url: `${base}/cut` }));
    expect(e.code).toBe('connection');
  });

  it('fails requests in flight when the client is closed', async () => {
    const c = client();
    const pending = c.request({ method: 'GET', url: `${base}/slow?ms=2000` });
    setTimeout(() => c.close(), 50);
    expect((await failure(pending)).code).toBe('connection');
  });

  it('refuses other schemes and non-URLs clearly', async () => {
    const c = client();
    const ftp = await failure(c.request({ method: 'GET', url: 'ftp://127.0.0.1:1/x' }));
    expect(ftp.code).toBe('invalid_url');
    expect(ftp.message).toMatch(/only http:\/\/ and https:\/\//);
    expect((await failure(c.request({ method: 'GET', url: 'not a url' }))).code).toBe('invalid_url');
  });

  it('refuses a bad method or header value as invalid_request, without waiting out its timeout', async () => {
    const c = client({ requestTimeoutMs: 60_000 });
    const started = Date.now();
    expect((await failure(c.request({ method: 'BAD METHOD', url: `${base}/echo` }))).code).toBe('invalid_request');
    expect((await failure(c.request({ method: 'GET', url: `${base}/echo`, headers: { 'x-bad': 'a\r\nb' } }))).code).toBe('invalid_request');
    expect(Date.now() - started).toBeLessThan(5_000);
    // Still usable afterwards.
    expect((await c.request({ method: 'GET', url: `${base}/missing` })).status).toBe(404);
  });

  it('speaks TLS to an https URL (a plain http server fails the handshake: a connection error)', async () => {
    const e = await failure(client().request({ method: 'GET', url: base.replace('http://', 'https://') + '/x' }));
    expect(e.code).toBe('connection');
  });

  it('fails requests after close()', async () => {
    const c = client();
    await c.request({ method: 'GET', url: `${base}/missing` });
    c.close();
    expect((await failure(c.request({ method: 'GET', url: `${base}/missing` }))).code).toBe('closed');
  });

  it('rejects limits that are not positive integers', () => {
    expect(() => new HttpClient({ maxSocketsPerHost: 0 })).toThrow(/maxSocketsPerHost/);
    expect(() => new HttpClient({ requestTimeoutMs: 1.5 })).toThrow(/requestTimeoutMs/);
  });
});

// undici reuses a socket one event-loop turn after its answer (a server that
// said keep-alive may still be closing it), so a request sent at once after
// the previous answer takes a second socket: the bound is twice the requests
// in flight, not one socket per request.
describe('keep-alive', () => {
  it('sends many sequential requests over at most two sockets', async () => {
    const c = client();
    const before = connections;
    for (let i = 0; i < 50; i++) {
      const res = await c.request({ method: 'POST', url: `${base}/echo`, headers: { 'content-type': 'application/json' }, body: `{"i":${i}}` });
      expect(res.status).toBe(200);
    }
    expect(connections - before).toBeGreaterThanOrEqual(1);
    expect(connections - before).toBeLessThanOrEqual(2);
  });

  it('opens no more than twice as many sockets as requests in flight at once', async () => {
    const c = client();
    const before = connections;
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 8 }, () => c.request({ method: 'GET', url: `${base}/missing` })));
    }
    expect(connections - before).toBeGreaterThanOrEqual(8);
    expect(connections - before).toBeLessThanOrEqual(16);
  });

  it('does not keep a process alive with an idle pooled socket', async () => {
    // The server keeps the connection open for 30 s and the client's idle timeout
    // is 60 s; the child must still exit as soon as its work is done.
    const lib = fileURLToPath(new URL('../../lib/http-client.ts', import.meta.url));
    // A refused request (a bad header value) must not leave its 60 s timer behind either.
    const script = `const { HttpClient } = await import(${JSON.stringify(lib)});
      const c = new HttpClient({ idleSocketTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
      const res = await c.request({ method: 'GET', url: ${JSON.stringify(`${base}/missing`)} });
      const bad = await c.request({ method: 'GET', url: ${JSON.stringify(`${base}/missing`)}, headers: { 'x-bad': 'a\\r\\nb' } }).catch((e) => e.code);
      console.log(res.status, bad);`;
    const before = connections;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(out.trim()).toBe('404 invalid_request');
    expect(connections - before).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('pipelining', () => {
  const hold = (c: HttpClient, i: number, r: { method?: string; resendable?: boolean } = {}) =>
    c.request({ method: r.method ?? 'GET', url: `${base}/slow?ms=40&i=${i}`, ...(r.resendable === undefined ? {} : { resendable: r.resendable }) });

  it('sends resendable requests on its few connections, several in flight on each', async () => {
    const c = client({ pipelining: 8, maxSocketsPerHost: 2 });
    maxInFlightPerSocket = 0;
    sockets.clear();
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => hold(c, i, { method: 'POST', resendable: true })));
    expect(answers.map((a) => a.text)).toEqual(Array.from({ length: 16 }, () => 'late'));
    expect(sockets.size).toBe(2);
    expect(maxInFlightPerSocket).toBeGreaterThan(1);
    expect(maxInFlightPerSocket).toBeLessThanOrEqual(8);
  });

  it('never pipelines a request not marked resendable (a POST by default)', async () => {
    const c = client({ pipelining: 8, maxSocketsPerHost: 2 });
    maxInFlightPerSocket = 0;
    await Promise.all(Array.from({ length: 8 }, (_, i) => hold(c, 100 + i, { method: 'POST' })));
    await Promise.all(Array.from({ length: 8 }, (_, i) => hold(c, 200 + i, { method: 'GET', resendable: false })));
    expect(maxInFlightPerSocket).toBe(1);
  });

  it('without pipelining sends one request per connection at a time, resendable or not', async () => {
    const c = client({ maxSocketsPerHost: 2 });
    maxInFlightPerSocket = 0;
    await Promise.all(Array.from({ length: 8 }, (_, i) => hold(c, 300 + i)));
    expect(maxInFlightPerSocket).toBe(1);
  });

  it('a broken connection fails the request at its head and sends the ones behind it again', async () => {
    // Why only resendable requests are pipelined: undici resends what was unanswered behind the failed one.
    const c = client({ pipelining: 4, maxSocketsPerHost: 1 });
    const broken = c.request({ method: 'GET', url: `${base}/break?n=1` });
    const behind = Array.from({ length: 3 }, (_, i) => hold(c, 400 + i));
    expect((await failure(broken)).code).toBe('connection');
    expect((await Promise.all(behind)).map((a) => a.status)).toEqual([200, 200, 200]);
    for (let i = 0; i < 3; i++) expect(received.get(`/slow?ms=40&i=${400 + i}`)).toBeGreaterThanOrEqual(1);
  });

  it('rejects a pipelining depth that is not a positive integer', () => {
    expect(() => new HttpClient({ pipelining: 0 })).toThrow(/pipelining/);
  });
});
