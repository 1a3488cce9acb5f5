/**
 * Goal: a real 3-node cluster with `--engine lmdb` (the live keys on disk in
 * <data-dir>/kv) behaves as the in-memory one: it serves writes, a node
 * killed with SIGKILL and restarted holds every acknowledged write, a
 * follower that falls behind past the leader's compaction catches up by
 * a snapshot streamed from the leader's engine, and the keys a node serves are the ones in its LMDB files. A
 * restarted node reopens its store and skips the log it had applied.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreClient } from '../../store/client/index.js';
import { LmdbKeyStore } from '../../store/engine/lmdb-keyspace.js';
import { defaultNodeConfig } from '../../store/node/config.js';
import { TestCluster, useTestCluster } from '../store/support/cluster.js';
import { waitFor } from '../store/support/poll.js';
import { Writers, missingWrites, scan } from '../store/support/workload.js';

const BASE_PORT = 39400;
/** The cluster snapshots (and compacts its log) every this many applied entries. */
const SNAPSHOT_EVERY = 200;
const SNAPSHOT_KEEP_ENTRIES = defaultNodeConfig.snapshotKeepEntries;

let tc: TestCluster;
useTestCluster(
  { name: 'lmdb-engine', basePort: BASE_PORT, extraArgs: ['--engine', 'lmdb', '--snapshot-every', String(SNAPSHOT_EVERY)] },
  (c) => (tc = c),
  (c) => c.ensureAllRunning(),
);

function client(): StoreClient {
  return new StoreClient({ endpoints: tc.endpoints, requestTimeoutMs: 1_000, deadlineMs: 10_000, maxAttempts: 100 });
}

async function ackedGrows(writers: Writers, more: number, what: string, timeoutMs = 30_000): Promise<void> {
  const target = writers.acked.size + more;
  await waitFor(`${what}: ${target} acknowledged writes (have ${writers.acked.size})`, timeoutMs, () => writers.acked.size >= target);
}

/** The last "storage opened" line of a node's log: where its snapshot and its reopened state stood. */
function lastStorageOpened(log: string): { snapshotIndex: number; stateAppliedIndex: number } | undefined {
  const line = log
    .split('\n')
    .filter((l) => l.includes('"storage opened"'))
    .pop();
  return line === undefined ? undefined : (JSON.parse(line) as { snapshotIndex: number; stateAppliedIndex: number });
}

/** Waits until node `id` holds every acknowledged write in its own replica (serializable reads). */
async function caughtUp(id: string, writers: Writers, timeoutMs: number): Promise<void> {
  let last = '';
  try {
    await waitFor(`${id} to hold all ${writers.acked.size} acknowledged ${writers.prefix}/ writes`, timeoutMs, async () => {
      const m = missingWrites(writers.acked, await scan(tc.url(id), `${writers.prefix}/`, { serializable: true }));
      last = `${m.count} missing, e.g. ${m.sample.slice(0, 3).join('; ')}`;
      return m.count === 0;
    }, 200);
  } catch (e) {
    throw new Error(`${String(e)}; last check: ${last}`);
  }
}

describe('--engine lmdb on a 3-node cluster', () => {
  it('serves writes and keeps its keys in <data-dir>/kv', async () => {
    const c = client();
    await c.put('hello', 'world');
    expect((await c.get('hello'))?.value).toBe('world');
    for (const id of tc.ids) expect(existsSync(join(tc.dataDir, id, 'kv', 'data.mdb')), `${id}/kv/data.mdb`).toBe(true);
  });

  it('kill -9 of the leader, then of a follower, under writes: every acknowledged write survives on every node', async () => {
    const writers = new Writers(client(), 'lk', 4).start();
    let oldLeader = '';
    let follower = '';
    try {
      await ackedGrows(writers, 50, 'writes before the kill');
      oldLeader = await tc.leader();
      await tc.kill9(oldLeader);
      await ackedGrows(writers, 50, 'writes after the leader was killed');
      await tc.restart(oldLeader);
      const { followers } = await tc.followers();
      follower = followers.find((id) => id !== oldLeader) ?? (followers[0] as string);
      await tc.kill9(follower);
      await ackedGrows(writers, 50, `writes while ${follower} is down`);
      await tc.restart(follower);
      await ackedGrows(writers, 50, `writes after ${follower} restarted`);
      // The restarted follower reopened its store at its applied index: the log it had applied came again and was skipped,
      // unless it had applied nothing past its last snapshot when killed (then nothing comes again: the log starts there).
      const opened = lastStorageOpened(tc.log(follower));
      expect(opened, `${follower} logged how it opened its storage`).toBeDefined();
      if (opened!.stateAppliedIndex > opened!.snapshotIndex) {
        expect(await tc.metric(follower, 'store_skipped_entries_total'), `${follower} skipped what its store held (${JSON.stringify(opened)})`).toBeGreaterThan(0);
      }
    } finally {
      await writers.stop();
    }
    for (const id of tc.ids) await caughtUp(id, writers, 30_000);
    for (const id of tc.ids) {
      const seen = await scan(tc.url(id), 'lk/');
      const phantom = [...seen.keys()].filter((k) => !writers.acked.has(k) && !writers.unknown.has(k));
      expect(phantom, `keys nobody wrote on ${id}`).toEqual([]);
    }
    console.log(`lmdb-engine: ${writers.acked.size} acknowledged writes survived kills of ${oldLeader} and ${follower}`);
  });

  it('a follower restarted after the log was compacted past it catches up by snapshot', async () => {
    const leader = await tc.leader();
    const follower = tc.ids.find((id) => id !== leader) as string;
    const before = await tc.status(follower);
    expect(before, `${follower} status`).toBeDefined();
    await tc.stop(follower);
    const target = (before?.appliedIndex ?? 0) + SNAPSHOT_KEEP_ENTRIES + 3 * SNAPSHOT_EVERY;
    const writers = new Writers(client(), 'snap', 48).start();
    try {
      await waitFor(`leader ${leader} to apply index ${target}`, 150_000, async () => ((await tc.status(leader))?.appliedIndex ?? 0) >= target, 250);
    } finally {
      await writers.stop();
    }
    await tc.restart(follower);
    await caughtUp(follower, writers, 60_000);
    expect(await tc.metric(follower, 'store_snapshots_installed_total'), `${follower} caught up without a snapshot`).toBeGreaterThanOrEqual(1);
    // Streamed from the leader's engine, never sent as one document.
    expect(await tc.metric(follower, 'store_snapshot_streams_pulled_total'), `${follower} pulled a snapshot stream`).toBeGreaterThanOrEqual(1);

    // Stopped cleanly, the follower's LMDB files hold exactly what it served.
    const served = await scan(tc.url(follower), 'snap/', { serializable: true });
    await tc.stop(follower);
    const store = LmdbKeyStore.open(join(tc.dataDir, follower, 'kv'));
    try {
      const onDisk = new Map(store.range('snap/', undefined, 1_000_000).kvs.map((kv) => [kv.key, kv.value]));
      expect(onDisk.size).toBe(served.size);
      expect(onDisk).toEqual(served);
      expect(store.appliedIndex).toBeGreaterThan(target - SNAPSHOT_KEEP_ENTRIES - 3 * SNAPSHOT_EVERY);
    } finally {
      await store.close();
    }
  }, 180_000);
});
