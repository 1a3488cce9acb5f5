/**
 * A lean closed-loop load generator: N workers, each with one request in
 * flight, for a fixed time. Latencies are kept as numbers (ms) and sorted once
 * at the end. The HTTP side is the product's own client (lib/http-client.ts,
 * undici's dispatcher, kept-alive sockets): the load costs what a user's
 * client would, and as little CPU as any client measured here, which matters
 * when it shares two cores with three store nodes (docs/BENCHMARKS.md).
 */
import { performance } from 'node:perf_hooks';
import { HttpClient, type HttpClientTls } from '../lib/http-client.js';
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
  /** Called when the measured window opens (after the warmup) and when it closes: to sample CPU over exactly that window. */
  readonly onWindow?: (edge: 'start' | 'end') => void;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[idx] as number;
}

/**
 * Timers that report the measured window's edges; `close()` reports an edge
 * its timer has not reached yet (the last workers may finish in the same
 * turn as the window's end, before the timer phase), so both are always
 * reported once, start before end.
 */
function windowEdges(onWindow: PhaseOptions['onWindow'], warmupMs: number, durationMs: number): { close(): void } {
  if (onWindow === undefined) return { close: () => undefined };
  const pending = new Set<'start' | 'end'>(['start', 'end']);
  const fire = (edge: 'start' | 'end'): void => {
    if (pending.delete(edge)) onWindow(edge);
  };
  const timers = [
    setTimeout(() => fire('start'), warmupMs),
    setTimeout(() => fire('end'), warmupMs + durationMs),
  ];
  return {
    close: () => {
      for (const t of timers) clearTimeout(t);
      fire('start');
      fire('end');
    },
  };
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

  const edges = windowEdges(opts.onWindow, warmupMs, opts.durationMs);
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
    edges.close();
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

/** What a LeanHttp adds for a secure server: its CA and our certificate (https URLs), and headers for every request (a bearer token). */
export interface LeanHttpSecurity {
  readonly tls?: HttpClientTls;
  readonly headers?: Readonly<Record<string, string>>;
}

/** JSON over the product's HttpClient for one base URL: parsed JSON on 2xx, HttpStatusError otherwise. */
export class LeanHttp {
  private readonly client: HttpClient;
  private readonly origin: string;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly jsonHeaders: Readonly<Record<string, string>>;

  /** `pipelining`: as the product's store client does (lib/http-client.ts); only requests sent `resendable` use it. */
  constructor(baseUrl: string, maxSockets: number, security: LeanHttpSecurity = {}, pipelining = 1) {
    this.origin = new URL(baseUrl).origin;
    this.client = new HttpClient({ maxSocketsPerHost: maxSockets, pipelining, ...(security.tls === undefined ? {} : { tls: security.tls }) });
    this.headers = security.headers ?? {};
    this.jsonHeaders = { ...this.headers, 'content-type': 'application/json' };
  }

  /**
   * Sends a request; resolves with the parsed JSON body on 2xx, rejects with HttpStatusError otherwise.
   * Pipelined (when the client pipelines) if sending it twice does no harm: a GET or PUT (idempotent,
   * RFC 9110 §9.2.2), or a write with a `requestId` (the store's Request-Id: applied at most once).
   */
  async request(method: string, path: string, body?: string, opts: { timeoutMs?: number; requestId?: string } = {}): Promise<unknown> {
    const base = body === undefined ? this.headers : this.jsonHeaders;
    const headers = opts.requestId === undefined ? base : { ...base, 'request-id': opts.requestId };
    const resendable = method === 'GET' || method === 'PUT' || opts.requestId !== undefined;
    const res = await this.client.request({ method, url: this.origin + path, headers, resendable, ...(body === undefined ? {} : { body }), timeoutMs: opts.timeoutMs ?? 10_000 });
    if (res.status < 200 || res.status >= 300) throw new HttpStatusError(res.status, res.text);
    return res.text === '' ? undefined : (JSON.parse(res.text) as unknown);
  }

  close(): void {
    this.client.close();
  }
}
