// Goal: one live instance per participant name, against a real 3-node store
// cluster and real processes (test/participant/claim-proc.ts, built on the
// public entry point): a second instance under a held name refuses to start
// with `participant_name_taken`, naming the holder, and so does a second
// process over the same log; a clean stop frees the name at once; after
// SIGKILL a restart over the same log re-takes the claim at once, before its
// lease expires, while another instance is refused until that lease expires
// and then starts. The processes serve through the plain node:http handler
// (`participantHandler`), which passes what it does not serve to the host.
// And a node that loses its claim while running (the lease gone, or the
// store out of reach for a whole TTL) stops and reaches onFatal.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimKey, ParticipantNode, silentLogger, TxStoreError, type ClaimHolder, type TxStore } from 'raft2pc/participant';
import { http, openStore, Proc, startStore, stopAll, type Stack } from '../twopc/support/procs.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const CLAIM_PROC = join(ROOT, 'test/participant/claim-proc.ts');
/** Store nodes on 32600..32602 (peers +100); participants on odd ports from 32651. */
const BASE_PORT = 32600;
const NAME = 'claimed';
const KEY = claimKey(NAME);

let dir = '';
let stack: Stack;
let store: TxStore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'claim-'));
  stack = await startStore(dir, BASE_PORT);
  store = await openStore(stack, 'claim-test');
}, 120_000);

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** A participant process named NAME, over the log in `disk`, with its own log file. */
function instance(label: string, port: number, disk: string, claimTtlMs: number): Proc {
  const args = ['--name', NAME, '--port', String(port), '--store', stack.storeFlag, '--data-dir', join(dir, disk), '--claim-ttl-ms', String(claimTtlMs)];
  return new Proc(`claim ${label}`, `http://127.0.0.1:${port}`, CLAIM_PROC, args, join(dir, `${label}.log`));
}

async function holder(): Promise<ClaimHolder | null> {
  const kv = await store.get(KEY);
  return kv === null ? null : (JSON.parse(kv.value) as ClaimHolder);
}

/** Starts `p` and expects it to refuse: exit code 3, with a line saying why. */
async function expectRefused(p: Proc): Promise<string> {
  p.start();
  expect((await p.waitExit(60_000)).code).toBe(3);
  const line = p.logTail().split('\n').find((l) => l.startsWith('refused '));
  expect(line).toBeDefined();
  return line as string;
}

describe('one live instance per participant name (processes)', () => {
  // Made once the store runs (their flags name it).
  let a: Proc;
  let b: Proc;

  it('a second instance under a held name refuses to start, naming the holder; so does a second process over the same log', async () => {
    a = instance('a', 32651, 'disk-a', 30_000);
    b = instance('b', 32653, 'disk-b', 30_000);
    a.start();
    await a.waitHealthy();
    expect(await holder()).toMatchObject({ participant: NAME, pid: a.pid, host: hostname(), logPath: join(dir, 'disk-a', 'participant-log.jsonl'), ttlMs: 30_000 });

    const refused = await expectRefused(b);
    expect(refused).toContain(`refused participant_name_taken: participant name ${NAME} is taken: held by pid ${a.pid} on ${hostname()}`);
    expect(refused).toContain('wait up to 30000 ms');

    const twin = await expectRefused(instance('a-twin', 32655, 'disk-a', 30_000));
    expect(twin).toContain(`another live process (pid ${a.pid}) on this host runs over the same log`);

    expect(a.running).toBe(true);
    expect((await holder())?.pid).toBe(a.pid);
    // The holder serves the participant routes through the plain node:http handler, and passes the rest on.
    expect(await http('GET', `${a.url}/readyz`)).toMatchObject({ status: 200, body: { participant: NAME, ready: true } });
    expect(await http('GET', `${a.url}/v1/participant/transactions`)).toMatchObject({ status: 200, body: { participant: NAME, transactions: [] } });
    expect(await http('POST', `${a.url}/2pc/work`, { txId: 'bad id' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(await http('GET', `${a.url}/nothing-here`)).toMatchObject({ status: 404, body: { ok: false, pid: a.pid } });
  });

  it('after a clean stop the name is free at once', async () => {
    await a.stop();
    expect(await holder()).toBeNull();
    b.start();
    await b.waitHealthy();
    expect((await holder())?.pid).toBe(b.pid);
  });

  it('after SIGKILL, a restart over the same log re-takes its claim at once, before the lease expires', async () => {
    const killed = b.pid;
    await b.kill9();
    const stale = await holder();
    expect(stale?.pid).toBe(killed); // the crashed process's lease (30 s) still holds the key
    const restartedAt = Date.now();
    b.start();
    await b.waitHealthy();
    expect(Date.now() - restartedAt).toBeLessThan(30_000);
    const now = await holder();
    expect(now?.pid).toBe(b.pid);
    expect(now?.incarnation).not.toBe(stale?.incarnation);
  });

  it('after SIGKILL, another instance is refused until the crashed lease expires, then starts', async () => {
    await b.stop();
    const short = instance('b-short', 32657, 'disk-b', 8_000);
    short.start();
    await short.waitHealthy();
    const killed = short.pid;
    await short.kill9();

    const refused = await expectRefused(a);
    expect(refused).toContain(`held by pid ${killed} on ${hostname()}`);
    expect(refused).toContain('wait up to 8000 ms');

    await waitFor('the crashed holder\'s claim to expire', 30_000, async () => (await holder()) === null);
    a.start();
    await a.waitHealthy();
    expect((await holder())?.pid).toBe(a.pid);
    await a.stop();
  });
});

describe('a node that loses its claim while running (in this process, over the real store)', () => {
  const service = { prepare: () => ({ vote: 'yes' as const }), commit: () => undefined, abort: () => undefined };

  async function openNode(name: string, nodeStore: TxStore, fatal: unknown[]): Promise<ParticipantNode> {
    const logDir = join(dir, name);
    mkdirSync(logDir, { recursive: true });
    const node = await ParticipantNode.open({ name, store: nodeStore, logPath: join(logDir, 'log.jsonl'), service, logger: silentLogger, onFatal: (e) => fatal.push(e), config: { claimTtlMs: 1_500 } });
    await node.start();
    return node;
  }

  it('its lease gone from the store: the node stops (503 participant_failed) and onFatal hears participant_claim_lost', async () => {
    const fatal: unknown[] = [];
    const node = await openNode('lease-gone', store, fatal);
    const lease = (await store.get(claimKey('lease-gone')))?.lease;
    expect(lease).toBeDefined();
    await store.revokeLease(lease as string); // what an expiry does: the key goes with the lease
    await waitFor('onFatal', 10_000, () => fatal.length > 0);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'participant_claim_lost' });
    expect(node.ready).toBe(false);
    await expect(node.prepare('t1')).rejects.toMatchObject({ code: 'participant_failed', status: 503 });
    await node.stop();
  });

  it('the store out of reach for a whole TTL: the node stops, since another instance could take the name', async () => {
    let cut = false;
    const unavailable = (): Promise<never> => Promise.reject(new TxStoreError('unavailable', 503, 'cut off by the test'));
    // Only the claim's keepalive and reads fail: a partition as the claim sees it.
    const partitioned = new Proxy(store, {
      get: (target, prop, receiver): unknown => {
        if (cut && (prop === 'keepAlive' || prop === 'get')) return unavailable;
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const fatal: unknown[] = [];
    const node = await openNode('cut-off', partitioned, fatal);
    const cutAt = Date.now();
    cut = true;
    await waitFor('onFatal', 10_000, () => fatal.length > 0);
    expect(Date.now() - cutAt).toBeLessThan(1_500 + 2_000);
    expect(fatal[0]).toMatchObject({ code: 'participant_claim_lost' });
    expect(String((fatal[0] as Error).message)).toContain('no keepalive confirmed it for 1500 ms');
    await node.stop(); // the revoke still reaches the store: the name is free
    expect(await store.get(claimKey('cut-off'))).toBeNull();
  });
});
