// Goal: the client SDK (raft2pc/client) against real processes: a 3-node
// built-in store (ports 32000-32002, peers 32100-32102), coordinators and
// inventory participants (32051-32065). `run` commits when every vote is yes
// and aborts on a "no" or an unreachable participant; it fails over when a
// coordinator is killed with SIGKILL (before the call, and in the middle of
// a commit); a commit whose answer is lost is repeated or read back to the
// right outcome; an abort answered `already_committed` is reported
// committed; a replayed idempotency key joins its transaction; and bad input
// comes back as a CoordinatorError with the coordinator's code.
import { describe, expect, it } from 'vitest';
import { CoordinatorClient, type RunOutcome } from 'raft2pc/client';
import { coordinatorProc, inventoryOf, inventoryProc, take, useStack, waitUntil, type Proc } from '../twopc/support/procs.js';
import { builtinBackend } from '../twopc/support/procs.js';
import { failure, failureSync, isCommit, LosingRequester, type AnswerFate } from './support.js';

const BASE_PORT = 32000;
/** Nothing listens here: a participant that is down. */
const DEAD_URL = `http://127.0.0.1:${BASE_PORT + 65}`;
const STOCK = { apple: 100, fig: 100, kiwi: 100, lime: 100, plum: 100, pear: 100, date: 100, yuzu: 100 };

let c1: Proc;
let c2: Proc;
/** Started only by the test that arms its failpoint. */
let c3: Proc;
let a: Proc;
let b: Proc;

useStack(builtinBackend(BASE_PORT), 'client', async (stack) => {
  c1 = coordinatorProc(stack, 'c1', BASE_PORT + 51);
  c2 = coordinatorProc(stack, 'c2', BASE_PORT + 53);
  c3 = coordinatorProc(stack, 'c3', BASE_PORT + 55);
  a = inventoryProc(stack, 'a', BASE_PORT + 61, STOCK);
  b = inventoryProc(stack, 'b', BASE_PORT + 63, STOCK);
  return [c1, c2, a, b];
});

const part = (p: Proc, sku: string, n: number): { name: string; url: string; work: ReturnType<typeof take> } => ({ name: p.name.replace(/^participant /, ''), url: p.url, work: take(sku, n) });

function client(coordinators: readonly Proc[], extra: Partial<ConstructorParameters<typeof CoordinatorClient>[0]> = {}): CoordinatorClient {
  return new CoordinatorClient({ coordinators: coordinators.map((c) => c.url), ...extra });
}

/** Waits until every participant applied `decision` for the transaction and holds no lock for it. */
async function waitApplied(o: RunOutcome, decision: 'commit' | 'abort', ps: readonly Proc[] = [a, b]): Promise<void> {
  await waitUntil(`${o.txId} ${decision} applied`, 30_000, async () => {
    for (const p of ps) {
      const inv = await inventoryOf(p);
      if (inv.applied[o.txId] !== decision || Object.values(inv.locks).includes(o.txId)) return false;
    }
    return true;
  });
}

const stockOf = async (p: Proc, sku: string): Promise<number | undefined> => (await inventoryOf(p)).stock[sku];

describe.sequential('the SDK against real coordinators over a real store', () => {
  it('commits when every participant votes yes, and both apply it', async () => {
    const sdk = client([c1, c2]);
    const o = await sdk.run({ participants: [part(a, 'apple', 3), part(b, 'apple', 4)], metadata: { test: 'all-yes' } });
    expect(o).toMatchObject({ outcome: 'committed', votes: { a: 'yes', b: 'yes' }, resolvedBy: 'commit', coordinator: c1.url });
    await waitApplied(o, 'commit');
    expect([await stockOf(a, 'apple'), await stockOf(b, 'apple')]).toEqual([97, 96]);
    const view = await sdk.get(o.txId);
    expect(view).toMatchObject({ id: o.txId, state: 'committed' });
    // The metadata reaches the coordinator; once collected, the compacted record no longer keeps it (docs/API.md).
    if (!view.collected) expect(view.metadata).toEqual({ test: 'all-yes' });
    else expect(view.metadata).toBeUndefined();
    sdk.close();
  });

  it('aborts on a "no" vote, with its reason, and nothing moves', async () => {
    const sdk = client([c1, c2]);
    const o = await sdk.run({ participants: [part(a, 'fig', 5), part(b, 'fig', 1_000)] });
    expect(o.outcome).toBe('aborted');
    expect(o.votes['b']).toBe('no');
    expect(o.reason).toContain('insufficient stock of fig');
    await waitApplied(o, 'abort');
    expect([await stockOf(a, 'fig'), await stockOf(b, 'fig')]).toEqual([100, 100]);
    sdk.close();
  });

  it('aborts at once when a participant cannot be reached, naming it', async () => {
    const sdk = client([c1, c2]);
    const o = await sdk.run({ participants: [part(a, 'kiwi', 1), { name: 'down', url: DEAD_URL, work: take('kiwi', 1) }], timeoutMs: 60_000 });
    expect(o).toMatchObject({ outcome: 'aborted', resolvedBy: 'abort' });
    expect(o.reason).toContain('down did not take its work');
    // Long before the 60 s deadline: the abort did not wait for it.
    expect(o.elapsedMs).toBeLessThan(30_000);
    await waitApplied(o, 'abort', [a]);
    sdk.close();
  });

  it('fails over when a coordinator is killed with SIGKILL, and prefers the one that answered', async () => {
    const sdk = client([c1, c2]);
    await c1.kill9();
    try {
      const o = await sdk.run({ participants: [part(a, 'lime', 1), part(b, 'lime', 1)] });
      expect(o).toMatchObject({ outcome: 'committed', coordinator: c2.url });
      expect(sdk.preferred).toBe(c2.url);
      await waitApplied(o, 'commit');
    } finally {
      c1.start();
      await c1.waitHealthy();
      sdk.close();
    }
  });

  it('a coordinator killed in the middle of a commit: the other one gives the outcome', async () => {
    c3.start({ TWOPC_FAILPOINTS: 'coordinator.afterVotes' });
    await c3.waitHealthy();
    const sdk = client([c3, c2]);
    const o = await sdk.run({ participants: [part(a, 'plum', 2), part(b, 'plum', 2)] });
    expect(o).toMatchObject({ outcome: 'committed', votes: { a: 'yes', b: 'yes' }, coordinator: c2.url });
    expect((await c3.waitExit(30_000)).signal).toBe('SIGKILL');
    await waitApplied(o, 'commit');
    expect([await stockOf(a, 'plum'), await stockOf(b, 'plum')]).toEqual([98, 98]);
    sdk.close();
  });

  it('a commit whose first answer is lost is repeated, and gives the outcome once', async () => {
    const http: LosingRequester = new LosingRequester((r): AnswerFate => (isCommit(r) && http.lost.length === 0 ? 'lose' : 'keep'));
    const sdk = client([c1], { http });
    const o = await sdk.run({ participants: [part(a, 'pear', 1), part(b, 'pear', 1)] });
    expect(http.lost.length).toBe(1);
    expect(o).toMatchObject({ outcome: 'committed', resolvedBy: 'commit' });
    await waitApplied(o, 'commit');
    expect([await stockOf(a, 'pear'), await stockOf(b, 'pear')]).toEqual([99, 99]);
    http.close();
  });

  it('when no commit answer ever arrives, the outcome is read back with GET', async () => {
    const http = new LosingRequester((r) => (isCommit(r) ? 'lose' : 'keep'));
    const sdk = client([c1, c2], { http });
    const o = await sdk.run({ participants: [part(a, 'date', 1), part(b, 'date', 1)] });
    expect(o).toMatchObject({ outcome: 'committed', resolvedBy: 'query', votes: { a: 'yes', b: 'yes' } });
    expect(http.lost.length).toBeGreaterThanOrEqual(1);
    await waitApplied(o, 'commit');
    http.close();
  });

  it('no answer at all until the deadline: outcome_unknown with the id, and the transaction still ends', async () => {
    const http = new LosingRequester((r) => (isCommit(r) || r.method === 'GET' ? 'lose' : 'keep'));
    const sdk = client([c1], { http });
    const err = await sdk.run({ participants: [part(a, 'yuzu', 1)], timeoutMs: 1_000, resolveTimeoutMs: 500 }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; txId?: string },
    );
    expect(err?.code).toBe('outcome_unknown');
    const txId = err?.txId as string;
    const plain = client([c1]);
    await waitUntil(`${txId} decided`, 30_000, async () => (await plain.get(txId)).state === 'committed');
    http.close();
    plain.close();
  });
});

describe.sequential('the traps between the calls', () => {
  it('an abort answered already_committed means committed (the lost work call was recorded)', async () => {
    const other = client([c2]);
    let aHasWork!: () => void;
    const aWorked = new Promise<void>((resolve) => (aHasWork = resolve));
    // b's work reaches b, but its answer is lost; meanwhile another client commits the transaction.
    const http = new LosingRequester(async (r, res) => {
      if (!r.url.endsWith('/2pc/work')) return 'keep';
      if (r.url.startsWith(a.url)) {
        if (res.status === 200) aHasWork();
        return 'keep';
      }
      await aWorked;
      const txId = (JSON.parse(r.body ?? '{}') as { txId: string }).txId;
      await other.commit(txId);
      return 'lose';
    });
    const sdk = client([c1], { http });
    const o = await sdk.run({ participants: [part(a, 'apple', 1), part(b, 'pear', 1)] });
    expect(o).toMatchObject({ outcome: 'committed', resolvedBy: 'query', votes: { a: 'yes', b: 'yes' } });
    await waitApplied(o, 'commit');
    http.close();
    other.close();
  });

  it('a replayed idempotency key joins its transaction: one id, one outcome, applied once', async () => {
    const sdk = client([c1, c2]);
    const req = { participants: [part(a, 'kiwi', 10), part(b, 'kiwi', 10)], idempotencyKey: `client-test-${Date.now()}` };
    const first = await sdk.run(req);
    const again = await sdk.run(req);
    expect(again.txId).toBe(first.txId);
    expect([first.outcome, again.outcome]).toEqual(['committed', 'committed']);
    await waitApplied(first, 'commit');
    expect([await stockOf(a, 'kiwi'), await stockOf(b, 'kiwi')]).toEqual([90, 90]);
    sdk.close();
  });
});

describe('typed errors', () => {
  it("bad input comes back with the coordinator's code and status", async () => {
    const sdk = client([c1, c2]);
    expect(await failure(sdk.get('no-such-tx'))).toEqual({ code: 'tx_not_found', status: 404, retryable: false });
    expect(await failure(sdk.get('bad id'))).toMatchObject({ code: 'invalid_tx_id', status: 400 });
    expect(await failure(sdk.commit('no-such-tx'))).toMatchObject({ code: 'tx_not_found', status: 404 });
    expect(await failure(sdk.begin({ timeoutMs: 5 }))).toMatchObject({ code: 'invalid_timeout', status: 400 });
    expect(await failure(sdk.begin({ participants: [{ name: 'a', url: 'ftp://x' }] }))).toMatchObject({ code: 'invalid_participant', status: 400 });
    expect(await failure(sdk.begin({}, { idempotencyKey: 'has space' }))).toMatchObject({ code: 'invalid_idempotency_key', status: 400 });
    expect(await failure(sdk.list({ limit: 5_000 }))).toMatchObject({ code: 'invalid_request', status: 400 });
    const done = await sdk.run({ participants: [part(a, 'fig', 1)] });
    expect(done.outcome).toBe('committed');
    expect(await failure(sdk.abort(done.txId))).toMatchObject({ code: 'already_committed', status: 409 });
    expect(await failure(sdk.enlist(done.txId, { name: 'late', url: 'http://127.0.0.1:1' }))).toMatchObject({ code: 'tx_not_active', status: 409 });
    const begun = await sdk.begin({ participants: [{ name: 'p', url: 'http://127.0.0.1:1' }] });
    expect(await failure(sdk.enlist(begun.id, { name: 'p', url: 'http://127.0.0.1:2' }))).toMatchObject({ code: 'participant_conflict', status: 409 });
    expect(await failure(sdk.sendWork({ name: 'a', url: a.url }, 'bad id', {}))).toMatchObject({ code: 'invalid_tx_id', status: 400 });
    sdk.close();
  });

  it('client-side codes: unavailable when nothing answers, invalid_config before any call', async () => {
    const down = new CoordinatorClient({ coordinators: [DEAD_URL], retryWindowMs: 300 });
    expect(await failure(down.list())).toMatchObject({ code: 'unavailable', status: 0, retryable: true });
    down.close();
    expect(failureSync(() => new CoordinatorClient({ coordinators: [] }))).toEqual({ code: 'invalid_config', status: 0 });
    expect(failureSync(() => new CoordinatorClient({ coordinators: ['ftp://x'] }))).toEqual({ code: 'invalid_config', status: 0 });
    expect(failureSync(() => new CoordinatorClient({ coordinators: [c1.url], callTimeoutMs: 0 }))).toEqual({ code: 'invalid_config', status: 0 });
  });
});
