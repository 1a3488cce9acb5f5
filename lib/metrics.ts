/**
 * Metrics on prom-client, behind the small facade the services use:
 * counters, counters and gauges read at scrape time, and histograms.
 *
 * Each `MetricsRegistry` owns its own prom-client `Registry`, never the
 * global one: tests and the simulation run several services in one process,
 * and two services must never share a counter. A standalone process adds
 * the default process metrics (`collectProcessMetrics`); a library embedded
 * in a host service (the participant) leaves them out, so the host can merge
 * it into its own `/metrics`:
 *
 *   import { Registry } from 'prom-client';
 *   const merged = Registry.merge([hostRegistry, participant.metrics.registry]);
 *   app.get('/metrics', async (_req, res) => res.type(merged.contentType).send(await merged.metrics()));
 *
 * Conventions: counters end in `_total`; latencies are histograms in
 * seconds (`LATENCY_BUCKETS_S`).
 */
import client from 'prom-client';

export type PromRegistry = client.Registry;

export class Counter {
  constructor(private readonly metric: client.Counter) {}

  inc(by = 1): void {
    this.metric.inc(by);
  }
}

export class Histogram {
  constructor(private readonly metric: client.Histogram) {}

  /** `value` in the metric's unit (seconds for latencies). */
  observe(value: number): void {
    this.metric.observe(value);
  }
}

/** Latency buckets in seconds, from 1 ms to 10 s. */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export interface MetricsRegistryOptions {
  /** Add the default process metrics (CPU, memory, event loop, GC) now; default false. */
  readonly processMetrics?: boolean;
}

export class MetricsRegistry {
  /** The prom-client registry behind this one: merge it, or serve it with its own content type. */
  readonly registry: PromRegistry = new client.Registry();
  private processMetrics = false;

  constructor(opts: MetricsRegistryOptions = {}) {
    if (opts.processMetrics === true) this.collectProcessMetrics();
  }

  counter(name: string, help: string): Counter {
    assertCounterName(name);
    return new Counter(new client.Counter({ name, help, registers: [this.registry] }));
  }

  /** A counter kept elsewhere as a plain number, read at each scrape; `read` must never decrease. */
  counterFrom(name: string, help: string, read: () => number): void {
    assertCounterName(name);
    let seen = 0;
    new client.Counter({
      name,
      help,
      registers: [this.registry],
      collect(this: client.Counter) {
        const now = read();
        if (now > seen) this.inc(now - seen);
        seen = Math.max(seen, now);
      },
    });
  }

  gauge(name: string, help: string, read: () => number): void {
    if (name.endsWith('_total')) throw new Error(`gauge ${name}: a name ending in _total is a counter's`);
    new client.Gauge({
      name,
      help,
      registers: [this.registry],
      collect(this: client.Gauge) {
        this.set(read());
      },
    });
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_S): Histogram {
    for (let i = 1; i < buckets.length; i++) if (!((buckets[i] as number) > (buckets[i - 1] as number))) throw new Error(`histogram ${name}: buckets must ascend`);
    return new Histogram(new client.Histogram({ name, help, buckets: [...buckets], registers: [this.registry] }));
  }

  /** The default process metrics (`process_cpu_seconds_total`, ...); for a standalone process only. Idempotent. */
  collectProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    client.collectDefaultMetrics({ register: this.registry });
  }

  /** The `Content-Type` a `/metrics` answer carries. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

function assertCounterName(name: string): void {
  if (!name.endsWith('_total')) throw new Error(`counter ${name}: a counter's name ends in _total`);
}

/** Parses the text format back into `name{labels}` -> value (labels as written); for tests and tools. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}
