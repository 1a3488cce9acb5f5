/**
 * undici's own request API (`Pool`), loaded from a folder whose node_modules
 * holds `undici` (`--undici-dir DIR`): it is not a dependency of the project,
 * only a client the benchmarks can measure beside node:http
 * (docs/BENCHMARKS.md, "The clients' HTTP stack").
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { HttpStatusError } from './loadgen.js';

interface UndiciPool {
  request(o: { path: string; method: string; headers?: Record<string, string>; body?: string; headersTimeout?: number; bodyTimeout?: number }): Promise<{ statusCode: number; body: { text(): Promise<string> } }>;
  close(): Promise<void>;
}
export type UndiciPoolFactory = new (origin: string, o: { connections: number }) => UndiciPool;

/** undici's Pool class and version, from DIR/node_modules. */
export function loadUndici(dir: string): { Pool: UndiciPoolFactory; version: string } {
  const req = createRequire(join(resolve(dir), 'index.js'));
  return { Pool: (req('undici') as { Pool: UndiciPoolFactory }).Pool, version: (req('undici/package.json') as { version: string }).version };
}

/** LeanHttp's request contract (parsed JSON on 2xx, HttpStatusError otherwise) over an undici Pool; plain http only. */
export class UndiciHttp {
  private readonly pool: UndiciPool;

  constructor(Pool: UndiciPoolFactory, baseUrl: string, connections: number) {
    this.pool = new Pool(baseUrl, { connections });
  }

  async request(method: string, path: string, body?: string, timeoutMs = 10_000): Promise<unknown> {
    const withBody = body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body };
    const res = await this.pool.request({ method, path, ...withBody, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new HttpStatusError(res.statusCode, text);
    return text === '' ? undefined : JSON.parse(text);
  }

  close(): void {
    void this.pool.close();
  }
}
