/**
 * A minimal Prometheus registry (text exposition format 0.0.4): counters,
 * gauges read at scrape time, and histograms with fixed buckets. Enough for
 * the coordinator's and participant's `/metrics`, with no dependency.
 */
export class Counter {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** `buckets`: upper bounds in the metric's unit (seconds for latencies), ascending. */
  constructor(readonly buckets: readonly number[]) {
    for (let i = 1; i < buckets.length; i++) if (!((buckets[i] as number) > (buckets[i - 1] as number))) throw new Error('histogram buckets must ascend');
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) this.counts[i] = (this.counts[i] as number) + 1;
  }

  render(name: string): string[] {
    const lines = this.buckets.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i] as number}`);
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines;
  }
}

/** Latency buckets in seconds, from 1 ms to 10 s. */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

type Entry =
  | { readonly kind: 'counter'; readonly help: string; readonly metric: Counter }
  | { readonly kind: 'gauge'; readonly help: string; readonly read: () => number }
  | { readonly kind: 'histogram'; readonly help: string; readonly metric: Histogram };

export class MetricsRegistry {
  private readonly entries = new Map<string, Entry>();

  counter(name: string, help: string): Counter {
    const metric = new Counter();
    this.add(name, { kind: 'counter', help, metric });
    return metric;
  }

  gauge(name: string, help: string, read: () => number): void {
    this.add(name, { kind: 'gauge', help, read });
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_S): Histogram {
    const metric = new Histogram(buckets);
    this.add(name, { kind: 'histogram', help, metric });
    return metric;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, e] of this.entries) {
      lines.push(`# HELP ${name} ${e.help}`, `# TYPE ${name} ${e.kind}`);
      if (e.kind === 'counter') lines.push(`${name} ${e.metric.value}`);
      else if (e.kind === 'gauge') lines.push(`${name} ${e.read()}`);
      else lines.push(...e.metric.render(name));
    }
    return lines.join('\n') + '\n';
  }

  private add(name: string, e: Entry): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    if (this.entries.has(name)) throw new Error(`metric ${name} registered twice`);
    this.entries.set(name, e);
  }
}

/** Parses the text format back into name -> value (no labels except histogram buckets); for tests and tools. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}
