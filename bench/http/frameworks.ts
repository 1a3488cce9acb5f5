/**
 * The HTTP layer of the 2PC hot path, three ways (issue 17):
 *
 *   npm run bench:http [-- --runs 3 --duration 3 --warmup 1 --connections 48 --base-port 26500 --json FILE]
 *
 * The coordinator's begin (`POST /v1/transactions`) and commit
 * (`POST /v1/transactions/{id}/commit`) and the participant's
 * `POST /2pc/work`, each served by express (as the product did), by
 * lib/http.ts's Router and by fastify (bench/http/variants.ts): the same
 * validation, guard and stubbed business call, so only the HTTP layer
 * differs; and by the product's own routes (`product`: coordinatorApp and
 * participantHandler over stubs). Each server (variant × service) runs in its own process; this process is
 * the closed-loop load client (keep-alive, one socket per connection,
 * bench/loadgen.ts). Per run it reports requests/s, p50/p99 latency, and the
 * SERVER process's CPU time per request (/proc/<pid>/stat).
 *
 * The machine is shared and noisy: the variants are interleaved (every run
 * measures each route on each framework, in a rotating order) and the table
 * shows, per variant, the median over the runs of each figure. Output:
 * Markdown on stdout, JSON to .artifacts/bench-http.json (or --json).
 * Every server is stopped by pid at the end, also on error or Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupOnSignal } from '../cleanup.js';
import { LeanHttp, runPhase } from '../loadgen.js';
import { fmt, machine, progress } from '../output.js';
import { cpuMs } from '../proc-cpu.js';
import { FRAMEWORKS, SERVICES, type Framework, type Service } from './variants.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** How long a server may take to say it listens. */
const READY_TIMEOUT_MS = 30_000;

interface RouteSpec {
  readonly name: string;
  readonly service: Service;
  readonly path: string;
  readonly body: string;
}

const ROUTES: readonly RouteSpec[] = [
  { name: 'coordinator begin', service: 'coordinator', path: '/v1/transactions', body: JSON.stringify({ timeoutMs: 10_000, participants: [{ name: 'a', url: 'http://127.0.0.1:30403' }, { name: 'b', url: 'http://127.0.0.1:30405' }] }) },
  { name: 'coordinator commit', service: 'coordinator', path: '/v1/transactions/tmiz3k0q1a2b3c4d5e6f7a8b9/commit', body: '{}' },
  { name: 'participant work', service: 'participant', path: '/2pc/work', body: JSON.stringify({ txId: 'tmiz3k0q1a2b3c4d5e6f7a8b9', work: { n: 17 } }) },
];

interface Flags {
  readonly runs: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly initialWarmupMs: number;
  readonly connections: number;
  readonly basePort: number;
  readonly json: string;
}

function flags(): Flags {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      'initial-warmup': { type: 'string', default: '2' },
      connections: { type: 'string', default: '48' },
      'base-port': { type: 'string', default: '26500' },
      json: { type: 'string', default: '.artifacts/bench-http.json' },
    },
  });
  const num = (v: string, min: number, max: number, what: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${what} must be from ${min} to ${max}`);
    return n;
  };
  return {
    runs: num(values.runs, 1, 20, 'runs'),
    durationMs: num(values.duration, 0.5, 120, 'duration') * 1000,
    warmupMs: num(values.warmup, 0, 60, 'warmup') * 1000,
    initialWarmupMs: num(values['initial-warmup'], 0, 60, 'initial-warmup') * 1000,
    connections: num(values.connections, 1, 512, 'connections'),
    basePort: num(values['base-port'], 1024, 65_000, 'base-port'),
    json: values.json,
  };
}

interface ServerProc {
  readonly framework: Framework;
  readonly service: Service;
  readonly port: number;
  readonly child: ChildProcess;
  readonly http: LeanHttp;
}

async function startServer(framework: Framework, service: Service, port: number, connections: number): Promise<ServerProc> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'server-main.ts'), framework, service, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${framework} ${service} did not start within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${framework} ${service} exited with ${String(code)} (port ${port} in use?)`));
    });
  });
  return { framework, service, port, child, http: new LeanHttp(`http://127.0.0.1:${port}`, connections) };
}

async function stopServer(s: ServerProc): Promise<void> {
  s.http.close();
  if (s.child.exitCode !== null || s.child.pid === undefined) return;
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  process.kill(s.child.pid, 'SIGTERM');
  const timer = setTimeout(() => s.child.pid !== undefined && s.child.exitCode === null && process.kill(s.child.pid, 'SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

interface Sample {
  readonly run: number;
  readonly route: string;
  readonly framework: Framework;
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU (user + system) per request, microseconds. */
  readonly cpuUsPerReq: number;
  readonly errorSamples: readonly string[];
}

async function load(s: ServerProc, r: RouteSpec, connections: number, durationMs: number): ReturnType<typeof runPhase> {
  return runPhase(async () => void (await s.http.request('POST', r.path, r.body)), { concurrency: connections, durationMs });
}

async function measure(s: ServerProc, r: RouteSpec, f: Flags, run: number): Promise<Sample> {
  if (f.warmupMs > 0) await load(s, r, f.connections, f.warmupMs);
  const cpu0 = cpuMs(s.child.pid);
  const res = await load(s, r, f.connections, f.durationMs);
  const cpu1 = cpuMs(s.child.pid);
  const cpuUsPerReq = cpu0 === undefined || cpu1 === undefined || res.ops === 0 ? Number.NaN : ((cpu1 - cpu0) * 1000) / res.ops;
  return { run, route: r.name, framework: s.framework, requests: res.ops, errors: res.errors, rps: res.opsPerS, p50Ms: res.p50Ms, p99Ms: res.p99Ms, cpuUsPerReq, errorSamples: res.errorSamples };
}

function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Summary {
  readonly route: string;
  readonly framework: Framework;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number;
  readonly errors: number;
}

function summarize(samples: readonly Sample[]): Summary[] {
  return ROUTES.flatMap((r) =>
    FRAMEWORKS.map((framework) => {
      const mine = samples.filter((x) => x.route === r.name && x.framework === framework);
      return {
        route: r.name,
        framework,
        rps: median(mine.map((x) => x.rps)),
        p50Ms: median(mine.map((x) => x.p50Ms)),
        p99Ms: median(mine.map((x) => x.p99Ms)),
        cpuUsPerReq: median(mine.map((x) => x.cpuUsPerReq)),
        errors: mine.reduce((a, x) => a + x.errors, 0),
      };
    }),
  );
}

function render(rows: readonly Summary[], f: Flags, load: { before: number[]; after: number[] }): string {
  const lines = [
    `Median of ${f.runs} interleaved runs per variant (each figure's own median), ${f.connections} keep-alive connections, ${f.durationMs / 1000} s measured after ${f.warmupMs / 1000} s warm-up; load average ${load.before.map((x) => x.toFixed(2)).join(' ')} before, ${load.after.map((x) => x.toFixed(2)).join(' ')} after.`,
    '',
    '| route | server | req/s | p50 ms | p99 ms | server CPU µs/req | CPU vs express | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const base = rows.find((x) => x.route === r.route && x.framework === 'express')?.cpuUsPerReq;
    const rel = base === undefined || Number.isNaN(base) ? '-' : `${((r.cpuUsPerReq / base) * 100).toFixed(0)}%`;
    lines.push(`| ${r.route} | ${r.framework} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.cpuUsPerReq, 1)} | ${rel} | ${r.errors} |`);
  }
  return lines.join('\n');
}

async function runAll(servers: readonly ServerProc[], f: Flags): Promise<Sample[]> {
  const serverFor = (fw: Framework, svc: Service): ServerProc => servers.find((s) => s.framework === fw && s.service === svc) as ServerProc;
  for (const r of ROUTES) for (const fw of FRAMEWORKS) if (f.initialWarmupMs > 0) await load(serverFor(fw, r.service), r, f.connections, f.initialWarmupMs);
  const samples: Sample[] = [];
  for (let run = 1; run <= f.runs; run++) {
    for (const r of ROUTES) {
      // A rotating order: no framework always runs first (or right after the same neighbour).
      const order = FRAMEWORKS.map((_, i) => FRAMEWORKS[(i + run - 1) % FRAMEWORKS.length] as Framework);
      for (const fw of order) {
        const s = await measure(serverFor(fw, r.service), r, f, run);
        progress(`run ${run}/${f.runs} ${r.name} ${fw}: ${s.rps.toFixed(0)} req/s, p99 ${s.p99Ms.toFixed(2)} ms, ${s.cpuUsPerReq.toFixed(1)} µs CPU/req${s.errors > 0 ? `, ${s.errors} errors (${s.errorSamples[0] ?? ''})` : ''}`, true);
        samples.push(s);
      }
    }
  }
  return samples;
}

async function main(): Promise<void> {
  const f = flags();
  const servers: ServerProc[] = [];
  const cleanup = cleanupOnSignal(async () => void (await Promise.all(servers.map(stopServer))), () => progress('interrupted: stopping the servers', true));
  try {
    let port = f.basePort;
    for (const fw of FRAMEWORKS) for (const svc of SERVICES) servers.push(await startServer(fw, svc, port++, f.connections));
    progress(`servers: ${servers.map((s) => `${s.framework}/${s.service} pid ${String(s.child.pid)} port ${s.port}`).join(', ')}`, true);
    const loadBefore = os.loadavg();
    const samples = await runAll(servers, f);
    const loadAfter = os.loadavg();
    const rows = summarize(samples);
    process.stdout.write(`${render(rows, f, { before: loadBefore, after: loadAfter })}\n`);
    const json = { bench: 'http-frameworks', at: new Date().toISOString(), machine: machine(), flags: f, loadavg: { before: loadBefore, after: loadAfter }, summary: rows, samples };
    mkdirSync(dirname(resolve(f.json)), { recursive: true });
    writeFileSync(resolve(f.json), `${JSON.stringify(json, null, 2)}\n`);
    progress(`JSON written to ${f.json}`, true);
  } finally {
    await cleanup.run();
    cleanup.done();
  }
}

await main();
