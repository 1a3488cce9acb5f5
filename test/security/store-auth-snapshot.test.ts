// Goal: with auth on, a follower that fell behind the leader's compaction
// still catches up by a snapshot stream (on-disk engine): it pulls the pages
// with the offer's key from the Raft message (no credential configured), and
// the stream carries the auth table, so the caught-up member checks tokens
// and permissions like the others. Anyone else asking for a snapshot page
// gets 401. Ports 29010-29012 (clients) and 29110-29112 (peers).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreClient } from '../../store/client/index.js';
import { defaultNodeConfig } from '../../store/node/config.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { waitFor } from '../support/wait.js';

const BASE_PORT = 29010;
const SNAPSHOT_EVERY = 500;
const ROOT_PASSWORD = 'root-pw';

let dir = '';
let cluster: LocalCluster;
let root: StoreClient;

async function status(url: string): Promise<{ appliedIndex: number; leaderId: string | null } | undefined> {
  try {
    const res = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(2_000) });
    return res.status === 200 ? ((await res.json()) as { appliedIndex: number; leaderId: string | null }) : undefined;
  } catch {
    return undefined;
  }
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.split(' ').at(-1) ?? 'NaN');
}

beforeAll(async () => {
  dir = mkdtempSync(join(os.tmpdir(), 'store-auth-snap-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir: join(dir, 'store'), logToFiles: true, extraArgs: ['--engine', 'lmdb', '--snapshot-every', String(SNAPSHOT_EVERY)] });
  cluster.start();
  await cluster.waitForLeader(30_000);
  const setup = new StoreClient({ endpoints: cluster.endpoints });
  await setup.authRequest('POST', '/v1/auth/users', { name: 'root', password: ROOT_PASSWORD });
  await setup.authRequest('POST', '/v1/auth/enable');
  setup.close();
  root = new StoreClient({ endpoints: cluster.endpoints, user: 'root', password: ROOT_PASSWORD, deadlineMs: 30_000 });
}, 60_000);

afterAll(async () => {
  root?.close();
  await cluster?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('snapshot streams with auth on', () => {
  it('a lagging follower pulls the stream with the offer key and then enforces the same table', async () => {
    const leaderId = await cluster.waitForLeader(30_000);
    const follower = cluster.members.find((m) => m.id !== leaderId) as (typeof cluster.members)[number];
    const leader = cluster.members.find((m) => m.id === leaderId) as (typeof cluster.members)[number];
    await cluster.process(follower.id).stop();
    // Past the leader's kept entries and a few snapshots: the follower can only catch up by a snapshot.
    const writes = defaultNodeConfig.snapshotKeepEntries + 3 * SNAPSHOT_EVERY;
    const items = Array.from({ length: writes }, (_, i) => ({ type: 'put' as const, key: `snap/${i}`, value: String(i) }));
    const results = await root.batch(items);
    expect(results.filter((r) => !r.ok).length).toBe(0);
    // Granted while the follower is down: it learns this user only from the stream.
    await root.authRequest('POST', '/v1/auth/users', { name: 'late', password: 'late-pw' });
    const target = (await status(leader.clientUrl))?.appliedIndex ?? 0;
    cluster.process(follower.id).start();
    await waitFor(`${follower.id} to catch up to ${target}`, 90_000, async () => ((await status(follower.clientUrl))?.appliedIndex ?? 0) >= target, 250);
    expect(await metric(follower.clientUrl, 'store_snapshot_streams_pulled_total')).toBeGreaterThanOrEqual(1);

    // The table came with the stream: the follower authenticates a user it never saw a command for, and checks tokens.
    const auth = await fetch(`${follower.clientUrl}/v1/auth/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'late', password: 'late-pw' }) });
    expect(auth.status).toBe(200);
    const lateToken = ((await auth.json()) as { token: string }).token;
    const last = `${follower.clientUrl}/v1/kv/${encodeURIComponent(`snap/${writes - 1}`)}?consistency=serializable`;
    expect((await fetch(last)).status).toBe(401);
    expect((await fetch(last, { headers: { authorization: `Bearer ${lateToken}` } })).status).toBe(403);
    const rootAuth = await fetch(`${follower.clientUrl}/v1/auth/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'root', password: ROOT_PASSWORD }) });
    const rootToken = ((await rootAuth.json()) as { token: string }).token;
    const read = await fetch(last, { headers: { authorization: `Bearer ${rootToken}` } });
    expect(await read.json()).toMatchObject({ value: String(writes - 1) });

    // Nobody else reads a snapshot page: no token, or a guessed offer key, is 401.
    for (const headers of [{}, { 'x-snapshot-key': '0'.repeat(32) }]) {
      const page = await fetch(`${leader.clientUrl}/internal/v1/snapshots/${follower.id}-1-1/keys`, { headers });
      expect(page.status).toBe(401);
    }
  }, 180_000);
});
