/**
 * The few messages between the benchmark driver and the coordinator and
 * participant processes it starts (Node's IPC channel: no extra port, and a
 * child learns at once when the driver dies). A child says `ready` once it
 * serves; on `report` it answers with its store call counts and metrics.
 */
import { parseMetrics } from '../../lib/metrics.js';
import type { CallCounts } from './counting-store.js';

export interface ChildReport {
  readonly counts: CallCounts;
  /** The process's Prometheus metrics, name -> value. */
  readonly metrics: Readonly<Record<string, number>>;
}

export type ToChild = { readonly type: 'report'; readonly seq: number };

export type FromChild =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'report'; readonly seq: number; readonly report: ChildReport };

/** Child side: answers reports, and exits when the driver is gone (nothing else would stop it). */
export function serveReports(report: () => { counts: CallCounts; metricsText: Promise<string> }, onDriverGone: () => void): void {
  process.on('message', (m: ToChild) => {
    if (m.type !== 'report') return;
    const r = report();
    const counts = { ...r.counts };
    void r.metricsText.then((text) => {
      const reply: FromChild = { type: 'report', seq: m.seq, report: { counts, metrics: Object.fromEntries(parseMetrics(text)) } };
      process.send?.(reply);
    });
  });
  process.on('disconnect', onDriverGone);
}

export function sendReady(port: number): void {
  const m: FromChild = { type: 'ready', port };
  process.send?.(m);
}
