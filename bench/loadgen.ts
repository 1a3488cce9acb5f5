/**
 * A lean closed-loop load generator: N workers, each with one request in
 * flight, for a fixed time. Latencies are kept as numbers (ms) and sorted once
 * at the end. The HTTP side uses node:http with a keep-alive Agent (one socket
 * per worker): measured in this project, it costs the client less CPU per
 * request than the built-in fetch (undici), which matters when the client
 * shares two cores with three store nodes (docs/BENCHMARKS.md).
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { defaultHttpClientOptions, type HttpClientTls } from '../lib/http-client.js';
import { keepAliveTimers } from '../lib/timers.js';

export interface PhaseResult {
  readonly ops: number;
  readonly errors: number;
  readonly elapsedS: number;
  readonly opsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The first few error messages, for the report. */
  readonly errorSamples: readonly string[];
}

export type Op = (worker: number, i: number) => Promise<void>;

export interface PhaseOptions {
  readonly concurrency: number;
  readonly durationMs: number;
  /** Time spent running before measuring starts (not counted). */
  readonly warmupMs?: number;
  /** Called about every 250 ms while measuring. */
  readonly onProgress?: (elapsedMs: number, ops: number, errors: number) => void;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[idx] as number;
}

/** Runs `op` from `concurrency` workers for warmup + duration; measures only the duration. */
export async function runPhase(op: Op, opts: PhaseOptions): Promise<PhaseResult> {
  const warmupMs = opts.warmupMs ?? 0;
  const t0 = performance.now();
  const measureFrom = t0 + warmupMs;
  const stopAt = measureFrom + opts.durationMs;
  const latencies: number[] = [];
  let errors = 0;
  const errorSamples: string[] = [];
  let measuredEnd = stopAt;

  const progress = opts.onProgress
    ? setInterval(() => {
        const now = performance.now();
        if (now >= measureFrom) opts.onProgress?.(now - measureFrom, latencies.length, errors);
      }, 250)
    : undefined;

  const worker = async (w: number): Promise<void> => {
    let i = 0;
    for (;;) {
      const start = performance.now();
      if (start >= stopAt) return;
      let failed = false;
      try {
        await op(w, i++);
      } catch (e) {
        failed = true;
        if (start >= measureFrom) {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(e instanceof Error ? e.message : String(e));
        } else {
          // A failing warmup must not spin: back off a little.
          await keepAliveTimers.sleep(10);
        }
      }
      const end = performance.now();
      // Count only operations that started and finished inside the window.
      if (!failed && start >= measureFrom && end <= stopAt) latencies.push(end - start);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  } finally {
    if (progress) clearInterval(progress);
  }
  measuredEnd = Math.min(stopAt, performance.now());
  const elapsedS = Math.max(1e-9, (measuredEnd - measureFrom) / 1000);
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    errors,
    elapsedS,
    opsPerS: latencies.length / elapsedS,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errorSamples,
  };
}

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 200)}`);
  }
}

/** A minimal JSON-over-HTTP client on node:http with a keep-alive agent. */
/** What a LeanHttp adds for a secure server: its CA and our certificate (https URLs), and headers for every request (a bearer token). */
export interface LeanHttpSecurity {
  readonly tls?: HttpClientTls;
  readonly headers?: Readonly<Record<string, string>>;
}

export class LeanHttp {
  readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly send: typeof http.request;
  private readonly extraHeaders: Readonly<Record<string, string>>;

  constructor(baseUrl: string, maxSockets: number, security: LeanHttpSecurity = {}) {
    const u = new URL(baseUrl);
    const secure = u.protocol === 'https:';
    this.host = u.hostname;
    this.port = Number(u.port || (secure ? 443 : 80));
    // An idle socket is dropped before any server's keep-alive timeout would close it under a new request (ECONNRESET), as lib/http-client.ts does.
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const, timeout: defaultHttpClientOptions.idleSocketTimeoutMs };
    this.agent = secure ? new https.Agent({ ...agentOptions, ...security.tls }) : new http.Agent(agentOptions);
    this.send = secure ? https.request : http.request;
    this.extraHeaders = security.headers ?? {};
  }

  /** Sends a request; resolves with the parsed JSON body on 2xx, rejects with HttpStatusError otherwise. */
  request(method: string, path: string, body?: string, timeoutMs = 10_000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { ...this.extraHeaders };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = this.send({ host: this.host, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new HttpStatusError(status, text));
            return;
          }
          try {
            resolve(text === '' ? undefined : (JSON.parse(text) as unknown));
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
