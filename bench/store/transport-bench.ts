/**
 * Peer transport micro-benchmark: the TCP framing of store/node/transport.ts
 * versus HTTP between peers, with Raft-message-sized JSON.
 *
 *   npx tsx bench/store/transport-bench.ts [--duration-s 5] [--window 1,256] [--rounds 3] [--json FILE]
 *
 * Two processes on loopback. The driver (this process) sends AppendEntries
 * messages carrying one ~150-byte entry (a put command, as the store
 * replicates them); the echo process answers each with an appendResp, as a
 * follower does. The driver keeps `window` messages outstanding: window 1 is
 * a ping-pong (latency), a large window shows throughput with the batching
 * both transports do (messages queued in one event-loop turn travel as one
 * frame or one POST). Reported: acknowledged messages per second and the
 * send-to-ack latency.
 *
 * Transports compared:
 *  - tcp:  the store's Transport class itself (length-prefixed JSON batches,
 *          one connection per direction).
 *  - http: POST /raft with a JSON array over a keep-alive Agent, 204 reply;
 *          answers travel as the peer's own POSTs (messages are one-way, as
 *          in Raft). Up to 4 POSTs in flight per peer, each taking every
 *          message queued at that moment (the best batching HTTP allows
 *          without HTTP/2).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { Transport, defaultTransportLimits } from '../../store/node/transport.js';
import type { Message } from '../../store/raft/index.js';
import { percentile } from '../loadgen.js';

const SELF = fileURLToPath(import.meta.url);

interface PeerTransport {
  listen(host: string, port: number): Promise<unknown>;
  setPeer(id: string, address: { host: string; port: number }): void;
  send(messages: readonly Message[]): void;
  close(): Promise<void>;
}

/** HTTP between peers: the alternative the store does not use. */
class HttpTransport implements PeerTransport {
  private server: http.Server | undefined;
  private readonly peers = new Map<string, { host: string; port: number; queue: Message[]; inflight: number; agent: http.Agent }>();

  constructor(
    private readonly onMessages: (m: Message[]) => void,
    private readonly maxInflight = 4,
  ) {}

  listen(host: string, port: number): Promise<void> {
    const server = http.createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const msgs = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Message[];
        res.writeHead(204);
        res.end();
        this.onMessages(msgs);
      });
    });
    this.server = server;
    return new Promise((resolve) => server.listen(port, host, () => resolve()));
  }

  setPeer(id: string, address: { host: string; port: number }): void {
    this.peers.set(id, { ...address, queue: [], inflight: 0, agent: new http.Agent({ keepAlive: true, maxSockets: this.maxInflight }) });
  }

  send(messages: readonly Message[]): void {
    const touched = new Set<string>();
    for (const m of messages) {
      const p = this.peers.get(m.to);
      if (!p) continue;
      p.queue.push(m);
      touched.add(m.to);
    }
    for (const id of touched) this.flush(id);
  }

  private flush(id: string): void {
    const p = this.peers.get(id);
    if (!p || p.queue.length === 0 || p.inflight >= this.maxInflight) return;
    const batch = p.queue;
    p.queue = [];
    p.inflight++;
    const body = JSON.stringify(batch);
    const req = http.request(
      { host: p.host, port: p.port, method: 'POST', path: '/raft', agent: p.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => {
          p.inflight--;
          this.flush(id);
        });
      },
    );
    req.on('error', () => {
      p.inflight--;
    });
    req.setNoDelay(true);
    req.end(body);
  }

  async close(): Promise<void> {
    for (const p of this.peers.values()) p.agent.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

function makeTransport(kind: string, self: string, onMessages: (m: Message[]) => void): PeerTransport {
  if (kind === 'tcp') {
    const limits = { ...defaultTransportLimits, maxQueuedMessages: 1_000_000, reconnectDelayMs: 50 };
    return new Transport(self, { onMessages, onUnreachable: () => undefined }, limits);
  }
  if (kind === 'http') return new HttpTransport(onMessages);
  throw new Error(`unknown transport ${kind}`);
}

const ENTRY_DATA = JSON.stringify({ type: 'put', key: 'bench/set/12-34', value: 'v'.repeat(64), requestId: { clientId: '0b6f1c2e-8f7e-4a51-9c1d-2f9e6d3c4b5a.3', seq: 1234 }, nowMs: 1_700_000_000_000 });

function appendMessage(index: number): Message {
  return {
    type: 'app',
    from: 'a',
    to: 'b',
    term: 7,
    prevIndex: index - 1,
    prevTerm: 7,
    entries: [{ term: 7, index, type: 'normal', data: ENTRY_DATA }],
    commit: Math.max(0, index - 2),
  } as unknown as Message;
}

function appendResponse(req: { prevIndex: number }): Message {
  return { type: 'appResp', from: 'b', to: 'a', term: 7, index: req.prevIndex + 1, reject: false, hintIndex: 0, hintTerm: 0 } as unknown as Message;
}

async function echo(kind: string, port: number, peerPort: number): Promise<void> {
  let t: PeerTransport | undefined;
  t = makeTransport(kind, 'b', (msgs) => {
    const out: Message[] = [];
    for (const m of msgs) if (m.type === 'app') out.push(appendResponse(m as unknown as { prevIndex: number }));
    t?.send(out);
  });
  await t.listen('127.0.0.1', port);
  t.setPeer('a', { host: '127.0.0.1', port: peerPort });
  console.log('ready');
  process.on('SIGTERM', () => {
    void t?.close().finally(() => process.exit(0));
  });
}

interface Result {
  readonly transport: string;
  readonly window: number;
  readonly messagesPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

async function drive(kind: string, window: number, durationMs: number, warmupMs: number, port: number): Promise<Result> {
  const echoPort = port + 1;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SELF, '--role', 'echo', '--kind', kind, '--port', String(echoPort), '--peer-port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('echo process did not start within 20 s')), 20_000);
      child.stdout?.on('data', (c: Buffer) => {
        if (c.toString().includes('ready')) {
          clearTimeout(timer);
          res();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`echo exited with ${code}`));
      });
    });
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    let next = 1;
    let running = true;
    let measureFrom = Number.POSITIVE_INFINITY;
    let stopAt = Number.POSITIVE_INFINITY;
    let t: PeerTransport | undefined;
    const sendOne = (out: Message[]): void => {
      const index = next++;
      sentAt.set(index, performance.now());
      out.push(appendMessage(index));
    };
    t = makeTransport(kind, 'a', (msgs) => {
      const now = performance.now();
      const out: Message[] = [];
      for (const m of msgs) {
        const idx = (m as unknown as { index: number }).index;
        const at = sentAt.get(idx);
        if (at === undefined) continue;
        sentAt.delete(idx);
        if (at >= measureFrom && now <= stopAt) latencies.push(now - at);
        if (running) sendOne(out);
      }
      if (out.length > 0) t?.send(out);
    });
    await t.listen('127.0.0.1', port);
    t.setPeer('b', { host: '127.0.0.1', port: echoPort });
    const start = performance.now();
    measureFrom = start + warmupMs;
    stopAt = measureFrom + durationMs;
    const first: Message[] = [];
    for (let i = 0; i < window; i++) sendOne(first);
    t.send(first);
    await keepAliveTimers.sleep(warmupMs + durationMs);
    running = false;
    // Let in-flight messages drain, bounded.
    const drainUntil = performance.now() + 2_000;
    while (sentAt.size > 0 && performance.now() < drainUntil) await keepAliveTimers.sleep(10);
    await t.close();
    latencies.sort((a, b) => a - b);
    return { transport: kind, window, messagesPerS: latencies.length / (durationMs / 1000), p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
  } finally {
    if (child.exitCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid, 'SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(kill);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseFlags({
    role: { type: 'string' },
    kind: { type: 'string' },
    port: { type: 'string' },
    'peer-port': { type: 'string' },
    'duration-s': { type: 'string' },
    window: { type: 'string' },
    'base-port': { type: 'string' },
    rounds: { type: 'string' },
    json: { type: 'string' },
  });
  if (stringFlag(values, 'role') === 'echo') {
    await echo(stringFlag(values, 'kind', 'tcp') as string, intFlag(values, 'port', 0), intFlag(values, 'peer-port', 0));
    return;
  }
  const durationMs = Number(stringFlag(values, 'duration-s', '5')) * 1000;
  const windows = (stringFlag(values, 'window', '1,256') as string).split(',').map(Number);
  const rounds = intFlag(values, 'rounds', 3);
  let port = intFlag(values, 'base-port', 34600);
  // Rounds interleave every configuration; the table shows the median round.
  const perConfig = new Map<string, Result[]>();
  for (let r = 1; r <= rounds; r++) {
    for (const window of windows) {
      for (const kind of ['tcp', 'http']) {
        process.stderr.write(`round ${r}/${rounds}: ${kind} window=${window}...\n`);
        const key = `${kind}/${window}`;
        perConfig.set(key, [...(perConfig.get(key) ?? []), await drive(kind, window, durationMs, 1_000, port)]);
        port += 2;
      }
    }
  }
  const rows = [...perConfig.values()].map((results) => {
    const sorted = [...results].sort((a, b) => a.messagesPerS - b.messagesPerS);
    return { median: sorted[Math.floor((sorted.length - 1) / 2)] as Result, results };
  });
  console.log(`entry payload ${ENTRY_DATA.length} bytes; AppendEntries message ${JSON.stringify(appendMessage(1)).length} bytes as JSON; median of ${rounds} interleaved rounds, ${durationMs / 1000} s each`);
  console.log('| transport | window (messages in flight) | messages/s | p50 ms | p99 ms | messages/s per round |');
  console.log('|---|---:|---:|---:|---:|---|');
  for (const { median: m, results } of rows) {
    console.log(`| ${m.transport} | ${m.window} | ${m.messagesPerS.toFixed(0)} | ${m.p50Ms.toFixed(3)} | ${m.p99Ms.toFixed(3)} | ${results.map((x) => x.messagesPerS.toFixed(0)).join(', ')} |`);
  }
  const jsonFile = stringFlag(values, 'json');
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify({ durationMs, rounds, rows }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
