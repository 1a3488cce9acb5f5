/**
 * Goal: no malformed request harms a service. Per service, a seeded fuzz
 * (fuzz-cases.ts) over every route of its document or router: broken JSON,
 * wrong types, huge and deep bodies, odd content types, encodings, bytes,
 * methods and paths, each answered below 500 with no stack trace or path in
 * the body; the service still serves, and nothing was written. Then slow
 * writers (headers or body trickled, then stalled) are cut by the server's
 * timeouts while others are served.
 *
 * `npm test` sends about 500 requests per service over plain HTTP;
 * `npm run fuzz` 10,000 (RAFT2PC_FUZZ_REQUESTS) over HTTPS with dev
 * certificates (RAFT2PC_FUZZ_TLS=1). The seed is printed;
 * RAFT2PC_FUZZ_SEED replays it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { fuzzCase, type FuzzCase } from './fuzz-cases.js';
import { httpsFixture, leaksInternals, PLAIN, SERVICES, stillServing, TEST_LIMITS, type FixtureTls, type ServiceUnderTest } from './support.js';

/** Ports 29550-29599 are this file's, 10 for each service. */
const BASE_PORT = 29_550;
const PORTS_PER_SERVICE = 10;
const REQUESTS = Number(process.env['RAFT2PC_FUZZ_REQUESTS'] ?? 500);
const SEED = Number(process.env['RAFT2PC_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 15_000;
const SLOW_WRITERS = 4;
const OVER_TLS = process.env['RAFT2PC_FUZZ_TLS'] === '1';

console.log(`security fuzz: seed ${SEED} (RAFT2PC_FUZZ_SEED=${SEED} replays it), ${REQUESTS} requests per service over ${OVER_TLS ? 'HTTPS' : 'HTTP'}`);

let certDir: string | undefined;
let fixtureTls: FixtureTls = PLAIN;
beforeAll(async () => {
  if (!OVER_TLS) return;
  certDir = mkdtempSync(join(tmpdir(), 'sec-fuzz-certs-'));
  fixtureTls = await httpsFixture(certDir);
});
afterAll(() => {
  if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true });
});

interface Outcome {
  readonly status: number;
  readonly text: string;
  readonly error?: string;
}

function send(url: string, c: FuzzCase, agent: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const headers = { ...c.headers, ...(c.body === undefined ? {} : { 'content-length': String(c.body.length) }) };
    const req = (u.protocol === 'https:' ? https : http).request({ host: u.hostname, port: u.port, method: c.method, path: c.path, headers, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => resolve({ status: 0, text: '', error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', (e) => resolve({ status: 0, text: '', error: e.message }));
    req.end(c.body);
  });
}

/** Runs `count` cases, CONCURRENCY at a time; returns the failures described. */
async function fuzz(s: ServiceUnderTest, seed: number, count: number): Promise<string[]> {
  const r = new SeededRandom(seed);
  const routes = s.routes.filter((x) => !x.stream);
  const cases = Array.from({ length: count }, () => fuzzCase(r, routes[r.int(routes.length)] as (typeof routes)[number], s.maxBodyBytes));
  const agent = s.url.startsWith('https:') ? new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ...s.clientTls }) : new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i] as FuzzCase;
      const o = await send(s.url, c, agent);
      // A refused huge body may reset the connection before its answer is read: refused all the same.
      const reset = o.status === 0 && c.kind === 'huge' && /ECONNRESET|EPIPE|socket hang up/.test(o.error ?? '');
      if (!reset && (o.status === 0 || o.status >= 500 || leaksInternals(o.text))) failures.push(`#${i} ${c.kind} ${c.method} ${c.path.slice(0, 80)} -> ${o.status} ${o.error ?? o.text.slice(0, 200)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
  return failures;
}

/** Opens a connection, sends `prefix`, stalls; resolves with what the server sent before it closed, and when. */
function slowWriter(s: ServiceUnderTest, prefix: string): Promise<{ closedAfterMs: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(s.url);
    const started = Date.now();
    const write = (): void => void socket.write(prefix);
    const socket = u.protocol === 'https:' ? tls.connect({ port: Number(u.port), host: u.hostname, servername: 'localhost', ...s.clientTls }, write) : net.connect(Number(u.port), u.hostname, write);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('close', () => resolve({ closedAfterMs: Date.now() - started, text }));
    socket.on('error', () => undefined);
    // A server that never cuts it: fail rather than wait forever.
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the server kept a stalled connection open'));
    }, 15_000).unref();
  });
}

describe.each(SERVICES.map(([name, start], i) => [name, start, BASE_PORT + PORTS_PER_SERVICE * i] as const))('%s', (name, start, first) => {
  let s: ServiceUnderTest;
  beforeAll(async () => {
    s = await start({ first, count: PORTS_PER_SERVICE }, fixtureTls);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it(`answers ${REQUESTS} malformed requests below 500, leaking nothing, writing nothing`, { timeout: 60_000 + REQUESTS * 20 }, async () => {
    const before = await s.fingerprint();
    const failures = await fuzz(s, SEED + first, REQUESTS);
    expect(failures.slice(0, 10), `${failures.length} failures (seed ${SEED}, service ${name})`).toEqual([]);
    await stillServing(s);
    expect(await s.fingerprint()).toEqual(before);
  });

  it('cuts slow writers by its timeouts while serving others', { timeout: 30_000 }, async () => {
    const route = s.routes.find((r) => r.method === 'POST') ?? s.routes[0];
    if (route === undefined) throw new Error('no route');
    const head = `${route.method} ${route.path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n`;
    const stalled = Array.from({ length: SLOW_WRITERS }, (_x, i) => slowWriter(s, i % 2 === 0 ? head : `${head}content-length: 1000\r\n\r\n{"a":`));
    await stillServing(s);
    const bound = (TEST_LIMITS.requestTimeoutMs ?? 0) + 3 * (TEST_LIMITS.timeoutCheckIntervalMs ?? 0) + 1_000;
    for (const w of await Promise.all(stalled)) {
      expect(w.closedAfterMs).toBeLessThan(bound);
      expect(leaksInternals(w.text)).toBe(false);
    }
  });
});
