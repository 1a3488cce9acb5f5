// Goal: crash recovery with REAL processes killed by SIGKILL at chosen
// points (failpoints, lib/failpoints.ts), on a real 3-node store of
// every backend (the built-in store and etcd: crash.test.ts and
// crash-etcd.test.ts run this same suite).
// Participants: killed after the durable prepare but before the vote reaches
// the store, and after voting but before applying; restarted, each resolves
// its in-doubt transaction on its own. Coordinators: killed after freezing
// the participant list, after some votes, after the votes decided but before
// the decision key, and after writing the decision;
// another coordinator (or the participants' own help at the deadline)
// finishes. At the end, atomicity over every transaction of the file: each
// participant applied the same decision, the one the store recorded, and no
// lock is left behind.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { beginWithWork, coordinatorProc, http, inventoryOf, inventoryProc, take, useStack, waitUntil, workThenBegin, type Backend, type Proc, type Stack } from './support/procs.js';

export function crashSuite(backend: Backend): void {
  describe.skipIf(backend.unavailable !== undefined)(`2PC crash recovery on ${backend.name}`, () => {
    crashTests(backend);
  });
}

function crashTests(backend: Backend): void {
  const BASE_PORT = backend.basePort;
  const SEED = Number(process.env['TWOPC_SEED'] ?? Date.now() % 1_000_000);
  const random = new SeededRandom(SEED);

  let stack: Stack;
  let c1: Proc;
  let a: Proc;
  let b: Proc;
  /** Every transaction of this file and the participants it involves, for the final atomicity check. */
  const touched: { id: string; ps: Proc[] }[] = [];

  console.log(`crash on ${backend.name}: seed ${SEED} (TWOPC_SEED=${SEED} replays it)`);
  useStack(backend, 'crash', async (s) => {
    stack = s;
    c1 = coordinatorProc(stack, 'c1', BASE_PORT + 51);
    a = inventoryProc(stack, 'a', BASE_PORT + 61, { apple: 1_000 });
    b = inventoryProc(stack, 'b', BASE_PORT + 63, { pear: 1_000 });
    return [c1, a, b];
  });

  /** A random small quantity, so runs differ by seed. */
  function qty(): number {
    return 1 + random.int(5);
  }

  async function storeDecision(id: string): Promise<'commit' | 'abort' | null> {
    const g = await http('GET', `${c1.url}/v1/transactions/${id}`);
    return (g.body?.decision as 'commit' | 'abort' | null | undefined) ?? null;
  }

  /** Waits until the store holds a decision for `id` and every participant in `ps` applied it and released its locks. */
  async function waitResolved(id: string, ps: readonly Proc[], timeoutMs = 60_000): Promise<'commit' | 'abort'> {
    let decision: 'commit' | 'abort' | null = null;
    await waitUntil(`${id} decided and applied at ${ps.map((p) => p.name).join(', ')}`, timeoutMs, async () => {
      decision = await storeDecision(id);
      if (decision === null) return false;
      for (const p of ps) {
        const inv = await inventoryOf(p);
        if (inv.applied[id] !== decision || Object.values(inv.locks).includes(id)) return false;
      }
      return true;
    });
    return decision as unknown as 'commit' | 'abort';
  }

  /** Starts (without failpoints) whichever of `ps` is not running. */
  async function ensureUp(...ps: Proc[]): Promise<void> {
    for (const p of ps) if (!p.running) p.start();
    await Promise.all(ps.map((p) => p.waitHealthy()));
  }

  /** Restarts a killed participant without failpoints; it recovers before it reports healthy. */
  async function restart(p: Proc): Promise<void> {
    p.start();
    await p.waitHealthy();
  }

  describe('participant crashes', () => {
    it('killed after its durable prepare, before its vote reached the store: restarted, it re-asserts the yes and commits', async () => {
      await a.stop();
      a.start({ TWOPC_FAILPOINTS: 'participant.afterPrepareDurable' });
      await a.waitHealthy();
      // A long deadline: the restart below must come before it, however slow this machine is today.
      const id = await beginWithWork(
        c1.url,
        [
          { p: a, work: take('apple', qty()) },
          { p: b, work: take('pear', qty()) },
        ],
        90_000,
      );
      touched.push({ id, ps: [a, b] });
      const commit = http('POST', `${c1.url}/v1/transactions/${id}/commit`, undefined, {}, 120_000);
      expect((await a.waitExit(30_000)).signal).toBe('SIGKILL');
      const g = await http('GET', `${c1.url}/v1/transactions/${id}`);
      expect(g.body.votes.a).toBeUndefined(); // the yes was logged locally, never written
      await restart(a);
      // Recovery finds a logged yes and no vote in the store: locks back, yes by CAS, wait for the decision.
      const decision = await waitResolved(id, [a, b]);
      expect(decision).toBe('commit'); // the yes landed long before the deadline
      expect((await commit).body.outcome).toBe('committed');
    });

    it('killed after voting, before applying: restarted, it learns the decision from the store and applies it', async () => {
      await a.stop();
      a.start({ TWOPC_FAILPOINTS: 'participant.afterVote' });
      await a.waitHealthy();
      const id = await beginWithWork(c1.url, [
        { p: a, work: take('apple', qty()) },
        { p: b, work: take('pear', qty()) },
      ]);
      touched.push({ id, ps: [a, b] });
      const commit = await http('POST', `${c1.url}/v1/transactions/${id}/commit`, undefined, {}, 120_000);
      // The vote is in the store, so the coordinator decides without the dead participant.
      expect(commit.body.outcome).toBe('committed');
      expect((await a.waitExit(30_000)).signal).toBe('SIGKILL');
      expect((await inventoryOf(b)).applied[id] ?? 'pending').not.toBe('abort');
      await restart(a);
      expect(await waitResolved(id, [a, b])).toBe('commit');
    });
  });

  describe('coordinator crashes', () => {
    /** Starts a coordinator that kills itself at `failpoint`, runs one transaction into it, and returns the id. */
    async function crashAt(failpoint: string, port: number, timeoutMs: number): Promise<{ id: string; answer: unknown }> {
      await ensureUp(a, b); // an earlier failure must not cascade into this test
      const crashed = coordinatorProc(stack, `k-${failpoint.split('.')[1]}`, port);
      crashed.start({ TWOPC_FAILPOINTS: failpoint });
      await crashed.waitHealthy();
      const id = await workThenBegin(
        crashed.url,
        `crash-${failpoint}-${SEED}-${random.int(1e9)}`,
        [
          { p: a, work: take('apple', qty()) },
          { p: b, work: take('pear', qty()) },
        ],
        timeoutMs,
      );
      touched.push({ id, ps: [a, b] });
      const answer = await http('POST', `${crashed.url}/v1/transactions/${id}/commit`, undefined, {}, 60_000).catch((e: unknown) => e);
      expect((await crashed.waitExit(30_000)).signal).toBe('SIGKILL');
      return { id, answer };
    }

    /** The client's answer, if it got one, is the outcome everyone applied. */
    function expectAnswerMatches(answer: unknown, decision: 'commit' | 'abort'): void {
      if (answer instanceof Error) return;
      expect((answer as { body: { outcome: string } }).body.outcome).toBe(decision === 'commit' ? 'committed' : 'aborted');
    }

    it('killed after freezing: the client retries on another coordinator and gets the outcome', async () => {
      const { id, answer } = await crashAt('coordinator.afterFreeze', BASE_PORT + 53, 30_000);
      expect(answer).toBeInstanceOf(Error); // died before any vote could decide
      // Nobody will ever write the decision key for this coordinator: the participants voted (from the
      // early prepare hints, or from the frozen record they watch) and the retry finds the votes.
      const retry = await http('POST', `${c1.url}/v1/transactions/${id}/commit`, undefined, {}, 120_000);
      expect(retry.body).toMatchObject({ id, outcome: 'committed', votes: { a: 'yes', b: 'yes' } });
      expect(await waitResolved(id, [a, b])).toBe('commit');
    });

    it('killed after some votes: past the deadline, the recovery loop of another coordinator decides', async () => {
      const { id, answer } = await crashAt('coordinator.afterSomeVotes', BASE_PORT + 55, 8_000);
      expect(answer).toBeInstanceOf(Error);
      expect(await waitResolved(id, [a, b])).toBe('commit');
      await waitUntil(`${id} collected`, 60_000, async () => (await http('GET', `${c1.url}/v1/transactions/${id}`)).body.collected === true);
    });

    it('killed when the votes decided but before the decision key: the votes are the commit point, so commit is recorded later', async () => {
      const { id, answer } = await crashAt('coordinator.afterVotes', BASE_PORT + 59, 8_000);
      expect(answer).toBeInstanceOf(Error);
      const g = await http('GET', `${c1.url}/v1/transactions/${id}`);
      // Committed already, by the votes alone, with no decision key yet (unless a helper was quicker).
      expect(g.body.state).toBe('committed');
      expect(await waitResolved(id, [a, b])).toBe('commit');
    });

    it('killed after the decision: participants apply it from the watch, and another coordinator collects it', async () => {
      const { id, answer } = await crashAt('coordinator.afterDecision', BASE_PORT + 57, 8_000);
      // The client may have its answer: the outcome is known when the votes decide, before the decision key.
      expectAnswerMatches(answer, 'commit');
      expect(await storeDecision(id)).toBe('commit');
      expect(await waitResolved(id, [a, b])).toBe('commit');
      await waitUntil(`${id} collected`, 60_000, async () => (await http('GET', `${c1.url}/v1/transactions/${id}`)).body.collected === true);
    });
  });

  describe('atomicity', () => {
    it('every participant applied the decision the store recorded, for every transaction, and holds no lock', async () => {
      expect(touched.length).toBeGreaterThan(0);
      for (const { id, ps } of touched) {
        const decision = await storeDecision(id);
        expect(decision, id).not.toBeNull();
        for (const p of ps) expect((await inventoryOf(p)).applied[id], `${p.name} ${id}`).toBe(decision);
      }
      for (const p of [a, b]) expect((await inventoryOf(p)).locks).toEqual({});
      // Conservation: the stock moved exactly by the committed work.
      const inv = await inventoryOf(a);
      expect(inv.stock['apple']).toBeLessThan(1_000);
    });
  });
}
