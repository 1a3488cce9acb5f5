/**
 * Goal: a node's reaction to a damaged write-ahead log, on a real 3-node
 * cluster. A torn tail (the last segment cut short by a few bytes, what a
 * crash mid-write leaves) is repaired at start-up: the node restarts, rejoins
 * and the data is intact cluster-wide. A flipped byte in the middle of a
 * segment is corruption: the node refuses to start with a message naming it,
 * exits non-zero without touching the evidence, and the other two keep
 * serving.
 */
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreClient } from '../../store/client/index.js';
import { scanSegment } from '../../store/node/wal-format.js';
import { TestCluster, useTestCluster } from './support/cluster.js';
import { waitFor } from './support/poll.js';
import { missingWrites, scan } from './support/workload.js';

const BASE_PORT = 31600;

let tc: TestCluster;
useTestCluster({ name: 'wal-damage', basePort: BASE_PORT }, (c) => (tc = c));
/** Every acknowledged write of this file: key -> value. */
const acked = new Map<string, string>();

async function writeKeys(endpoints: readonly string[], prefix: string, count: number): Promise<void> {
  const client = new StoreClient({ endpoints, requestTimeoutMs: 2_000, deadlineMs: 15_000 });
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const n = next++;
        const key = `${prefix}/${String(n).padStart(4, '0')}`;
        await client.put(key, `${prefix} value ${n}`);
        acked.set(key, `${prefix} value ${n}`);
      }
    }),
  );
}

/** The newest WAL segment of a node (segments are named so that they sort in log order). */
function lastSegment(id: string): string {
  const dir = join(tc.dataDir, id, 'wal');
  const segments = readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();
  const last = segments[segments.length - 1];
  if (last === undefined) throw new Error(`${dir} has no WAL segment`);
  return join(dir, last);
}

async function expectAllWrites(id: string, serializable: boolean): Promise<void> {
  const seen = await scan(tc.url(id), 'wd', { serializable });
  const m = missingWrites(acked, seen);
  expect(m.count, `${id} (${serializable ? 'serializable' : 'linearizable'}) lacks: ${m.sample.join('; ')}`).toBe(0);
}

describe('WAL damage', () => {
  let repaired = '';

  // The last record may hold entries n2 had acknowledged; with no new writes,
  // the leader learns it lost them only by probing it after the reconnect
  // (store/raft/leader.ts, heartbeat response in probe state).
  it('a torn tail is cut off at restart; the node rejoins and no data is lost', async () => {
    await writeKeys(tc.endpoints, 'wd1', 150);
    const leader = await tc.leader();
    repaired = tc.ids.find((id) => id !== leader) as string;
    await tc.kill9(repaired);

    const segment = lastSegment(repaired);
    const size = statSync(segment).size;
    expect(size).toBeGreaterThan(100);
    truncateSync(segment, size - 3);

    await tc.restart(repaired);
    expect(tc.log(repaired)).toMatch(/torn tail/);
    // It has everything after catching up, and takes part in new writes.
    await waitFor(`${repaired} to hold every acknowledged write`, 20_000, async () => {
      const m = missingWrites(acked, await scan(tc.url(repaired), 'wd', { serializable: true }));
      return m.count === 0;
    }, 200);
    await writeKeys(tc.endpoints, 'wd2', 50);
    await waitFor(`${repaired} to replicate new writes`, 20_000, async () => {
      const m = missingWrites(acked, await scan(tc.url(repaired), 'wd', { serializable: true }));
      return m.count === 0;
    }, 200);
    for (const id of tc.ids) await expectAllWrites(id, false);
    expect(tc.running(repaired)).toBe(true);
  });

  it('a torn tail that cuts into an acknowledged entry: the node rejoins and gets the entry back', async () => {
    // What a disk that acknowledged an fsync it had not done leaves after a power
    // loss: the tail of a follower's log, including entries it had acknowledged,
    // is gone. Raft assumes this never happens; the store must still not leave the
    // node stuck (it rejoins and is repaired from the leader), and nothing the
    // cluster acknowledged is lost, since a majority still has it.
    const leader = await tc.ensureAllRunning();
    const victim = tc.ids.find((id) => id !== leader && id !== repaired) ?? (tc.ids.find((id) => id !== leader) as string);
    await writeKeys(tc.endpoints, 'wd3', 50);
    // The victim acknowledged everything the leader has (its applied index caught up).
    const target = (await tc.status(leader))?.commitIndex ?? 0;
    await waitFor(`${victim} to apply index ${target}`, 20_000, async () => ((await tc.status(victim))?.appliedIndex ?? 0) >= target);
    await tc.kill9(victim);

    const segment = lastSegment(victim);
    const bytes = readFileSync(segment);
    const records = scanSegment(segment, bytes, true).records;
    const lastEntries = [...records].reverse().find((r) => r.record.kind === 'entries');
    expect(lastEntries, 'the segment holds an entries record').toBeDefined();
    // Cut in the middle of that record: it and everything after it are a torn tail.
    truncateSync(segment, (lastEntries?.offset ?? 0) + 12);

    await tc.restart(victim);
    expect(tc.log(victim)).toMatch(/torn tail/);
    await writeKeys(tc.endpoints, 'wd4', 20);
    await waitFor(`${victim} to hold every acknowledged write again`, 30_000, async () => {
      const m = missingWrites(acked, await scan(tc.url(victim), 'wd', { serializable: true }));
      return m.count === 0;
    }, 200);
    // And it is a full member again: with another node down, it and the leader still commit.
    const other = tc.ids.find((id) => id !== victim && id !== leader) as string;
    await tc.stop(other);
    try {
      await writeKeys([tc.url(leader), tc.url(victim)], 'wd5', 20);
    } finally {
      await tc.restart(other);
    }
  });

  it('a flipped byte mid-segment stops the node with a corruption message; the other two serve on', async () => {
    const leader = await tc.ensureAllRunning();
    // Damage a follower other than the one repaired above when possible, so the
    // survivors are the leader and the repaired node.
    const victim = tc.ids.find((id) => id !== leader && id !== repaired) ?? (tc.ids.find((id) => id !== leader) as string);
    await tc.stop(victim);

    const segment = lastSegment(victim);
    const bytes = readFileSync(segment);
    const offset = Math.floor(bytes.length / 2);
    bytes[offset] = (bytes[offset] as number) ^ 0xff;
    writeFileSync(segment, bytes);

    tc.start(victim);
    const exit = await tc.waitExit(victim, 20_000);
    expect(exit.signal, 'killed by a signal instead of exiting').toBeNull();
    expect(exit.code, 'exit code of a node with a corrupt WAL').not.toBe(0);
    const log = tc.log(victim);
    expect(log).toMatch(/WAL corrupt/i);
    expect(log).toContain(segment);
    // It refused: the damaged segment is left as it was, for an operator to look at.
    expect(statSync(segment).size).toBe(bytes.length);
    expect(readFileSync(segment).equals(bytes)).toBe(true);

    // The two others keep serving writes and linearizable reads.
    const survivors = tc.ids.filter((id) => id !== victim);
    await writeKeys(survivors.map((id) => tc.url(id)), 'wd6', 50);
    for (const id of survivors) {
      expect(tc.running(id), `${id} still running`).toBe(true);
      await expectAllWrites(id, false);
    }
  });
});
