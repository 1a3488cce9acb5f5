/**
 * Workloads for the crash tests: writers that keep writing unique keys and
 * remember which writes were acknowledged (those must survive any crash that
 * leaves a majority) and which had an unknown outcome (those may or may not
 * be there), and a paged range scan to read them all back.
 */
import type { StoreClient } from '../../../store/client/index.js';
import { http, obj } from './http.js';

/** Several loops writing `prefix/<n>` = `v<n>` through one StoreClient until stopped. */
export class Writers {
  /** key -> value of every write the store acknowledged. */
  readonly acked = new Map<string, string>();
  /** Keys whose write failed with an unknown outcome (timeout, unavailable). */
  readonly unknown = new Map<string, string>();
  private next = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly client: StoreClient,
    readonly prefix: string,
    private readonly concurrency: number,
  ) {}

  start(): this {
    this.loops = Array.from({ length: this.concurrency }, () => this.loop());
    return this;
  }

  /** Stops issuing writes and waits for the ones in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const n = this.next++;
      const key = `${this.prefix}/${String(n).padStart(6, '0')}`;
      const value = `v${n}`;
      try {
        await this.client.put(key, value);
        this.acked.set(key, value);
      } catch (e) {
        this.unknown.set(key, String(e));
      }
    }
  }
}

/** Every key under `prefix` through one node, paging with `after`; linearizable unless `serializable`. */
export async function scan(base: string, prefix: string, opts: { serializable?: boolean; timeoutMs?: number } = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let after: string | undefined;
  for (;;) {
    const q = new URLSearchParams({ prefix, limit: '5000' });
    if (after !== undefined) q.set('after', after);
    if (opts.serializable) q.set('consistency', 'serializable');
    const reply = await http(base, 'GET', `/v1/kv?${q.toString()}`, { timeoutMs: opts.timeoutMs ?? 10_000 });
    if (reply.status !== 200) throw new Error(`scan ${prefix} on ${base}: ${reply.status} ${reply.text.slice(0, 200)}`);
    const page = obj(reply);
    const kvs = page['kvs'] as { key: string; value: string }[];
    for (const kv of kvs) out.set(kv.key, kv.value);
    if (page['more'] !== true || kvs.length === 0) return out;
    after = kvs[kvs.length - 1]?.key;
  }
}

/** Acknowledged writes that `seen` lacks or holds with another value (at most `max` listed). */
export function missingWrites(acked: ReadonlyMap<string, string>, seen: ReadonlyMap<string, string>, max = 10): { count: number; sample: string[] } {
  const sample: string[] = [];
  let count = 0;
  for (const [key, value] of acked) {
    const got = seen.get(key);
    if (got === value) continue;
    count++;
    if (sample.length < max) sample.push(`${key}: want ${value}, got ${got ?? 'nothing'}`);
  }
  return { count, sample };
}
