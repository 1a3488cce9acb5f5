/**
 * Goal: StoreClient's HTTP layer (lib/http-client.ts since fetch left the
 * hot path) keeps the contract the store relies on, checked against a fake
 * node:http store on 127.0.0.1 with no cluster: a write carries one
 * Request-Id for all its attempts (exactly-once), an error body becomes a
 * StoreError with the store's code and status, a node that does not answer in
 * time or refuses the connection is `unavailable` and retried on the next
 * endpoint, after close() calls fail at once with `client_closed`, and
 * concurrent calls are pipelined on a few connections, except those the
 * store could apply twice.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { PIPELINED } from '../../lib/http-client.js';
import { StoreClient, StoreError } from '../../store/client/index.js';
import { closedPort } from '../support/ports.js';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly requestId: string | undefined;
  readonly body: string;
}

let server: http.Server;
let base: string;
let seen: Seen[] = [];
/** How the next requests are answered ('held': 30 ms late, so concurrent calls pile up). */
let mode: 'ok' | 'first-slow' | 'conflict' | 'held' = 'ok';
/** The connections requests arrived on since the last clear, and the most requests one had unanswered at once, of all and of leader transfers. */
const sockets = new Set<object>();
const maxInFlight = { all: 0, transfers: 0 };
const inFlight = new WeakMap<object, { all: number; transfers: number }>();

/** Counts the request in its connection's in-flight numbers until its answer is done. */
function track(req: http.IncomingMessage, res: http.ServerResponse): void {
  sockets.add(req.socket);
  const n = inFlight.get(req.socket) ?? { all: 0, transfers: 0 };
  inFlight.set(req.socket, n);
  const transfer = req.url === '/v1/leader/transfer' ? 1 : 0;
  n.all++;
  n.transfers += transfer;
  maxInFlight.all = Math.max(maxInFlight.all, n.all);
  maxInFlight.transfers = Math.max(maxInFlight.transfers, n.transfers);
  res.on('close', () => {
    n.all--;
    n.transfers -= transfer;
  });
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    track(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rid = req.headers['request-id'];
      seen.push({ method: req.method ?? '', url: req.url ?? '', requestId: typeof rid === 'string' ? rid : undefined, body: Buffer.concat(chunks).toString('utf8') });
      const reply = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.url === '/v1/status') return reply(200, { leaderId: null, members: [], revision: 1 });
      if (mode === 'conflict') return reply(409, { error: { code: 'txn_conflict', message: 'no', key: 'k' } });
      if (mode === 'held') return void setTimeout(() => reply(200, { revision: 7, previous: null, leaderId: 'n1' }), 30).unref();
      // The first attempt gets no answer in time; the retry is answered.
      if (mode === 'first-slow' && seen.filter((s) => s.url !== '/v1/status').length === 1) return void setTimeout(() => reply(200, { revision: 1, previous: null }), 1_000).unref();
      reply(200, { revision: 7, previous: null });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  mode = 'ok';
});

it('a write sends its body and a Request-Id, and the retry after a timeout reuses it', async () => {
  mode = 'first-slow';
  const client = new StoreClient({ endpoints: [base], requestTimeoutMs: 200, clientId: 'c1' });
  try {
    expect(await client.put('a/b', 'v')).toEqual({ revision: 7, previous: null });
    const writes = seen.filter((s) => s.method === 'PUT');
    expect(writes.length).toBe(2);
    expect(writes[0]?.url).toBe('/v1/kv/a%2Fb');
    expect(JSON.parse(writes[0]?.body ?? '')).toEqual({ value: 'v' });
    expect(writes[0]?.requestId).toMatch(/^c1\.\d+:1$/);
    expect(writes[1]?.requestId).toBe(writes[0]?.requestId);
  } finally {
    client.close();
  }
});

it('concurrent writes and reads share a few pipelined connections; a leader transfer is never pipelined', async () => {
  mode = 'held';
  const client = new StoreClient({ endpoints: [base], clientId: 'c2' });
  try {
    maxInFlight.all = 0;
    sockets.clear();
    const calls = [...Array.from({ length: 32 }, (_, i) => client.put(`k${i}`, 'v')), ...Array.from({ length: 16 }, (_, i) => client.get(`k${i}`))];
    expect(await Promise.all(calls)).toHaveLength(48);
    expect(sockets.size).toBeLessThanOrEqual(PIPELINED.maxSocketsPerHost);
    expect(maxInFlight.all).toBeGreaterThan(1);
    // Sent twice it could apply twice: each waits for its connection to have nothing else in flight.
    await Promise.all(Array.from({ length: 4 }, (_, i) => client.transferLeader(`n${i}`)));
    expect(maxInFlight.transfers).toBe(1);
  } finally {
    client.close();
  }
});

it('an error answer becomes a StoreError with the store code, status and details', async () => {
  mode = 'conflict';
  const client = new StoreClient({ endpoints: [base] });
  try {
    const e = await client.put('k', 'v').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(StoreError);
    expect(e).toMatchObject({ code: 'txn_conflict', status: 409, details: { key: 'k' } });
  } finally {
    client.close();
  }
});

it('a refused connection is unavailable and the call moves to the next endpoint', async () => {
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const client = new StoreClient({ endpoints: [dead, base] });
  try {
    expect(await client.get('k')).toEqual({ revision: 7, previous: null });
  } finally {
    client.close();
  }
  const only = new StoreClient({ endpoints: [dead], deadlineMs: 300 });
  try {
    const e = await only.get('k').catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'unavailable', status: 503 });
    expect((e as Error).message).toMatch(/did not answer/);
  } finally {
    only.close();
  }
});

it('after close() calls fail at once with client_closed instead of retrying to the deadline', async () => {
  const client = new StoreClient({ endpoints: [base], deadlineMs: 10_000 });
  await client.get('k');
  client.close();
  const started = Date.now();
  await expect(client.get('k')).rejects.toMatchObject({ code: 'client_closed' });
  expect(Date.now() - started).toBeLessThan(1_000);
});

it('refuses endpoints that are not http:// or https://', () => {
  expect(() => new StoreClient({ endpoints: ['ftp://127.0.0.1:2379'] })).toThrow(/http:\/\/host:port or https:\/\//);
  expect(() => new StoreClient({ endpoints: ['127.0.0.1:2379'] })).toThrow(/http:\/\/host:port or https:\/\//);
  expect(() => new StoreClient({ endpoints: ['https://127.0.0.1:2379'] }).close()).not.toThrow();
});
