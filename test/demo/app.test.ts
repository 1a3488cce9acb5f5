/**
 * Goal: the demo's API on the real topology (3 store nodes, 2 coordinators,
 * 3 banks and the app, each its own process, started by the supervisor
 * library): bad input gets a 4xx with a clear code and changes nothing; a
 * transfer commits and survives SIGKILL of both banks; insufficient funds
 * abort; the app fails over between coordinators (one killed, the other
 * paused); a bank killed under load and restarted resolves its in-doubt
 * transactions, and the audited total never changes. Ports 38100-38133.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoSupervisor } from '../../demo/supervisor/index.js';
import { get, isAlive, post, settled, stateOf, waitFor } from './support.js';

const BASE_PORT = 38100;
const TOTAL = 12_000;
const dir = mkdtempSync(join(tmpdir(), 'demo-app-'));
const sup = new DemoSupervisor({ dataDir: dir, basePort: BASE_PORT, extraArgs: { app: ['--auto-audit-ms', '0'] } });
const app = sup.appUrl;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of several shapes, checked field by field
async function transfer(from: string, to: string, amount: number): Promise<{ status: number; body: any }> {
  const [fb, fa] = from.split(':');
  const [tb, ta] = to.split(':');
  return post(`${app}/v1/transfers`, { from: { bank: fb, account: fa }, to: { bank: tb, account: ta }, amount });
}

async function balance(bank: string, account: string): Promise<number> {
  const url = sup.banks.find((b) => b.name === bank)?.url;
  const a = await get(`${url}/v1/accounts`);
  expect(a.status).toBe(200);
  return (a.body as { id: string; balance: number }[]).find((x) => x.id === account)?.balance as number;
}

async function auditedTotal(): Promise<number> {
  const a = await post(`${app}/v1/audit`, {});
  expect(a.status).toBe(200);
  const body = a.body as { outcome: string; total: number; banks: { accounts: { balance: number }[] }[] };
  expect(body.outcome, JSON.stringify(body)).toBe('committed');
  for (const b of body.banks) for (const acct of b.accounts) expect(acct.balance).toBeGreaterThanOrEqual(0);
  return body.total;
}

beforeAll(async () => {
  DemoSupervisor.prepareDataDir(dir, { fresh: true });
  await sup.start();
  // The app learns the accounts from its first poll of the banks.
  // Its state lists no bank at all until that first poll completes, so count them.
  await waitFor('the app to know every bank', 20_000, async () => {
    const banks = (await stateOf(app)).banks;
    return banks.length === sup.banks.length && banks.every((b) => b.up && b.accounts.length === 4);
  });
}, 240_000); // nine processes on a shared 2-core machine

afterAll(async () => {
  const pids = sup.list().flatMap((p) => (p.pid === null ? [] : [p.pid]));
  await sup.stopAll();
  expect(pids.filter(isAlive)).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe.sequential('the demo over HTTP', () => {
  it('answers bad input with a 4xx and a clear code', async () => {
    const ok = { from: { bank: 'bank-a', account: 'alice' }, to: { bank: 'bank-b', account: 'bob' }, amount: 1 };
    const cases: [unknown, number, string][] = [
      ['not json', 415, 'unsupported_media_type'], // sent as text/plain: only application/json is taken
      [{ ...ok, amount: undefined }, 400, 'invalid_request'],
      [{ ...ok, extra: 1 }, 400, 'invalid_request'],
      [{ ...ok, from: { bank: 'bank-a' } }, 400, 'invalid_request'],
      [{ ...ok, amount: 0 }, 400, 'invalid_amount'],
      [{ ...ok, amount: -5 }, 400, 'invalid_amount'],
      [{ ...ok, amount: 2.5 }, 400, 'invalid_amount'],
      [{ ...ok, amount: '10' }, 400, 'invalid_amount'],
      [{ ...ok, amount: 1e12 }, 400, 'invalid_amount'],
      [{ ...ok, from: { bank: 'bank-z', account: 'alice' } }, 400, 'unknown_bank'],
      [{ ...ok, to: { bank: 'bank-b', account: 'mallory' } }, 400, 'unknown_account'],
      [{ ...ok, to: { bank: 'bank-a', account: 'alice' } }, 400, 'same_account'],
    ];
    for (const [body, status, code] of cases) {
      const a = typeof body === 'string' ? await fetch(`${app}/v1/transfers`, { method: 'POST', body }).then(async (r) => ({ status: r.status, body: await r.json() })) : await post(`${app}/v1/transfers`, body);
      expect([a.status, (a.body as any)?.error?.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect((await post(`${app}/v1/load`, { action: 'start', concurrency: 0 })).status).toBe(400);
    expect((await post(`${app}/v1/load`, { action: 'go' })).status).toBe(400);
    expect((await post(`${app}/v1/audit`, { all: true })).status).toBe(400);
    expect((await post(`${app}/v1/processes/n1/explode`, {})).status).toBe(400);
    expect((await post(`${app}/v1/processes/n9/kill`, {})).status).toBe(404);
    const self = await post(`${app}/v1/processes/app/kill`, {});
    expect([self.status, (self.body as any).error.code]).toEqual([403, 'not_allowed']);
    expect(sup.process('app').alive).toBe(true);
    expect(await auditedTotal()).toBe(TOTAL);
  });

  it('commits a transfer between banks, and the balances survive SIGKILL of both banks', async () => {
    const a = await transfer('bank-a:alice', 'bank-c:dave', 25);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ outcome: 'committed', votes: { 'bank-a': 'yes', 'bank-c': 'yes' } });
    expect(typeof a.body.txId).toBe('string');
    // The coordinator answers at the commit point (every vote yes); the banks apply the decision right after.
    await waitFor('both banks to apply the transfer', 20_000, async () => (await balance('bank-a', 'alice')) === 975 && (await balance('bank-c', 'dave')) === 1025);
    await sup.kill('bank-a');
    await sup.kill('bank-c');
    expect(sup.process('bank-a').info().state).toBe('exited');
    await Promise.all([sup.act('bank-a', 'start'), sup.act('bank-c', 'start')]);
    expect(await balance('bank-a', 'alice')).toBe(975);
    expect(await balance('bank-c', 'dave')).toBe(1025);
  });

  it('aborts a transfer the bank cannot cover, and moves nothing', async () => {
    const a = await transfer('bank-b:carol', 'bank-a:bob', 1_001);
    expect(a.status).toBe(200);
    expect(a.body.outcome).toBe('aborted');
    expect(a.body.reason).toContain('insufficient funds in carol');
    expect(await balance('bank-b', 'carol')).toBe(1_000);
    expect(await balance('bank-a', 'bob')).toBe(1_000);
  });

  it('fails over between coordinators: one killed, then the other paused', async () => {
    await sup.kill('c1');
    const viaC2 = await transfer('bank-b:alice', 'bank-c:alice', 5);
    expect(viaC2.body).toMatchObject({ outcome: 'committed', coordinator: sup.coordinatorUrls[1] });
    await sup.act('c1', 'start');
    await sup.pause('c2');
    expect(sup.process('c2').info().state).toBe('paused');
    const viaC1 = await transfer('bank-c:alice', 'bank-b:alice', 5);
    expect(viaC1.body).toMatchObject({ outcome: 'committed', coordinator: sup.coordinatorUrls[0] });
    await sup.resume('c2');
    expect(sup.process('c2').info().state).toBe('running');
  });

  it('survives a bank killed under load: it recovers, nothing stays in doubt, the total is unchanged', async () => {
    expect((await post(`${app}/v1/load`, { action: 'start', concurrency: 4 })).status).toBe(200);
    await waitFor('some transfers under load', 30_000, async () => (await stateOf(app)).load.committed >= 8);
    await sup.kill('bank-b');
    const afterKill = (await stateOf(app)).load;
    await waitFor('transfers touching the dead bank to abort', 30_000, async () => (await stateOf(app)).load.aborted >= afterKill.aborted + 5);
    await sup.act('bank-b', 'start');
    const restarted = (await stateOf(app)).load;
    await waitFor('commits after the restart', 30_000, async () => (await stateOf(app)).load.committed >= restarted.committed + 6);
    const stopped = await post(`${app}/v1/load`, { action: 'stop' });
    expect(stopped.status).toBe(200);
    const final = await waitFor('the load to stop and everything to settle', 45_000, async () => {
      const s = await stateOf(app);
      return !s.load.running && settled(s) ? s : undefined;
    });
    expect(final.load.failed).toBe(0);
    expect(final.liveTotal).toBe(TOTAL);
    expect(final.expectedTotal).toBe(TOTAL);
    expect(await auditedTotal()).toBe(TOTAL);
  });
});
