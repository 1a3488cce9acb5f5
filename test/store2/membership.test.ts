/**
 * Goal: prove live membership changes on a real cluster of processes. A
 * 3-node cluster grows to 5 (two node processes started with --join, each
 * added as a learner through POST /v1/members, caught up, then promoted) and
 * shrinks back to 3 (DELETE /v1/members: first the current leader, then a
 * follower; each removed process is stopped afterwards), all under a steady
 * load of 8 concurrent writers. Asserted: no acknowledged write is lost (all
 * read back at the end), no term ever has two leaders (GET /v1/status of every
 * node polled every 20 ms, term -> leader recorded), the membership lists
 * are what was asked for. Then: leadership transfer (POST /v1/leader/transfer,
 * which answers once the old leader sees the new one) completes in under one
 * minimum election timeout (10 ticks * 50 ms = 500 ms), measured from request
 * to answer, and the target is then the leader.
 *
 * Ports: members n1..n5 serve clients on 35600-35604 and peers on
 * 35700-35704.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultNodeConfig } from '../../store/node/config.js';
import { StoreClient, type KeyValue } from '../../store/client/client.js';
import { StoreCluster } from '../support/store-cluster.js';
import { LeaderMonitor } from './support/leader-monitor.js';
import { now, waitFor } from './support/poll.js';

const BASE_PORT = 35600;
const WRITERS = 8;
const ELECTION_TIMEOUT_MS = defaultNodeConfig.electionTicks * defaultNodeConfig.tickMs;

let cluster: StoreCluster;
let monitor: LeaderMonitor | undefined;
let failed = false;
/** The voters once the test has shrunk the cluster back. */
let finalVoters: string[] = [];

beforeAll(async () => {
  cluster = new StoreCluster({ name: 'membership', basePort: BASE_PORT, founders: 3 });
  await cluster.startFounders();
}, 120_000);

afterAll(async () => {
  await monitor?.stop();
  if (failed) console.error(cluster?.logTails());
  await cluster?.destroy(failed);
});

interface MemberView {
  readonly id: string;
  readonly role: 'voter' | 'learner';
}

async function members(id: string): Promise<MemberView[]> {
  const res = await fetch(`${cluster.url(id)}/v1/members`, { signal: AbortSignal.timeout(2_000) });
  const body = (await res.json()) as { members: MemberView[] };
  return body.members.map((m) => ({ id: m.id, role: m.role })).sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * Sends an admin request to any of `ids` until it is answered 200; retries
 * "not now" answers (503 no_leader, 409 conf_change_pending) and dead nodes.
 */
async function admin(ids: () => readonly string[], method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  let i = 0;
  return waitFor(`${method} ${path}`, 30_000, async () => {
    const list = ids();
    const id = list[i++ % list.length] as string;
    let res: Response;
    try {
      res = await fetch(`${cluster.url(id)}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch {
      return undefined;
    }
    const payload = (await res.json()) as Record<string, unknown>;
    if (res.status === 200) return payload;
    if (res.status === 503 || res.status === 409 || res.status === 504) return undefined;
    throw new Error(`${method} ${path} on ${id}: ${res.status} ${JSON.stringify(payload)}`);
  }, 50);
}

async function leaderCommit(among: readonly string[]): Promise<number> {
  const leader = await cluster.waitLeader(among);
  const st = await cluster.status(leader);
  if (!st) throw new Error(`no status from leader ${leader}`);
  return st.commitIndex;
}

describe('live membership changes', () => {
  it('grows 3 -> 5 and shrinks back to 3 (removing the leader too) under load, losing nothing, one leader per term', async () => {
    try {
      let voters = ['n1', 'n2', 'n3'];
      // Leader first (no forwarding hop); the client finds the next leader itself when this one goes.
      const first = await cluster.waitLeader(voters);
      const endpoints = [0, 1, 2, 3, 4].map((i) => cluster.address(i).clientUrl);
      const writer = new StoreClient({ endpoints: [cluster.url(first), ...endpoints.filter((u) => u !== cluster.url(first))], deadlineMs: 30_000, maxAttempts: 200 });
      monitor = new LeaderMonitor(() => cluster.runningIds.map((id) => cluster.url(id)), 20);
      monitor.start();

      // Steady load: 8 writers, each over its own keys, until told to stop.
      const acked = new Map<string, string>();
      const failures: string[] = [];
      let stop = false;
      let lastAckAt = now();
      let longestStallMs = 0;
      const load = Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let i = 0; !stop; i++) {
            const key = `mb/${w}/${String(i).padStart(6, '0')}`;
            const value = `${w}-${i}`;
            try {
              await writer.put(key, value);
              acked.set(key, value);
              const t = now();
              longestStallMs = Math.max(longestStallMs, t - lastAckAt);
              lastAckAt = t;
            } catch (e) {
              failures.push(`${key}: ${e instanceof Error ? e.message : String(e)}`);
            }
          }
        }),
      );
      const tLoad = now();
      await waitFor('100 writes acknowledged', 60_000, () => {
        expect(failures, 'failed writes').toEqual([]);
        return acked.size >= 100;
      }, 10).catch((e: unknown) => {
        throw new Error(`${String(e)}; acked ${acked.size}, failures ${failures.length}: ${failures.slice(0, 3).join(' | ')}`);
      });
      const timeline: string[] = [`first 100 writes in ${(now() - tLoad).toFixed(0)} ms`];

      // Grow: n4 then n5, each a learner first, promoted once caught up.
      for (const index of [3, 4]) {
        const m = cluster.declareJoiner(index);
        await cluster.launch(m.id);
        const t = now();
        await admin(() => voters, 'POST', '/v1/members', { id: m.id, clientUrl: m.clientUrl, peerAddress: m.peerAddress });
        await waitFor(`${m.id} a learner everywhere`, 10_000, async () => {
          const views = await Promise.all(voters.map((id) => members(id).catch(() => [])));
          return views.every((v) => v.find((x) => x.id === m.id)?.role === 'learner');
        });
        const target = await leaderCommit(voters);
        await waitFor(`${m.id} caught up to ${target}`, 30_000, async () => ((await cluster.status(m.id))?.appliedIndex ?? 0) >= target, 25);
        const tCaught = now();
        await admin(() => voters, 'POST', `/v1/members/${m.id}/promote`);
        voters = [...voters, m.id];
        await waitFor(`${m.id} a voter everywhere`, 10_000, async () => {
          const views = await Promise.all(voters.map((id) => members(id).catch(() => [])));
          return views.every((v) => v.find((x) => x.id === m.id)?.role === 'voter');
        });
        timeline.push(`${m.id} learner caught up in ${(tCaught - t).toFixed(0)} ms, promoted (${acked.size} acked)`);
      }
      for (const id of voters) expect(await members(id)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'].map((x) => ({ id: x, role: 'voter' })));
      await waitFor('a leader of the 5', 15_000, () => cluster.waitLeader(voters));
      // Let the 5-node cluster take writes for a moment.
      const at5 = acked.size;
      await waitFor('writes on the 5-node cluster', 60_000, () => acked.size >= at5 + 100, 10);

      // Shrink: remove the leader first, then a follower; stop each removed process.
      for (const which of ['leader', 'follower'] as const) {
        const leader = await cluster.waitLeader(voters);
        const victim = which === 'leader' ? leader : (voters.find((id) => id !== leader) as string);
        const t = now();
        const res = await admin(() => (which === 'leader' ? [victim] : voters), 'DELETE', `/v1/members/${victim}`);
        const tAnswered = now();
        expect(res['removed']).toBe(victim);
        voters = voters.filter((id) => id !== victim);
        const newLeader = await cluster.waitLeader(voters, 15_000);
        const tLeader = now();
        await waitFor(`${victim} gone from every member list`, 10_000, async () => {
          const views = await Promise.all(voters.map((id) => members(id).catch(() => undefined)));
          return views.every((v) => v !== undefined && !v.some((x) => x.id === victim));
        });
        await cluster.stop(victim);
        timeline.push(`removed ${which} ${victim} (answered in ${(tAnswered - t).toFixed(0)} ms); leader ${newLeader} ${(tLeader - t).toFixed(0)} ms after the request (${acked.size} acked)`);
      }
      const at3 = acked.size;
      await waitFor('writes on the shrunk cluster', 60_000, () => acked.size >= at3 + 100, 10);
      stop = true;
      await load;
      await monitor.stop();

      // Membership as asked, on every remaining member.
      for (const id of voters) expect(await members(id)).toEqual(voters.map((x) => ({ id: x, role: 'voter' as const })).sort((a, b) => a.id.localeCompare(b.id)));
      finalVoters = voters;

      // No acknowledged write lost: read everything back, linearizably, through the client.
      const reader = new StoreClient({ endpoints: voters.map((id) => cluster.url(id)) });
      const stored = new Map<string, string>();
      let after: string | undefined;
      for (;;) {
        const page: { kvs: KeyValue[]; more: boolean } = await reader.range('mb/', { limit: 5000, ...(after === undefined ? {} : { after }) });
        for (const kv of page.kvs) stored.set(kv.key, kv.value);
        if (!page.more || page.kvs.length === 0) break;
        after = page.kvs[page.kvs.length - 1]?.key;
      }
      const lost = [...acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k);
      expect(lost, 'acknowledged writes missing or changed').toEqual([]);
      // Nothing else appeared: every stored key was acknowledged or its write failed (outcome unknown).
      const failedKeys = new Set(failures.map((f) => f.slice(0, f.indexOf(':'))));
      expect([...stored.keys()].filter((k) => !acked.has(k) && !failedKeys.has(k))).toEqual([]);
      expect(failures, 'writes that failed within the client deadline').toEqual([]);

      // Election safety, as observed from outside.
      expect(monitor.violations()).toEqual([]);
      expect(monitor.samples).toBeGreaterThan(100);

      // Every remaining replica converges on the same state.
      await waitFor('the 3 replicas at the same revision', 15_000, async () => {
        const sts = await Promise.all(voters.map((id) => cluster.status(id)));
        return sts.every((s) => s !== undefined && s.revision === sts[0]?.revision && s.appliedIndex === sts[0]?.appliedIndex);
      });
      console.log(
        `[store2/membership] ${timeline.join('; ')}; ${acked.size} writes acknowledged, all read back; ` +
          `longest gap between acks ${longestStallMs.toFixed(0)} ms; status samples ${monitor.samples}; term:leader ${monitor.summary()}`,
      );
    } catch (e) {
      failed = true;
      throw e;
    }
  }, 240_000);

  it(`transfers leadership in under one election timeout (${ELECTION_TIMEOUT_MS} ms)`, async () => {
    try {
      expect(finalVoters.length).toBe(3);
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const leader = await cluster.waitLeader(finalVoters);
        const to = finalVoters.find((id) => id !== leader) as string;
        const t = now();
        const res = await fetch(`${cluster.url(leader)}/v1/leader/transfer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ to }),
          signal: AbortSignal.timeout(5_000),
        });
        const elapsed = now() - t;
        const body = (await res.json()) as { leaderId?: string };
        expect(res.status, JSON.stringify(body)).toBe(200);
        expect(body.leaderId).toBe(to);
        times.push(elapsed);
        expect(await cluster.waitLeader(finalVoters, 5_000)).toBe(to);
        expect(elapsed, `transfer ${leader} -> ${to}`).toBeLessThan(ELECTION_TIMEOUT_MS);
      }
      console.log(`[store2/membership] leader transfers answered in ${times.map((x) => x.toFixed(0)).join(', ')} ms (bound ${ELECTION_TIMEOUT_MS} ms)`);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
