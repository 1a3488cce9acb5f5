/**
 * The two workloads of bench/store/large-state.ts, for our store and etcd
 * alike: a bulk load of N keys in txn batches from a few concurrent clients,
 * and closed-loop overwrites of random existing keys (bench/loadgen.ts
 * runPhase, with every latency kept here for p999 and the worst).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { keepAliveTimers } from '../../lib/timers.js';
import { LeanHttp, percentile, runPhase } from '../loadgen.js';
import { progress } from '../output.js';

/** One system as the workloads see it. */
export interface KvDriver {
  readonly name: string;
  /** Puts keys [from, to) in one transaction. */
  putBatch(from: number, to: number): Promise<void>;
  /** Overwrites one key with a new value of the same length. */
  overwrite(index: number, value: string): Promise<void>;
  close(): void;
}

export const keyOf = (i: number): string => `large/${String(i).padStart(8, '0')}`;

/** A value of exactly `bytes` ASCII bytes starting with `tag`. */
export function valueOf(tag: string, bytes: number): string {
  return (tag + ':' + 'v'.repeat(bytes)).slice(0, bytes);
}

/** Keys plus values of the whole data set, in bytes (what the quota and the memory ratio count). */
export function dataBytes(keys: number, valueBytes: number): number {
  let total = 0;
  for (let i = 0; i < keys; i++) total += keyOf(i).length;
  return total + keys * valueBytes;
}

export function ourDriver(url: string, sockets: number, valueBytes: number): KvDriver {
  const http = new LeanHttp(url, sockets);
  return {
    name: 'ours',
    async putBatch(from, to) {
      const success = [];
      for (let i = from; i < to; i++) success.push({ type: 'put', key: keyOf(i), value: valueOf(String(i), valueBytes) });
      await http.request('POST', '/v1/txn', JSON.stringify({ success }), { timeoutMs: 30_000 });
    },
    async overwrite(index, value) {
      await http.request('PUT', `/v1/kv/${keyOf(index)}`, JSON.stringify({ value }));
    },
    close: () => http.close(),
  };
}

export async function etcdDriver(leaderUrl: string, valueBytes: number): Promise<KvDriver> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: leaderUrl });
  return {
    name: 'etcd',
    async putBatch(from, to) {
      const success = [];
      for (let i = from; i < to; i++) success.push({ request_put: { key: Buffer.from(keyOf(i)), value: Buffer.from(valueOf(String(i), valueBytes)) } });
      await client.kv.txn({ success });
    },
    async overwrite(index, value) {
      await client.put(keyOf(index)).value(value).exec();
    },
    close: () => client.close(),
  };
}

export interface LoadResult {
  readonly keys: number;
  readonly seconds: number;
  readonly keysPerS: number;
  /** Failed batches (each retried until it succeeded). */
  readonly errors: number;
  readonly errorSamples: readonly string[];
}

const short = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 200);

/** Puts keys 0..keys-1 in batches of `batch`, `clients` batches in flight; a failed batch is retried (up to 20 times, with back-off). */
export async function loadKeys(d: KvDriver, keys: number, batch: number, clients: number, everyMs: number): Promise<LoadResult> {
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let errors = 0;
  const samples: string[] = [];
  const timer = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    progress(`  ${d.name} load: ${done}/${keys} keys  ${(done / s).toFixed(0)} keys/s  ${errors} errors  load avg ${os.loadavg()[0]?.toFixed(1)}`, true);
  }, everyMs);
  const worker = async (): Promise<void> => {
    for (;;) {
      const from = next;
      if (from >= keys) return;
      const to = Math.min(keys, from + batch);
      next = to;
      for (let attempt = 1; ; attempt++) {
        try {
          await d.putBatch(from, to);
          break;
        } catch (e) {
          errors++;
          if (samples.length < 5) samples.push(short(e));
          if (attempt >= 20) throw new Error(`${d.name}: batch ${from}..${to} failed 20 times; last: ${short(e)}`);
          await keepAliveTimers.sleep(Math.min(2_000, 50 * attempt));
        }
      }
      done += to - from;
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, () => worker()));
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { keys, seconds, keysPerS: keys / seconds, errors, errorSamples: samples };
}

export interface OverwriteResult {
  readonly ops: number;
  readonly opsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
}

/** `clients` closed-loop clients overwriting random keys of 0..keys-1 for durationMs. */
export async function overwrite(d: KvDriver, keys: number, valueBytes: number, clients: number, durationMs: number, everyMs: number): Promise<OverwriteResult> {
  const latencies: number[] = [];
  let last = 0;
  const result = await runPhase(
    async (w, i) => {
      const index = Math.floor(Math.random() * keys);
      const value = valueOf(`${w}-${i}-${Math.random().toString(36).slice(2, 8)}`, valueBytes);
      const start = performance.now();
      await d.overwrite(index, value);
      latencies.push(performance.now() - start);
    },
    {
      concurrency: clients,
      durationMs,
      onProgress: (ms, ops, errs) => {
        if (ms - last < everyMs) return;
        last = ms;
        progress(`  ${d.name} overwrite: ${(ms / 1000).toFixed(0)}/${(durationMs / 1000).toFixed(0)} s  ${ops} ops  ${(ops / (ms / 1000)).toFixed(0)} ops/s  ${errs} errors  load avg ${os.loadavg()[0]?.toFixed(1)}`, true);
      },
    },
  );
  latencies.sort((a, b) => a - b);
  return {
    ops: result.ops,
    opsPerS: result.opsPerS,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    p999Ms: percentile(latencies, 0.999),
    maxMs: latencies[latencies.length - 1] ?? Number.NaN,
    errors: result.errors,
    errorSamples: result.errorSamples,
  };
}
