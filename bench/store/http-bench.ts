/**
 * HTTP micro-benchmark: the justification for the store's hot path on
 * node:http and for the product's client on undici (docs/DECISIONS.md).
 *
 *   npx tsx bench/store/http-bench.ts [--duration-s 5] [--connections 64] [--rounds 3] [--express-dir DIR] [--node-fetch-dir DIR] [--json FILE]
 *
 * 1. Servers: the same trivial JSON route (GET /v1/ping -> {"ok":true,"n":...})
 *    on node:http and on express 5, each in its own process, loaded by the
 *    same client at 64 keep-alive connections.
 * 2. Clients: against the node:http server, the product's lib/http-client.ts
 *    (undici's dispatch API), undici's `Pool.request`, node:http with a
 *    keep-alive Agent (what the product's client was before), the built-in
 *    fetch (undici with WHATWG layers) and, with --node-fetch-dir, node-fetch
 *    3 with a keep-alive Agent; same concurrency.
 *    Each row also gives the client process's CPU per request: on a 2-core
 *    machine shared with the servers, that is the number that decides which
 *    client to use.
 *
 * express is not a dependency of the store; it is loaded with import('express'),
 * or from --express-dir (a folder whose node_modules holds express), and the
 * express row is skipped when neither finds it. node-fetch is not a
 * dependency either: its row runs only with --node-fetch-dir (a folder whose
 * node_modules holds node-fetch 3).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { HttpClient } from '../../lib/http-client.js';
import { Pool } from 'undici';
import { runPhase, type PhaseResult } from '../loadgen.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

type ExpressFactory = () => { get(path: string, h: (req: unknown, res: { json(body: unknown): void }) => void): void; listen(port: number, host: string, cb: () => void): unknown };

async function loadExpress(dir: string | undefined): Promise<{ factory: ExpressFactory; version: string } | undefined> {
  const attempts: (() => Promise<unknown>)[] = [];
  if (dir) {
    const req = createRequire(join(resolve(dir), 'index.js'));
    attempts.push(async () => ({ mod: req('express') as unknown, version: (req('express/package.json') as { version: string }).version }));
  }
  attempts.push(async () => {
    const name = 'express';
    const mod = (await import(name)) as { default: unknown };
    const req = createRequire(join(ROOT, 'index.js'));
    return { mod: mod.default, version: (req('express/package.json') as { version: string }).version };
  });
  for (const a of attempts) {
    try {
      const { mod, version } = (await a()) as { mod: ExpressFactory; version: string };
      return { factory: mod, version };
    } catch {
      // try the next place
    }
  }
  return undefined;
}

async function serve(kind: string, port: number, expressDir: string | undefined): Promise<void> {
  let n = 0;
  if (kind === 'node') {
    const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      if (req.method === 'GET' && req.url === '/v1/ping') {
        const text = JSON.stringify({ ok: true, n: ++n });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    server.listen(port, '127.0.0.1', () => console.log('ready'));
    return;
  }
  const ex = await loadExpress(expressDir);
  if (!ex) {
    console.log('no-express');
    process.exit(3);
  }
  const app = ex.factory();
  app.get('/v1/ping', (_req, res) => res.json({ ok: true, n: ++n }));
  const server = app.listen(port, '127.0.0.1', () => console.log(`ready express ${ex.version}`)) as http.Server;
  server.keepAliveTimeout = 30_000;
}

function startServer(kind: string, port: number, expressDir: string | undefined): Promise<{ child: ChildProcess; banner: string } | undefined> {
  const args = ['--import', 'tsx', SELF, '--serve', kind, '--port', String(port), ...(expressDir ? ['--express-dir', expressDir] : [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`${kind} server did not start within 20 s`));
    }, 20_000);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        res({ child, banner: out.trim() });
      } else if (out.includes('no-express')) {
        clearTimeout(timer);
        res(undefined);
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      res(undefined);
    });
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(t);
}

interface Row {
  readonly server: string;
  readonly client: string;
  readonly connections: number;
  /** The median round. */
  readonly result: Measured;
  readonly rounds: readonly Measured[];
  /** The median of the rounds' client CPU per request. */
  readonly clientCpuUsPerRequest: number;
}

type Client = 'node:http' | 'lib/http-client' | 'fetch' | 'node-fetch' | 'undici';
type NodeFetch = (url: string, init: { agent: http.Agent }) => Promise<{ status: number; text(): Promise<string> }>;

/** node-fetch 3 is ESM-only: import its entry file from DIR/node_modules. */
async function loadNodeFetch(dir: string): Promise<{ fetch: NodeFetch; version: string }> {
  const pkgDir = join(resolve(dir), 'node_modules', 'node-fetch');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string; main: string };
  const mod = (await import(pathToFileURL(join(pkgDir, pkg.main)).href)) as { default: NodeFetch };
  return { fetch: mod.default, version: pkg.version };
}

/** A phase's result and the client process's CPU per request (user + system, warmup included). */
type Measured = PhaseResult & { readonly clientCpuUsPerRequest: number };

/** One client's request: GET /v1/ping, status checked, body parsed. */
function clientFor(client: Client, url: string, connections: number, nodeFetch: NodeFetch | undefined): { op: () => Promise<void>; close: () => void } {
  switch (client) {
    case 'undici': {
      const pool = new Pool(url, { connections });
      const op = async (): Promise<void> => {
        const res = await pool.request({ method: 'GET', path: '/v1/ping' });
        const body = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
        JSON.parse(body);
      };
      return { op, close: () => void pool.close().catch(() => undefined) };
    }
    case 'node:http':
      return nodeHttpClient(url, connections);
    case 'lib/http-client': {
      const c = new HttpClient({ maxSocketsPerHost: connections });
      const op = async (): Promise<void> => {
        const res = await c.request({ method: 'GET', url: `${url}/v1/ping` });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        JSON.parse(res.text);
      };
      return { op, close: () => c.close() };
    }
    case 'node-fetch': {
      const nf = nodeFetch as NodeFetch;
      const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
      const op = async (): Promise<void> => {
        const res = await nf(`${url}/v1/ping`, { agent });
        const body = await res.text();
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        JSON.parse(body);
      };
      return { op, close: () => agent.destroy() };
    }
    case 'fetch': {
      const op = async (): Promise<void> => {
        const res = await fetch(`${url}/v1/ping`);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        JSON.parse(body);
      };
      return { op, close: () => undefined };
    }
  }
}

/** node:http with a keep-alive Agent, one socket per connection: what lib/http-client.ts was before undici. */
function nodeHttpClient(url: string, connections: number): { op: () => Promise<void>; close: () => void } {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'lifo' });
  const op = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, method: 'GET', path: '/v1/ping', agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
          try {
            JSON.parse(Buffer.concat(chunks).toString('utf8'));
            resolve();
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  return { op, close: () => agent.destroy() };
}

async function measure(client: Client, url: string, connections: number, durationMs: number, nodeFetch: NodeFetch | undefined): Promise<Measured> {
  const c = clientFor(client, url, connections, nodeFetch);
  // The load generator shares this process, so CPU per request is the client's
  // cost plus the same small bookkeeping for every client.
  let requests = 0;
  const cpuStart = process.cpuUsage();
  try {
    const result = await runPhase(
      async () => {
        await c.op();
        requests++;
      },
      { concurrency: connections, durationMs, warmupMs: 1_000 },
    );
    const cpu = process.cpuUsage(cpuStart);
    return { ...result, clientCpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, requests) };
  } finally {
    c.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseFlags({
    serve: { type: 'string' },
    port: { type: 'string' },
    'duration-s': { type: 'string' },
    connections: { type: 'string' },
    'express-dir': { type: 'string' },
    'node-fetch-dir': { type: 'string' },
    'base-port': { type: 'string' },
    rounds: { type: 'string' },
    json: { type: 'string' },
  });
  const expressDir = stringFlag(values, 'express-dir') ?? process.env['EXPRESS_DIR'];
  const kind = stringFlag(values, 'serve');
  if (kind) {
    await serve(kind, intFlag(values, 'port', 34500), expressDir);
    return;
  }
  const durationMs = intFlag(values, 'duration-s', 5) * 1000;
  const connections = intFlag(values, 'connections', 64);
  const basePort = intFlag(values, 'base-port', 34500);
  const rounds = intFlag(values, 'rounds', 3);
  const children: ChildProcess[] = [];
  // Each configuration runs once per round, rounds interleaved, and the table
  // shows the median round: on a shared machine a burst of someone else's load
  // then hits one round of every configuration, not all rounds of one.
  const perConfig = new Map<string, { server: string; client: Client; url: string; results: Measured[] }>();
  const nodeFetchDir = stringFlag(values, 'node-fetch-dir');
  const nodeFetch = nodeFetchDir === undefined ? undefined : await loadNodeFetch(nodeFetchDir);
  try {
    const nodeSrv = await startServer('node', basePort, expressDir);
    if (!nodeSrv) throw new Error('node:http server failed to start');
    children.push(nodeSrv.child);
    const nodeUrl = `http://127.0.0.1:${basePort}`;
    perConfig.set('node:http/node:http', { server: 'node:http', client: 'node:http', url: nodeUrl, results: [] });
    perConfig.set('node:http/lib', { server: 'node:http', client: 'lib/http-client', url: nodeUrl, results: [] });
    perConfig.set('node:http/fetch', { server: 'node:http', client: 'fetch', url: nodeUrl, results: [] });
    if (nodeFetch) perConfig.set('node:http/node-fetch', { server: 'node:http', client: 'node-fetch', url: nodeUrl, results: [] });
    perConfig.set('node:http/undici', { server: 'node:http', client: 'undici', url: nodeUrl, results: [] });
    const exSrv = await startServer('express', basePort + 1, expressDir);
    if (exSrv) {
      children.push(exSrv.child);
      const name = exSrv.banner.replace(/^ready\s*/, '');
      perConfig.set('express/node:http', { server: name, client: 'node:http', url: `http://127.0.0.1:${basePort + 1}`, results: [] });
    } else {
      process.stderr.write('express not found (npm install express somewhere and pass --express-dir DIR): skipping its row\n');
    }
    for (let r = 1; r <= rounds; r++) {
      for (const c of perConfig.values()) {
        process.stderr.write(`round ${r}/${rounds}: ${c.server} server, ${c.client} client, ${connections} connections...\n`);
        c.results.push(await measure(c.client, c.url, connections, durationMs, nodeFetch?.fetch));
      }
    }
  } finally {
    for (const c of children) await stopServer(c);
  }
  const rows: Row[] = [...perConfig.values()].map((c) => ({ server: c.server, client: c.client === 'node-fetch' ? `node-fetch ${nodeFetch?.version}` : c.client === 'undici' ? 'undici Pool.request' : c.client, connections, result: median(c.results), rounds: c.results, clientCpuUsPerRequest: medianOf(c.results.map((x) => x.clientCpuUsPerRequest)) }));
  console.log(`median of ${rounds} interleaved rounds, ${durationMs / 1000} s each`);
  console.log('| server | client | connections | requests/s | p50 ms | p99 ms | errors | client CPU µs/request | requests/s per round |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(`| ${r.server} | ${r.client} | ${r.connections} | ${r.result.opsPerS.toFixed(0)} | ${r.result.p50Ms.toFixed(2)} | ${r.result.p99Ms.toFixed(2)} | ${r.result.errors} | ${r.clientCpuUsPerRequest.toFixed(0)} | ${r.rounds.map((x) => x.opsPerS.toFixed(0)).join(', ')} |`);
  }
  const jsonFile = stringFlag(values, 'json');
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ durationMs, connections, rounds, rows }, null, 2));
}

/** The round with the median throughput. */
function median(results: readonly Measured[]): Measured {
  const sorted = [...results].sort((a, b) => a.opsPerS - b.opsPerS);
  return sorted[Math.floor((sorted.length - 1) / 2)] as Measured;
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
