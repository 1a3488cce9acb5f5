/**
 * Goal: durability and availability through crashes, on a real 3-node
 * cluster of separate processes killed with SIGKILL. Killing the leader
 * while clients write: a new leader serves a write through a surviving node
 * within 2 s of the kill, and every acknowledged write is still there (read
 * back linearizably). Killing a follower mid-write and restarting it from its
 * own disk: it catches up. A follower that was down while the leader
 * compacted its log past it catches up by installing a snapshot.
 */
import { describe, expect, it } from 'vitest';
import { StoreClient } from '../../store/client/index.js';
import { defaultNodeConfig } from '../../store/node/config.js';
import { TestCluster, useTestCluster } from './support/cluster.js';
import { http, kvPath } from './support/http.js';
import { waitFor } from './support/poll.js';
import { Writers, missingWrites, scan } from './support/workload.js';

const BASE_PORT = 31400;
/** The cluster snapshots (and compacts its log) every this many applied entries. */
const SNAPSHOT_EVERY = 200;
/** Entries a leader keeps behind its snapshot (no flag sets it, so the default applies). */
const SNAPSHOT_KEEP_ENTRIES = defaultNodeConfig.snapshotKeepEntries;
const FAILOVER_LIMIT_MS = 2_000;

let tc: TestCluster;
// Each test starts from a whole cluster, whatever the previous one left.
useTestCluster({ name: 'crash', basePort: BASE_PORT, extraArgs: ['--snapshot-every', String(SNAPSHOT_EVERY)] }, (c) => (tc = c), (c) => c.ensureAllRunning());

function client(): StoreClient {
  return new StoreClient({ endpoints: tc.endpoints, requestTimeoutMs: 1_000, deadlineMs: 10_000, maxAttempts: 100 });
}

/** Waits until `writers` has `more` acknowledged writes beyond what it has now. */
async function ackedGrows(writers: Writers, more: number, what: string, timeoutMs = 30_000): Promise<void> {
  const target = writers.acked.size + more;
  await waitFor(`${what}: ${target} acknowledged writes (have ${writers.acked.size})`, timeoutMs, () => writers.acked.size >= target);
}

/** Waits until node `id` holds every acknowledged write in its own replica (serializable reads). */
async function caughtUp(id: string, writers: Writers, timeoutMs: number): Promise<void> {
  let last = '';
  try {
    await waitFor(`${id} to hold all ${writers.acked.size} acknowledged ${writers.prefix}/ writes`, timeoutMs, async () => {
      const seen = await scan(tc.url(id), `${writers.prefix}/`, { serializable: true });
      const m = missingWrites(writers.acked, seen);
      last = `${m.count} missing, e.g. ${m.sample.slice(0, 3).join('; ')}`;
      return m.count === 0;
    }, 200);
  } catch (e) {
    throw new Error(`${String(e)}; last check: ${last}`);
  }
}

/** Milliseconds from `since` to the first write that a node in `ids` answers with 200. */
function firstAcceptedWrite(ids: readonly string[], since: number, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let done = false;
    let n = 0;
    const finish = (): void => {
      done = true;
      clearInterval(ticker);
      clearTimeout(deadline);
    };
    const ticker = setInterval(() => {
      const id = ids[n % ids.length] as string;
      const probe = n++;
      http(tc.url(id), 'PUT', kvPath(`probe/${probe}`), { json: { value: 'after the kill' }, timeoutMs: 1_500 }).then(
        (r) => {
          if (done || r.status !== 200) return;
          finish();
          resolve(performance.now() - since);
        },
        () => undefined,
      );
    }, 25);
    const deadline = setTimeout(() => {
      finish();
      reject(new Error(`no surviving node accepted a write within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

describe('crash', () => {
  it('kill -9 of the leader under writes: a new leader within 2 s, no acknowledged write lost', async () => {
    const writers = new Writers(client(), 'lk', 4).start();
    let oldLeader = '';
    try {
      await ackedGrows(writers, 50, 'writes before the kill');
      oldLeader = await tc.leader();
      const survivors = tc.ids.filter((id) => id !== oldLeader);
      const killedAt = performance.now();
      await tc.kill9(oldLeader);

      // Probe the survivors directly: a new write every 25 ms, alternating, each allowed 1.5 s,
      // so a slow answer is not mistaken for no answer; the first 200 ends the wait.
      const firstWriteMs = await firstAcceptedWrite(survivors, killedAt, 15_000);
      console.log(`crash: leader ${oldLeader} killed; first write through a survivor after ${firstWriteMs.toFixed(0)} ms`);
      expect(firstWriteMs, `failover took ${firstWriteMs.toFixed(0)} ms`).toBeLessThan(FAILOVER_LIMIT_MS);
      const newLeader = await tc.leader();
      expect(newLeader).not.toBe(oldLeader);

      // The clients go on through the new leader.
      await ackedGrows(writers, 50, 'writes after the failover');
    } finally {
      await writers.stop();
    }

    // Every acknowledged write is there, read linearizably through each survivor.
    expect(writers.acked.size).toBeGreaterThan(100);
    for (const id of tc.runningIds) {
      const seen = await scan(tc.url(id), 'lk/');
      const m = missingWrites(writers.acked, seen);
      expect(m.count, `acknowledged writes missing on ${id}: ${m.sample.join('; ')}`).toBe(0);
      // Nothing appears that was never written: every key is acknowledged or had an unknown outcome.
      const phantom = [...seen.keys()].filter((k) => !writers.acked.has(k) && !writers.unknown.has(k));
      expect(phantom, `keys nobody wrote on ${id}`).toEqual([]);
    }
    console.log(`crash: ${writers.acked.size} acknowledged, ${writers.unknown.size} unknown writes around the leader kill`);

    // The old leader comes back from its disk and catches up.
    await tc.restart(oldLeader);
    await caughtUp(oldLeader, writers, 30_000);
  });

  it('kill -9 of a follower mid-write, then restart from disk: it catches up', async () => {
    const writers = new Writers(client(), 'fk', 4).start();
    let follower = '';
    try {
      await ackedGrows(writers, 50, 'writes before the kill');
      const { followers } = await tc.followers();
      follower = followers[0] as string;
      await tc.kill9(follower);
      // Two of three keep committing.
      await ackedGrows(writers, 100, `writes while ${follower} is down`);
      await tc.restart(follower);
      await ackedGrows(writers, 50, `writes after ${follower} restarted`);
    } finally {
      await writers.stop();
    }
    await caughtUp(follower, writers, 30_000);
    const m = missingWrites(writers.acked, await scan(tc.url(await tc.leader()), 'fk/'));
    expect(m.count, m.sample.join('; ')).toBe(0);
  });

  it('a follower restarted after the log was compacted past it catches up by snapshot', async () => {
    const leader = await tc.leader();
    const follower = tc.ids.find((id) => id !== leader) as string;
    const before = await tc.status(follower);
    expect(before, `${follower} status`).toBeDefined();
    await tc.stop(follower);

    // Write until the leader's log start has passed the follower's last index for sure:
    // it compacts every SNAPSHOT_EVERY entries and keeps SNAPSHOT_KEEP_ENTRIES behind.
    const target = (before?.appliedIndex ?? 0) + SNAPSHOT_KEEP_ENTRIES + 3 * SNAPSHOT_EVERY;
    const writers = new Writers(client(), 'snap', 48).start();
    try {
      await waitFor(`leader ${leader} to apply index ${target}`, 150_000, async () => ((await tc.status(leader))?.appliedIndex ?? 0) >= target, 250);
    } finally {
      await writers.stop();
    }
    expect(await tc.metric(leader, 'store_snapshots_taken_total')).toBeGreaterThanOrEqual(1);
    console.log(`crash: wrote ${writers.acked.size} keys while ${follower} was down (leader applied index ${target}+)`);

    await tc.restart(follower);
    await caughtUp(follower, writers, 60_000);
    expect(await tc.metric(follower, 'store_snapshots_installed_total'), `${follower} caught up without a snapshot`).toBeGreaterThanOrEqual(1);
    // Older data, from before it went down, is still there too.
    const old = await scan(tc.url(follower), 'fk/', { serializable: true });
    expect(old.size).toBeGreaterThan(0);
  }, 180_000); // thousands of writes: slow on a loaded machine; each wait inside has its own deadline
});
