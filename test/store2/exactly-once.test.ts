/**
 * Goal: prove exactly-once writes (client sessions, Raft dissertation §6.3)
 * against real process death. Each round sends a PUT with an explicit
 * `Request-Id: <clientId>.<lane>:<seq>` by fetch to one node (a follower,
 * which forwards it, or the leader), SIGKILLs that node a seeded 0-15 ms
 * later while the request is in flight, then retries the same Request-Id on
 * another node until it is answered. The key's `version` (+1 per applied
 * put) proves the write was applied exactly once, whether the first attempt
 * had already been applied (the retry is answered from the session cache) or
 * not (the retry applies it); `previous` and `revision` of the answer prove
 * it is the one application; a second retry later changes nothing. A marker
 * write between the kill and the retry shows which case a round hit: an
 * answer revision below the marker's means the first attempt was applied.
 *
 * Also: a lease grant and a lease revoke sent twice with one Request-Id (a
 * retry after a lost answer, through another node) are applied once and
 * answered alike.
 *
 * Ports 35400-35402 / 35500-35502. Randomized: prints its seed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { StoreClient } from '../../store/client/client.js';
import { StoreCluster } from '../support/store-cluster.js';
import { delay, now, testSeed, waitFor } from './support/poll.js';

const BASE_PORT = 35400;
const ROUNDS = 6;
const KEY = 'eo/counter';

const seed = testSeed();
const rng = new SeededRandom(seed);
console.log(`[store2/exactly-once] seed ${seed} (rerun with STORE_TEST_SEED=${seed})`);

let cluster: StoreCluster;
let failed = false;

beforeAll(async () => {
  cluster = new StoreCluster({ name: 'exactly-once', basePort: BASE_PORT, founders: 3 });
  await cluster.startFounders();
}, 120_000);

afterAll(async () => {
  if (failed) console.error(cluster?.logTails());
  await cluster?.destroy(failed);
});

interface PutAnswer {
  readonly revision: number;
  readonly previous: string | null;
}

interface KeyState {
  readonly value: string;
  readonly version: number;
  readonly modRevision: number;
}

function putOnce(url: string, requestId: string, value: string): Promise<Response> {
  return fetch(`${url}/v1/kv/${encodeURIComponent(KEY)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'request-id': requestId },
    body: JSON.stringify({ value }),
    signal: AbortSignal.timeout(15_000),
  });
}

/** Retries the same Request-Id on the given nodes in turn until one answers 200. */
async function retryUntilAnswered(urls: readonly string[], requestId: string, value: string): Promise<{ answer: PutAnswer; attempts: number; by: string }> {
  let attempts = 0;
  return waitFor(`an answer to ${requestId}`, 30_000, async () => {
    const url = urls[attempts++ % urls.length] as string;
    let res: Response;
    try {
      res = await putOnce(url, requestId, value);
    } catch {
      return undefined;
    }
    const body = (await res.json()) as PutAnswer & { error?: { code: string } };
    if (res.status === 200) return { answer: body, attempts, by: url };
    // Only "try again" answers are acceptable here.
    expect(res.status, `retry of ${requestId} on ${url}: ${JSON.stringify(body)}`).toBe(503);
    return undefined;
  }, 20);
}

/** Slowest verification read, for the report. */
let slowestReadMs = 0;

/**
 * A linearizable read of KEY through the given nodes. It goes through
 * StoreClient, which retries 503/504 and dead nodes: right after a leader
 * kill a ReadIndex round can be lost and the node answers 504 only after its
 * request timeout, which is slow but not wrong.
 */
async function readKey(urls: readonly string[]): Promise<KeyState> {
  const t = now();
  const kv = await new StoreClient({ endpoints: urls, deadlineMs: 30_000 }).get(KEY);
  slowestReadMs = Math.max(slowestReadMs, now() - t);
  expect(kv).not.toBeNull();
  return kv as KeyState;
}

describe('exactly-once writes across a SIGKILL mid-request', () => {
  it(`applies each of ${ROUNDS} killed-and-retried writes exactly once`, async () => {
    try {
      const clientId = `eo-${seed}`;
      const helper = new StoreClient({ endpoints: cluster.endpoints });
      await helper.put(KEY, 'round-0');
      let expectedVersion = (await readKey(cluster.endpoints)).version;
      let expectedPrevious = 'round-0';
      const outcomes: string[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const leader = await cluster.waitLeader();
        const followers = cluster.ids.filter((id) => id !== leader);
        const target = round % 2 === 0 ? leader : (followers[rng.int(followers.length)] as string);
        const others = cluster.ids.filter((id) => id !== target).map((id) => cluster.url(id));
        const requestId = `${clientId}.0:${round}`;
        const value = `round-${round}`;
        const killDelayMs = rng.int(16);
        console.log(`[store2/exactly-once] round ${round}: ${target === leader ? 'leader' : 'follower'} ${target}, kill after ${killDelayMs} ms`);

        // First attempt, in flight when its node dies.
        const first = putOnce(cluster.url(target), requestId, value).then(
          async (res) => ({ status: res.status, body: (await res.json()) as PutAnswer }),
          (e: unknown) => ({ error: String(e) }),
        );
        const tSent = now();
        await delay(killDelayMs);
        const tSignal = now();
        await cluster.kill9(target);
        const tKilled = now();
        const firstOutcome = await first;

        // A marker write between the kill and the retry (its own client, so its own session).
        const marker = await helper.put(`eo/marker/${round}`, 'm');
        const retry = await retryUntilAnswered(others, requestId, value);
        // Bring the node back meanwhile; it must catch up before the next round.
        const restarted = cluster.restart(target);
        restarted.catch(() => undefined); // awaited below

        // Exactly once: one more version, the value written, the answer that of the one application.
        const state = await readKey(others);
        expectedVersion += 1;
        expect(state.version, `round ${round}: version`).toBe(expectedVersion);
        expect(state.value).toBe(value);
        expect(retry.answer.previous).toBe(expectedPrevious);
        expect(retry.answer.revision).toBe(state.modRevision);
        if ('status' in firstOutcome && firstOutcome.status === 200) {
          expect(firstOutcome.body).toEqual(retry.answer);
        }
        // A second retry of the same id, much later, is still answered from the session, not applied again.
        const again = await retryUntilAnswered(others, requestId, value);
        expect(again.answer).toEqual(retry.answer);
        expect((await readKey([...others].reverse())).version).toBe(expectedVersion);
        expectedPrevious = value;

        // Below the marker: applied before the retry was sent, so by the first attempt. Above: after the
        // kill, by the retry or by a forwarded first attempt that reached the leader late.
        const appliedBy = retry.answer.revision < marker.revision ? 'first attempt' : 'after the kill';
        const firstText = 'status' in firstOutcome ? `answered ${firstOutcome.status}` : 'connection lost';
        outcomes.push(`r${round} ${target === leader ? 'leader' : 'follower'} ${target} SIGKILL ${(tSignal - tSent).toFixed(0)} ms after sending (exited at ${(tKilled - tSent).toFixed(0)} ms): first ${firstText}, applied by ${appliedBy}, retry attempts ${retry.attempts}`);

        await restarted;
        await waitFor(`${target} caught up`, 60_000, async () => {
          const res = await fetch(`${cluster.url(target)}/v1/kv/${encodeURIComponent(KEY)}?consistency=serializable`);
          return res.status === 200 && ((await res.json()) as KeyState).version === expectedVersion;
        });
      }
      console.log(`[store2/exactly-once] ${outcomes.join('; ')}; slowest verification read ${slowestReadMs.toFixed(0)} ms`);
    } catch (e) {
      failed = true;
      throw e;
    }
  }, 240_000);

  it('applies a lease grant and a lease revoke retried with the same Request-Id once', async () => {
    try {
      // A retry after a lost answer, through another node: the same as sending the same id twice.
      for (const id of cluster.ids) if (!cluster.running(id)) await cluster.restart(id);
      await cluster.waitLeader(cluster.ids);
      const [a, b] = cluster.ids as [string, string];
      const clientId = `eo-lease-${seed}`;
      // A 503 (no leader known yet, right after the restarts) is retried with the same Request-Id, as a client does.
      const call = async (id: string, method: string, path: string, rid: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
        for (let attempt = 1; ; attempt++) {
          const res = await fetch(`${cluster.url(id)}${path}`, {
            method,
            headers: { 'content-type': 'application/json', 'request-id': rid },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
          const answer = { status: res.status, body: (await res.json()) as Record<string, unknown> };
          if (answer.status !== 503 || attempt >= 20) return answer;
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const leasesBefore = (await (await fetch(`${cluster.url(a)}/v1/leases`)).json()) as { leases: unknown[] };
      const g1 = await call(a, 'POST', '/v1/leases', `${clientId}.0:1`, { ttlMs: 60_000 });
      const g2 = await call(b, 'POST', '/v1/leases', `${clientId}.0:1`, { ttlMs: 60_000 });
      expect(g1.status).toBe(200);
      expect(g2).toEqual(g1);
      const leasesAfter = (await (await fetch(`${cluster.url(a)}/v1/leases`)).json()) as { leases: unknown[] };
      expect(leasesAfter.leases.length, 'one lease granted, not two').toBe(leasesBefore.leases.length + 1);

      const id = g1.body['id'] as number;
      const r1 = await call(a, 'DELETE', `/v1/leases/${id}`, `${clientId}.0:2`);
      const r2 = await call(b, 'DELETE', `/v1/leases/${id}`, `${clientId}.0:2`);
      expect(r1.status).toBe(200);
      // The retry gets the original answer, not 404 lease_not_found.
      expect(r2).toEqual(r1);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
