/**
 * HTTP micro-benchmark: the justification for the store's hot path on
 * node:http (docs/DECISIONS.md), and for the load generator's client.
 *
 *   npx tsx store/bench/http-bench.ts [--duration-s 5] [--connections 64] [--rounds 3] [--express-dir DIR] [--json FILE]
 *
 * 1. Servers: the same trivial JSON route (GET /v1/ping -> {"ok":true,"n":...})
 *    on node:http and on express 5, each in its own process, loaded by the
 *    same client at 64 keep-alive connections.
 * 2. Clients: against the node:http server, node:http with a keep-alive Agent
 *    versus the built-in fetch (undici), same concurrency.
 *
 * express is not a dependency of the store; it is loaded with import('express'),
 * or from --express-dir (a folder whose node_modules holds express), and the
 * express row is skipped when neither finds it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { LeanHttp, runPhase, type PhaseResult } from './loadgen.js';

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
  readonly result: PhaseResult;
  readonly rounds: readonly PhaseResult[];
}

async function measure(client: 'node:http' | 'fetch', url: string, connections: number, durationMs: number): Promise<PhaseResult> {
  if (client === 'node:http') {
    const c = new LeanHttp(url, connections);
    try {
      return await runPhase(async () => void (await c.request('GET', '/v1/ping')), { concurrency: connections, durationMs, warmupMs: 1_000 });
    } finally {
      c.close();
    }
  }
  return runPhase(
    async () => {
      const res = await fetch(`${url}/v1/ping`);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      JSON.parse(body);
    },
    { concurrency: connections, durationMs, warmupMs: 1_000 },
  );
}

async function main(): Promise<void> {
  const { values } = parseFlags({
    serve: { type: 'string' },
    port: { type: 'string' },
    'duration-s': { type: 'string' },
    connections: { type: 'string' },
    'express-dir': { type: 'string' },
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
  const perConfig = new Map<string, { server: string; client: 'node:http' | 'fetch'; url: string; results: PhaseResult[] }>();
  try {
    const nodeSrv = await startServer('node', basePort, expressDir);
    if (!nodeSrv) throw new Error('node:http server failed to start');
    children.push(nodeSrv.child);
    const nodeUrl = `http://127.0.0.1:${basePort}`;
    perConfig.set('node:http/node:http', { server: 'node:http', client: 'node:http', url: nodeUrl, results: [] });
    perConfig.set('node:http/fetch', { server: 'node:http', client: 'fetch', url: nodeUrl, results: [] });
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
        c.results.push(await measure(c.client, c.url, connections, durationMs));
      }
    }
  } finally {
    for (const c of children) await stopServer(c);
  }
  const rows: Row[] = [...perConfig.values()].map((c) => ({ server: c.server, client: c.client, connections, result: median(c.results), rounds: c.results }));
  console.log(`median of ${rounds} interleaved rounds, ${durationMs / 1000} s each`);
  console.log('| server | client | connections | requests/s | p50 ms | p99 ms | errors | requests/s per round |');
  console.log('|---|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(`| ${r.server} | ${r.client} | ${r.connections} | ${r.result.opsPerS.toFixed(0)} | ${r.result.p50Ms.toFixed(2)} | ${r.result.p99Ms.toFixed(2)} | ${r.result.errors} | ${r.rounds.map((x) => x.opsPerS.toFixed(0)).join(', ')} |`);
  }
  const jsonFile = stringFlag(values, 'json');
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ durationMs, connections, rounds, rows }, null, 2));
}

/** The round with the median throughput. */
function median(results: readonly PhaseResult[]): PhaseResult {
  const sorted = [...results].sort((a, b) => a.opsPerS - b.opsPerS);
  return sorted[Math.floor((sorted.length - 1) / 2)] as PhaseResult;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
