/**
 * Goal: prove the watch contract on a real cluster of processes. A watcher
 * (StoreClient.watch on a prefix) sees every one of 10,000 concurrent writes
 * exactly once and in strictly increasing revision order while the leader it
 * is connected to is killed -9 and restarted mid-stream; a fromRevision older
 * than the kept history gets 410 compacted with oldestRevision (the same on
 * every node, including the restarted one that restored from a snapshot);
 * and resuming from a revision on a different node (fromRevision or
 * Last-Event-ID) gives exactly the events after it.
 *
 * Nodes run with --watch-history-events 5000 (a small history, so 10,000
 * writes compact it) and --snapshot-every 3000 (so the killed leader restarts
 * from a snapshot). Ports 35000-35002 / 35100-35102.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { StoreClient, StoreError, type WatchEvent } from '../../store/client/client.js';
import { StoreCluster } from '../support/store-cluster.js';
import { now, testSeed, waitFor } from './support/poll.js';
import { collectWatch } from './support/sse.js';

const BASE_PORT = 35000;
const TOTAL = 10_000;
const WRITERS = 32;
const HISTORY = 5000;
const PREFIX = 'wt/';
const SENTINEL = `${PREFIX}~end`;

const seed = testSeed();
const rng = new SeededRandom(seed);
console.log(`[store2/watch] seed ${seed} (rerun with STORE_TEST_SEED=${seed})`);

/** Every watch connection the client makes, seen through a pass-through fetch. */
const watchConnects: { startedAt: number; at: number; url: string; status: number | 'error' }[] = [];
const realFetch = globalThis.fetch;

let cluster: StoreCluster;
let failed = false;
/** What the main watcher delivered, with arrival times. */
const seen: { ev: WatchEvent; at: number }[] = [];
let acks = new Map<string, { value: string; revision: number }>();
let sentinelRevision = 0;
/** The two later tests read what the first one wrote and saw. */
let mainDone = false;

beforeAll(async () => {
  globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.includes('/v1/watch')) return realFetch(input, init);
    const startedAt = now();
    try {
      const res = await realFetch(input, init);
      watchConnects.push({ startedAt, at: now(), url, status: res.status });
      return res;
    } catch (e) {
      watchConnects.push({ startedAt, at: now(), url, status: 'error' });
      throw e;
    }
  }) as typeof fetch;
  cluster = new StoreCluster({
    name: 'watch',
    basePort: BASE_PORT,
    founders: 3,
    extraArgs: ['--watch-history-events', String(HISTORY), '--snapshot-every', '3000'],
  });
  await cluster.startFounders();
}, 120_000);

afterAll(async () => {
  globalThis.fetch = realFetch;
  if (failed) console.error(cluster?.logTails());
  await cluster?.destroy(failed);
});

describe('watch across a leader kill -9 and restart', () => {
  it('sees each of 10,000 concurrent writes exactly once, in revision order', async () => {
    try {
      const leader = await cluster.waitLeader();
      const others = cluster.ids.filter((id) => id !== leader);
      const startRev = (await cluster.status(leader))?.revision;
      expect(startRev).toBeTypeOf('number');

      // The watcher connects to the leader first, so the kill forces a resume elsewhere.
      const watcher = new StoreClient({ endpoints: [cluster.url(leader), ...others.map((id) => cluster.url(id))] });
      const ac = new AbortController();
      let watchError: unknown;
      const watchLoop = (async () => {
        for await (const ev of watcher.watch({ prefix: PREFIX }, { fromRevision: (startRev as number) + 1, signal: ac.signal })) {
          seen.push({ ev, at: now() });
        }
      })().catch((e: unknown) => {
        watchError = e;
      });
      await waitFor('the watch connection', 10_000, () => watchConnects.some((c) => c.status === 200), 10);

      // Leader first, so writes skip the forwarding hop until the kill (then the client finds the new one).
      const writer = new StoreClient({ endpoints: [leader, ...others].map((id) => cluster.url(id)), deadlineMs: 30_000, maxAttempts: 200 });
      const killAt = 3500 + rng.int(2000);
      let acked = 0;
      let next = 0;
      acks = new Map();
      const t0 = now();
      let tWritesDone = 0;
      const writes = Promise.all(
        Array.from({ length: WRITERS }, async () => {
          for (;;) {
            const i = next++;
            if (i >= TOTAL) return;
            const key = `${PREFIX}${String(i).padStart(5, '0')}`;
            const value = `v${i}`;
            const r = await writer.put(key, value);
            acks.set(key, { value, revision: r.revision });
            acked++;
          }
        }),
      ).then(() => {
        tWritesDone = now();
      });

      const chaos = (async () => {
        await waitFor(`${killAt} acknowledged writes`, 150_000, () => acked >= killAt, 2);
        const snaps = readdirSync(join(cluster.dataDir, leader, 'snap'));
        const tKill = now();
        const ackedAtKill = acked;
        await cluster.kill9(leader);
        const newLeader = await cluster.waitLeader(others, 15_000);
        const tLeader = now();
        await cluster.restart(leader);
        return { tKill, ackedAtKill, newLeader, tLeader, tRestarted: now(), ackedAtRestart: acked, snapshotsAtKill: snaps.length };
      })();
      // Whichever fails first fails the test.
      const [c] = await Promise.all([chaos, writes]);
      expect(acks.size).toBe(TOTAL);
      // The kill and the restart both happened while writes were still flowing.
      expect(c.ackedAtKill).toBeLessThan(TOTAL);
      expect(c.ackedAtRestart).toBeLessThan(TOTAL);
      // The killed leader had a snapshot on disk: its restart restored from it.
      expect(c.snapshotsAtKill).toBeGreaterThan(0);

      // A barrier: once the watcher sees a write made after all others were acknowledged,
      // it has been sent everything before it.
      sentinelRevision = (await writer.put(SENTINEL, 'end')).revision;
      await waitFor('the watcher to see the sentinel', 30_000, () => seen.some((s) => s.ev.key === SENTINEL) || watchError !== undefined, 10);
      expect(watchError).toBeUndefined();

      // Exactly once: one event per write plus the sentinel, key -> value as written.
      expect(seen.length).toBe(TOTAL + 1);
      const byKey = new Map<string, WatchEvent>();
      for (const { ev } of seen) {
        expect(byKey.has(ev.key), `duplicate event for ${ev.key}`).toBe(false);
        byKey.set(ev.key, ev);
      }
      for (const [key, ack] of acks) {
        const ev = byKey.get(key);
        expect(ev, `no event for ${key}`).toBeDefined();
        expect(ev?.type).toBe('put');
        expect(ev?.value).toBe(ack.value);
        // The revision the write was acknowledged with is the one the watcher saw.
        expect(ev?.revision).toBe(ack.revision);
      }
      // In order: strictly increasing revisions, with no gap (every revision is one of ours).
      for (let i = 1; i < seen.length; i++) {
        expect((seen[i] as { ev: WatchEvent }).ev.revision).toBe((seen[i - 1] as { ev: WatchEvent }).ev.revision + 1);
      }
      expect(seen[seen.length - 1]?.ev.revision).toBe(sentinelRevision);

      // The resume: the watcher reconnected to another node after the kill.
      const reconnect = watchConnects.find((w) => w.at > c.tKill && w.status === 200);
      expect(reconnect, 'a watch reconnect after the kill').toBeDefined();
      expect(reconnect?.url.startsWith(cluster.url(leader))).toBe(false);
      const firstAfter = seen.find((s) => s.at >= (reconnect as { at: number }).at);
      const lastBefore = [...seen].reverse().find((s) => s.at <= c.tKill);
      console.log(
        `[store2/watch] ${TOTAL} writes by ${WRITERS} writers in ${(tWritesDone - t0).toFixed(0)} ms; ` +
          `killed leader ${leader} at ${c.ackedAtKill} acked (snapshots on disk: ${c.snapshotsAtKill}); ` +
          `new leader ${c.newLeader} seen after ${(c.tLeader - c.tKill).toFixed(0)} ms; ` +
          `watch reconnect to ${reconnect?.url.slice(7, 22)} sent after ${((reconnect as { startedAt: number }).startedAt - c.tKill).toFixed(0)} ms, answered after ${((reconnect as { at: number }).at - c.tKill).toFixed(0)} ms; ` +
          `first event on the new connection after ${firstAfter ? (firstAfter.at - c.tKill).toFixed(0) : '?'} ms ` +
          `(revision ${firstAfter?.ev.revision}, last before the kill ${lastBefore?.ev.revision}); ` +
          `${leader} restarted ${(c.tRestarted - c.tKill).toFixed(0)} ms after the kill, at ${c.ackedAtRestart} acked; ` +
          `watch connections: ${watchConnects.length}`,
      );

      // The restarted node catches up to the same revision.
      await waitFor('every node at the sentinel revision', 20_000, async () => {
        const sts = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
        return sts.every((s) => s !== undefined && s.revision === sentinelRevision);
      });
      ac.abort();
      await watchLoop;
      mainDone = true;
    } catch (e) {
      failed = true;
      throw e;
    }
  }, 300_000);

  it('answers 410 compacted with oldestRevision for a start older than the kept history, on every node', async () => {
    try {
      expect(mainDone, 'needs the 10,000 writes of the first test').toBe(true);
      const oldest: number[] = [];
      for (const id of cluster.ids) {
        const res = await fetch(`${cluster.url(id)}/v1/watch?prefix=${encodeURIComponent(PREFIX)}&fromRevision=1`);
        expect(res.status).toBe(410);
        const body = (await res.json()) as { error: { code: string; oldestRevision: number; currentRevision: number } };
        expect(body.error.code).toBe('compacted');
        expect(body.error.currentRevision).toBe(sentinelRevision);
        // Exactly HISTORY events kept (one event per revision here).
        expect(body.error.oldestRevision).toBe(sentinelRevision - HISTORY + 1);
        oldest.push(body.error.oldestRevision);
      }
      expect(new Set(oldest).size).toBe(1);
      const oldestRevision = oldest[0] as number;
      const url = cluster.url(cluster.ids[0] as string);
      // One before the oldest: compacted; the oldest itself: served, starting exactly there.
      const before = await fetch(`${url}/v1/watch?prefix=${encodeURIComponent(PREFIX)}&fromRevision=${oldestRevision - 1}`);
      expect(before.status).toBe(410);
      await before.arrayBuffer();
      const first = await collectWatch(`${url}/v1/watch?prefix=${encodeURIComponent(PREFIX)}&fromRevision=${oldestRevision}`, {}, (evs) => evs.length >= 1, 10_000);
      expect(first[0]?.revision).toBe(oldestRevision);
      // The client surfaces it as a StoreError, not a silent gap.
      const client = new StoreClient({ endpoints: [url] });
      const it = client.watch({ prefix: PREFIX }, { fromRevision: 1 });
      const err = await it.next().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('compacted');
      expect((err as StoreError).details['oldestRevision']).toBe(oldestRevision);
      console.log(`[store2/watch] 410 compacted below revision ${oldestRevision} on all ${cluster.ids.length} nodes (current ${sentinelRevision})`);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  it('resumes from a revision on a different node with exactly the events after it', async () => {
    try {
      expect(mainDone, 'needs the 10,000 writes of the first test').toBe(true);
      const resumeFrom = (seen[seen.length - 3000] as { ev: WatchEvent }).ev.revision;
      const expected = seen.filter((s) => s.ev.revision >= resumeFrom).map((s) => ({ type: s.ev.type, key: s.ev.key, value: s.ev.value, revision: s.ev.revision }));
      const reachedEnd = (evs: readonly { revision: number }[]): boolean => (evs[evs.length - 1]?.revision ?? 0) >= sentinelRevision;
      const [a, b, c] = cluster.ids as [string, string, string];
      // fromRevision on one node, Last-Event-ID (the last revision seen) on another, the client on a third.
      const viaFrom = await collectWatch(`${cluster.url(a)}/v1/watch?prefix=${encodeURIComponent(PREFIX)}&fromRevision=${resumeFrom}`, {}, reachedEnd, 20_000);
      const viaLastId = await collectWatch(`${cluster.url(b)}/v1/watch?prefix=${encodeURIComponent(PREFIX)}`, { 'last-event-id': String(resumeFrom - 1) }, reachedEnd, 20_000);
      const strip = (evs: readonly { type: string; key: string; value: string | null; revision: number }[]): unknown[] =>
        evs.map((e) => ({ type: e.type, key: e.key, value: e.value, revision: e.revision }));
      expect(strip(viaFrom)).toEqual(expected);
      expect(strip(viaLastId)).toEqual(expected);
      const client = new StoreClient({ endpoints: [cluster.url(c)] });
      const ac = new AbortController();
      const viaClient: WatchEvent[] = [];
      for await (const ev of client.watch({ prefix: PREFIX }, { fromRevision: resumeFrom, signal: ac.signal })) {
        viaClient.push(ev);
        if (ev.revision >= sentinelRevision) ac.abort();
      }
      expect(strip(viaClient)).toEqual(expected);
      console.log(`[store2/watch] resumed from revision ${resumeFrom} on ${a} (fromRevision), ${b} (Last-Event-ID) and ${c} (client): ${expected.length} events each, identical`);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
