/**
 * Back-pressure from the store's fill level: the coordinator refuses new
 * begins (429 store_nearly_full, Retry-After) while the store holds more
 * than `storeHighWaterPercent` of its quota, or its NOSPACE alarm is raised,
 * so the store never fills with transactions that then cannot finish.
 * Transactions already begun are never refused: only begin asks.
 *
 * Where the usage comes from:
 * - the built-in store: `GET /v1/status` (storeBytes, quotaBytes, alarms);
 * - etcd: `POST /v3/maintenance/status` on its gRPC gateway (dbSize, the
 *   bbolt file's size, which is what etcd's quota limits) against
 *   `storeQuotaBytes` (etcd does not report its --quota-backend-bytes).
 *
 * The usage is read at most every `storeUsageCheckMs`, in the background: a
 * begin never waits for it, except a begin about to be refused on a stale
 * reading, which reads again first (so deletes are noticed at once).
 */
import { AppError } from '../../lib/errors.js';
import type { HttpRequester } from '../../lib/http-client.js';
import { tlsHttpClient } from '../../lib/tls.js';
import type { Timers } from '../../lib/timers.js';
import type { StoreSpec } from '../txstore/index.js';

export interface StoreUsage {
  readonly usedBytes: number;
  readonly quotaBytes: number;
  /** True while the store refuses growing writes (the built-in store's NOSPACE alarm). */
  readonly alarm: boolean;
}

/** Reads the store's usage; undefined when it cannot tell (then nothing is refused). */
export type StoreUsageSource = () => Promise<StoreUsage | undefined>;

const PROBE_TIMEOUT_MS = 1_000;

async function postOrGet(http: HttpRequester, url: string, body?: unknown): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await http.request({
      method: body === undefined ? 'GET' : 'POST',
      url,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return res.status === 200 ? (JSON.parse(res.text) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The usage source for a store spec: the first endpoint that answers (https with the process's CA, lib/tls.ts). */
export function storeUsageSource(spec: StoreSpec, etcdQuotaBytes: number): StoreUsageSource {
  // Idle keep-alive sockets do not hold the process open, so this client is never closed.
  const http = tlsHttpClient({ requestTimeoutMs: PROBE_TIMEOUT_MS });
  return async () => {
    for (const endpoint of spec.endpoints) {
      if (spec.kind === 'builtin') {
        const st = await postOrGet(http, `${endpoint}/v1/status`);
        if (st === undefined || typeof st['storeBytes'] !== 'number' || typeof st['quotaBytes'] !== 'number') continue;
        return { usedBytes: st['storeBytes'], quotaBytes: st['quotaBytes'], alarm: Array.isArray(st['alarms']) && st['alarms'].length > 0 };
      }
      const st = await postOrGet(http, `${endpoint}/v3/maintenance/status`, {});
      const dbSize = Number(st?.['dbSize']);
      if (st === undefined || !Number.isFinite(dbSize)) continue;
      return { usedBytes: dbSize, quotaBytes: etcdQuotaBytes, alarm: false };
    }
    return undefined;
  };
}

export interface BackPressureOptions {
  readonly source: StoreUsageSource;
  readonly highWaterPercent: number;
  readonly checkMs: number;
  readonly timers: Timers;
}

export class BackPressure {
  private usage: StoreUsage | undefined;
  private readAtMs = -Infinity;
  private reading: Promise<void> | undefined;
  /** Begins refused. */
  refused = 0;

  constructor(private readonly opts: BackPressureOptions) {}

  /** The last reading (undefined before the first, or when the store could not tell). */
  get last(): StoreUsage | undefined {
    return this.usage;
  }

  /** Throws 429 store_nearly_full when the store is above its high-water mark. */
  async checkBegin(): Promise<void> {
    if (this.stale()) void this.refresh();
    if (!this.over()) return;
    // About to refuse: make sure on a fresh reading (deletes may have made room).
    if (this.opts.timers.nowMs() - this.readAtMs > this.opts.checkMs / 4) await this.refresh();
    if (!this.over()) return;
    this.refused++;
    const u = this.usage as StoreUsage;
    const retryAfterS = Math.max(1, Math.ceil(this.opts.checkMs / 1000));
    throw new AppError(
      'store_nearly_full',
      429,
      `the store holds ${u.usedBytes} of its ${u.quotaBytes} bytes${u.alarm ? ' and its NOSPACE alarm is raised' : `, above the high-water mark of ${this.opts.highWaterPercent}%`}: new transactions are refused until it has room (transactions already begun go on)`,
      // retryAfterSeconds becomes the Retry-After header (lib/express.ts).
      { usedBytes: u.usedBytes, quotaBytes: u.quotaBytes, highWaterPercent: this.opts.highWaterPercent, alarm: u.alarm, retryAfterSeconds: retryAfterS },
    );
  }

  private over(): boolean {
    const u = this.usage;
    if (u === undefined) return false;
    return u.alarm || u.usedBytes * 100 > u.quotaBytes * this.opts.highWaterPercent;
  }

  private stale(): boolean {
    return this.opts.timers.nowMs() - this.readAtMs >= this.opts.checkMs;
  }

  /** One reading at a time; a failed one keeps the previous reading. */
  refresh(): Promise<void> {
    this.reading ??= this.opts
      .source()
      .then((u) => {
        if (u !== undefined) this.usage = u;
      })
      .catch(() => undefined)
      .finally(() => {
        this.readAtMs = this.opts.timers.nowMs();
        this.reading = undefined;
      });
    return this.reading;
  }
}
