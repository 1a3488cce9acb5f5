/**
 * Goal: what `/metrics` says is Prometheus-correct and can be combined.
 * Counters end in `_total` (and a gauge may not), histograms keep their
 * buckets, a counter read at scrape time never goes backwards, registries
 * are per service (never the global one), a standalone service carries the
 * default process metrics, and a participant's registry merges into its
 * host's without a name conflict.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { register as globalRegistry, Registry } from 'prom-client';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { makeCoordinatorConfig } from '../../coordinator/runtime/config.js';
import { CoordinatorServer } from '../../coordinator/service/server.js';
import { MemoryTxStore } from '../../coordinator/txstore/index.js';
import { silentLogger } from '../../lib/logger.js';
import { MetricsRegistry, parseMetrics } from '../../lib/metrics.js';
import { ParticipantNode } from '../../participant/participant.js';
import { participantApp } from '../../participant/routes.js';
import { RecordingService } from '../twopc/support/inprocess.js';

const dir = mkdtempSync(join(tmpdir(), 'metrics-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `# TYPE name kind` lines of a text exposition, as name -> kind. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

async function openParticipant(name: string): Promise<ParticipantNode> {
  return ParticipantNode.open({ name, store: new MemoryTxStore(), logPath: join(dir, `${name}.log`), service: new RecordingService(), logger: silentLogger });
}

describe('MetricsRegistry', () => {
  it('renders counters, gauges and histograms with their types, buckets and values', async () => {
    const r = new MetricsRegistry();
    const c = r.counter('jobs_done_total', 'Jobs done.');
    c.inc();
    c.inc(2);
    r.gauge('queue_depth', 'Jobs waiting.', () => 7);
    const h = r.histogram('job_latency_seconds', 'Job latency.', [0.1, 1]);
    for (const v of [0.05, 0.5, 5]) h.observe(v);
    const text = await r.render();
    expect(types(text)).toEqual(new Map([['jobs_done_total', 'counter'], ['queue_depth', 'gauge'], ['job_latency_seconds', 'histogram']]));
    const m = parseMetrics(text);
    expect(m.get('jobs_done_total')).toBe(3);
    expect(m.get('queue_depth')).toBe(7);
    expect(m.get('job_latency_seconds_bucket{le="0.1"}')).toBe(1);
    expect(m.get('job_latency_seconds_bucket{le="1"}')).toBe(2);
    expect(m.get('job_latency_seconds_bucket{le="+Inf"}')).toBe(3);
    expect(m.get('job_latency_seconds_count')).toBe(3);
    expect(m.get('job_latency_seconds_sum')).toBeCloseTo(5.55);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('refuses a counter without _total, a gauge with it, a name twice, and buckets out of order', () => {
    const r = new MetricsRegistry();
    expect(() => r.counter('jobs_done', 'x')).toThrow(/_total/);
    expect(() => r.gauge('skipped_total', 'x', () => 0)).toThrow(/_total/);
    r.counter('a_total', 'x');
    expect(() => r.counter('a_total', 'again')).toThrow();
    expect(() => r.histogram('b_seconds', 'x', [1, 0.5])).toThrow(/ascend/);
  });

  it('a counter read at scrape time follows its source and never goes backwards', async () => {
    const r = new MetricsRegistry();
    let source = 2;
    r.counterFrom('hints_skipped_total', 'Skipped.', () => source);
    expect(types(await r.render()).get('hints_skipped_total')).toBe('counter');
    expect(parseMetrics(await r.render()).get('hints_skipped_total')).toBe(2);
    source = 5;
    expect(parseMetrics(await r.render()).get('hints_skipped_total')).toBe(5);
    source = 1; // a source that went back (reset) does not take the counter with it
    expect(parseMetrics(await r.render()).get('hints_skipped_total')).toBe(5);
  });

  it('never touches the global prom-client registry; two registries keep separate counts', async () => {
    const a = new MetricsRegistry();
    const b = new MetricsRegistry();
    a.counter('same_total', 'x').inc(4);
    b.counter('same_total', 'x').inc(1);
    expect(parseMetrics(await a.render()).get('same_total')).toBe(4);
    expect(parseMetrics(await b.render()).get('same_total')).toBe(1);
    expect(globalRegistry.getSingleMetric('same_total')).toBeUndefined();
  });
});

describe('service metrics', () => {
  it('the coordinator server carries the process metrics and correct 2PC metric types, on /metrics with the registry content type', async () => {
    const server = new CoordinatorServer({ config: makeCoordinatorConfig({ id: 'm1' }), store: new MemoryTxStore(), log: silentLogger });
    const res = await request(server.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(server.service.metrics.contentType);
    const t = types(res.text);
    expect(t.get('process_cpu_seconds_total')).toBe('counter');
    expect(t.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(t.get('twopc_hints_skipped_total')).toBe('counter');
    expect(t.get('twopc_commit_latency_seconds')).toBe('histogram');
    expect(t.get('twopc_live_transactions')).toBe('gauge');
    // Every counter of ours is named so, and nothing else is (prom-client's own nodejs_active_resources_total is a gauge).
    const ours = [...t].filter(([name]) => name.startsWith('twopc_'));
    expect(ours.length).toBeGreaterThan(10);
    for (const [name, kind] of ours) expect(`${name} ${kind}`).toMatch(name.endsWith('_total') ? / counter$/ : / (gauge|histogram)$/);
    expect(parseMetrics(res.text).get('twopc_commit_latency_seconds_bucket{le="0.001"}')).toBe(0);
    await server.stop();
  });

  it('a participant registry has no process metrics and merges into a host registry without a conflict', async () => {
    const node = await openParticipant('bank-a');
    const host = new MetricsRegistry({ processMetrics: true });
    host.counter('host_requests_total', 'Host requests.').inc(9);
    const merged = Registry.merge([host.registry, node.metrics.registry]);
    const app = express();
    app.get('/metrics', (_req, res) => void merged.metrics().then((text) => res.type(merged.contentType).send(text)));
    const res = await request(app).get('/metrics');
    const t = types(res.text);
    expect(t.get('process_cpu_seconds_total')).toBe('counter'); // the host's, once
    expect(t.get('host_requests_total')).toBe('counter');
    expect(t.get('twopc_participant_votes_yes_total')).toBe('counter');
    expect(t.get('twopc_participant_in_doubt')).toBe('gauge');
    expect(res.text.match(/^# TYPE process_cpu_seconds_total /gm)).toHaveLength(1);
    expect(types(await node.metrics.render()).has('process_cpu_seconds_total')).toBe(false);
    await node.stop();
  });

  it('the participant serves its own metrics, even before recovery, with the registry content type', async () => {
    const node = await openParticipant('bank-b');
    const res = await request(participantApp(node)).get('/v1/participant/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(node.metrics.contentType);
    const m = parseMetrics(res.text);
    expect(m.get('twopc_participant_open_transactions')).toBe(0);
    // The log's size is exported, so its bound can be watched.
    expect(m.get('twopc_participant_log_records')).toBe(0);
    expect(m.get('twopc_participant_log_bytes')).toBeGreaterThan(0); // its header line
    expect(m.get('twopc_participant_log_memory_bytes')).toBe(0);
    expect(m.get('twopc_participant_log_retained_bytes')).toBe(0);
    await node.stop();
  });
});
