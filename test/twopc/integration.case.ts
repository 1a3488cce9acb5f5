// Goal: the 2PC runtime as real processes on a real 3-node store keeps the
// contract of docs/API.md, on every backend (the built-in store and
// etcd: integration.test.ts and integration-etcd.test.ts run this same
// suite): begin/enlist/commit with all "yes" commits at every participant;
// one "no" aborts everywhere; a silent participant's vote is filled with "no"
// at the deadline and the others abort; commit is idempotent (on any
// coordinator, before and after GC); abort after commit is 409
// already_committed; Idempotency-Key begins once; bad input is a 4xx with a
// clear code; finished transactions are garbage-collected into a compacted
// record GET still answers; and when a coordinator is killed with SIGKILL in
// the middle of a commit, another one finishes the transaction through its
// recovery loop. It also measures commit latency (printed).
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { parseMetrics } from '../../lib/metrics.js';
import { idForIdempotencyKey } from '../../coordinator/service/service.js';
import type { TxStore } from '../../coordinator/txstore/txstore.js';
import {
  beginWithWork,
  coordinatorProc,
  http,
  inventoryOf,
  inventoryProc,
  openStore,
  take,
  useStack,
  waitUntil,
  type Backend,
  type Proc,
  type Stack,
} from './support/procs.js';

export function integrationSuite(backend: Backend): void {
  describe.skipIf(backend.unavailable !== undefined)(`2PC integration on ${backend.name}`, () => {
    integrationTests(backend);
  });
}

function integrationTests(backend: Backend): void {
  const BASE_PORT = backend.basePort;
  const SEED = Number(process.env['TWOPC_SEED'] ?? Date.now() % 1_000_000);
  const random = new SeededRandom(SEED);

  let c1: Proc;
  let c2: Proc;
  let a: Proc;
  let b: Proc;
  let slow: Proc;
  let store: TxStore;
  let stack: Stack;

  console.log(`integration on ${backend.name}: seed ${SEED} (TWOPC_SEED=${SEED} replays it)`);
  useStack(backend, 'int', async (s) => {
    stack = s;
    store = await openStore(stack, 'integration-test');
    c1 = coordinatorProc(stack, 'c1', BASE_PORT + 51, ['--retention-ms', '60000']);
    c2 = coordinatorProc(stack, 'c2', BASE_PORT + 53, ['--retention-ms', '60000']);
    a = inventoryProc(stack, 'a', BASE_PORT + 61, { apple: 1_000 });
    b = inventoryProc(stack, 'b', BASE_PORT + 63, { pear: 1_000 });
    slow = inventoryProc(stack, 'slow', BASE_PORT + 65, { plum: 1_000 }, ['--prepare-delay-ms', '1500']);
    return [c1, c2, a, b, slow];
  });

  /** Waits until every participant named applied `decision` for `id` and holds no lock for it. */
  async function waitApplied(id: string, decision: 'commit' | 'abort', ps: readonly Proc[], timeoutMs = 30_000): Promise<void> {
    await waitUntil(`${id} ${decision} applied at ${ps.map((p) => p.name).join(', ')}`, timeoutMs, async () => {
      for (const p of ps) {
        const inv = await inventoryOf(p);
        if (inv.applied[id] !== decision || Object.values(inv.locks).includes(id)) return false;
      }
      return true;
    });
  }

  async function waitCollected(coordinator: Proc, id: string, timeoutMs = 30_000): Promise<void> {
    await waitUntil(`${id} collected`, timeoutMs, async () => (await http('GET', `${coordinator.url}/v1/transactions/${id}`)).body.collected === true);
  }

  describe('commit and abort', () => {
    it('all yes: commits at every participant, and GET shows it', async () => {
      const before = [(await inventoryOf(a)).stock['apple'] as number, (await inventoryOf(b)).stock['pear'] as number];
      const id = await beginWithWork(c1.url, [
        { p: a, work: take('apple', 3) },
        { p: b, work: take('pear', 4) },
      ]);
      const r = await http('POST', `${c1.url}/v1/transactions/${id}/commit`);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ id, outcome: 'committed', votes: { a: 'yes', b: 'yes' } });
      await waitApplied(id, 'commit', [a, b]);
      expect((await inventoryOf(a)).stock['apple']).toBe((before[0] as number) - 3);
      expect((await inventoryOf(b)).stock['pear']).toBe((before[1] as number) - 4);
      const g = await http('GET', `${c2.url}/v1/transactions/${id}`);
      expect(g.status).toBe(200);
      expect(g.body).toMatchObject({ id, state: 'committed', decision: 'commit', votes: { a: { vote: 'yes', by: 'a' }, b: { vote: 'yes', by: 'b' } } });
      const local = await http('GET', `${a.url}/v1/participant/transactions?limit=1000`);
      expect(local.body.transactions.find((t: { txId: string }) => t.txId === id)).toMatchObject({ phase: 'committed', vote: 'yes', decision: 'commit', inDoubt: false });
    });

    it('one no vote aborts everywhere and releases the locks', async () => {
      const before = (await inventoryOf(a)).stock['apple'];
      const id = await beginWithWork(c1.url, [
        { p: a, work: take('apple', 1) },
        { p: b, work: take('pear', 1_000_000) },
      ]);
      const r = await http('POST', `${c1.url}/v1/transactions/${id}/commit`);
      expect(r.status).toBe(200);
      expect(r.body.outcome).toBe('aborted');
      expect(r.body.votes.b).toBe('no');
      expect(r.body.reason).toMatch(/b voted no: insufficient stock of pear/);
      await waitApplied(id, 'abort', [a, b]);
      expect((await inventoryOf(a)).stock['apple']).toBe(before);
    });

    it('a silent participant: its vote is filled with "no" at the deadline, and the others abort', async () => {
      // The id of an Idempotency-Key is known before begin, so the work reaches `a` before the
      // short deadline starts to run, however slow this machine is today.
      const key = `silent-${SEED}-${random.int(1e9)}`;
      const id = idForIdempotencyKey(key);
      expect((await http('POST', `${a.url}/2pc/work`, { txId: id, work: take('apple', 1) })).status).toBe(200);
      // Nothing listens at the ghost's url: prepare fails, and nobody writes its vote but a coordinator.
      const participants = [
        { name: 'ghost', url: `http://127.0.0.1:${BASE_PORT + 99}` },
        { name: 'a', url: a.url },
      ];
      const begun = await http('POST', `${c1.url}/v1/transactions`, { timeoutMs: 3_000, participants }, { 'idempotency-key': key });
      expect(begun.body.id).toBe(id);
      const r = await http('POST', `${c1.url}/v1/transactions/${id}/commit`);
      expect(r.body).toMatchObject({ id, outcome: 'aborted', votes: { ghost: 'no', a: 'yes' } });
      // c1 fills it at the deadline; `a` would too, a second later, had c1 been slower (equally valid).
      expect(r.body.reason).toMatch(/ghost vote filled with no by (c1|participant:a)/);
      await waitApplied(id, 'abort', [a]);
      const g = await http('GET', `${c2.url}/v1/transactions/${id}`);
      expect(g.body.votes.ghost).toMatchObject({ vote: 'no' });
      expect(g.body.collected).toBe(false); // the ghost never acks: the keys stay
    });

    it('commit is idempotent on any coordinator, before and after GC; abort after commit is already_committed', async () => {
      const id = await beginWithWork(c1.url, [{ p: a, work: take('apple', 1) }]);
      const first = await http('POST', `${c1.url}/v1/transactions/${id}/commit`);
      const again = await http('POST', `${c1.url}/v1/transactions/${id}/commit`);
      const other = await http('POST', `${c2.url}/v1/transactions/${id}/commit`);
      expect(first.body.outcome).toBe('committed');
      expect(again.body).toEqual(first.body);
      expect(other.body).toEqual(first.body);
      const abort = await http('POST', `${c2.url}/v1/transactions/${id}/abort`);
      expect(abort.status).toBe(409);
      expect(abort.body.error.code).toBe('already_committed');
      const enlist = await http('POST', `${c1.url}/v1/transactions/${id}/participants`, { name: 'b', url: b.url });
      expect(enlist.status).toBe(409);
      expect(enlist.body.error.code).toBe('tx_not_active');
      await waitApplied(id, 'commit', [a]);
      await waitCollected(c1, id);
      const late = await http('POST', `${c2.url}/v1/transactions/${id}/commit`);
      expect(late.body).toEqual(first.body);
      expect((await http('POST', `${c1.url}/v1/transactions/${id}/abort`)).body.error.code).toBe('already_committed');
    });

    it('abort of an active transaction aborts it at every participant that got work', async () => {
      const id = await beginWithWork(c2.url, [
        { p: a, work: take('apple', 1) },
        { p: b, work: take('pear', 1) },
      ]);
      const r = await http('POST', `${c2.url}/v1/transactions/${id}/abort`, { reason: 'changed my mind' });
      expect(r.status).toBe(200);
      expect(r.body.outcome).toBe('aborted');
      expect((await http('POST', `${c1.url}/v1/transactions/${id}/commit`)).body.outcome).toBe('aborted');
      await waitApplied(id, 'abort', [a, b]);
    });

    it('Idempotency-Key: a repeated begin answers with the same transaction, even after it finished', async () => {
      const key = `order-${SEED}-${random.int(1e9)}`;
      const one = await http('POST', `${c1.url}/v1/transactions`, { timeoutMs: 5_000 }, { 'idempotency-key': key });
      const two = await http('POST', `${c2.url}/v1/transactions`, { timeoutMs: 9_000 }, { 'idempotency-key': key });
      expect(one.status).toBe(201);
      expect(two.status).toBe(201);
      expect(two.body).toEqual(one.body);
      const id = one.body.id as string;
      await http('POST', `${a.url}/2pc/work`, { txId: id, work: take('apple', 1) });
      await http('POST', `${c1.url}/v1/transactions/${id}/participants`, { name: 'a', url: a.url });
      expect((await http('POST', `${c1.url}/v1/transactions/${id}/commit`)).body.outcome).toBe('committed');
      await waitCollected(c1, id);
      const three = await http('POST', `${c2.url}/v1/transactions`, {}, { 'idempotency-key': key });
      expect(three.body).toMatchObject({ id, state: 'committed' });
      expect((await inventoryOf(a)).applied[id]).toBe('commit');
    });
  });

  describe('garbage collection', () => {
    it('removes every tx key once all participants acked, and keeps a compacted record for GET and listing', async () => {
      const id = await beginWithWork(c1.url, [
        { p: a, work: take('apple', 1) },
        { p: b, work: take('pear', 1) },
      ]);
      expect((await http('POST', `${c1.url}/v1/transactions/${id}/commit`)).body.outcome).toBe('committed');
      await waitCollected(c2, id);
      const left = await store.range(`tx/${id}`);
      expect(left.kvs.filter((kv) => kv.key === `tx/${id}` || kv.key.startsWith(`tx/${id}/`))).toEqual([]);
      const g = await http('GET', `${c2.url}/v1/transactions/${id}`);
      expect(g.body).toMatchObject({ id, state: 'committed', decision: 'commit', collected: true, participants: [{ name: 'a' }, { name: 'b' }] });
      expect(Object.keys(g.body.acks).sort()).toEqual(['a', 'b']);
      const listed = await http('GET', `${c1.url}/v1/transactions?state=committed&limit=1000`);
      expect(listed.status).toBe(200);
      expect(listed.body.transactions.map((t: { id: string }) => t.id)).toContain(id);
    });
  });

  describe('bad input gets a 4xx with a clear code', () => {
    it('answers malformed, unknown and oversized requests without a 5xx', async () => {
      const u = c1.url;
      const cases: [string, string, unknown, number, string][] = [
        ['POST', '/v1/transactions', '{"timeoutMs":', 400, 'invalid_json'],
        ['POST', '/v1/transactions', { timeoutMs: 5_000, color: 'red' }, 400, 'invalid_request'],
        ['POST', '/v1/transactions', { timeoutMs: 5 }, 400, 'invalid_timeout'],
        ['POST', '/v1/transactions', { timeoutMs: 'soon' }, 400, 'invalid_request'],
        ['POST', '/v1/transactions', { participants: [{ name: 'x/y', url: 'http://h' }] }, 400, 'invalid_participant'],
        ['POST', '/v1/transactions', { participants: [{ name: 'x', url: 'ftp://h' }] }, 400, 'invalid_participant'],
        ['POST', '/v1/transactions', { participants: [{ name: 'x', url: 'http://h' }, { name: 'x', url: 'http://h' }] }, 400, 'duplicate_participant'],
        ['POST', '/v1/transactions', { metadata: { blob: 'x'.repeat(20_000) } }, 400, 'invalid_argument'],
        ['POST', '/v1/transactions', { metadata: { blob: 'x'.repeat(70_000) } }, 413, 'body_too_large'],
        ['GET', '/v1/transactions/no%2Fslash', undefined, 400, 'invalid_tx_id'],
        ['GET', '/v1/transactions/%ZZ', undefined, 400, 'invalid_path'],
        ['POST', '/v1/transactions', 'null', 400, 'invalid_request'],
        ['GET', '/v1/transactions/never-begun', undefined, 404, 'tx_not_found'],
        ['POST', '/v1/transactions/never-begun/commit', undefined, 404, 'tx_not_found'],
        ['POST', '/v1/transactions/never-begun/abort', undefined, 404, 'tx_not_found'],
        ['POST', '/v1/transactions/never-begun/participants', { name: 'a', url: 'http://h' }, 404, 'tx_not_found'],
        ['POST', '/v1/transactions/x/participants', { name: 'a' }, 400, 'invalid_participant'], // no url, and no registry to find it in
        ['POST', '/v1/transactions/x/commit', { now: true }, 400, 'invalid_request'],
        ['GET', '/v1/transactions?state=weird', undefined, 400, 'invalid_request'],
        ['GET', '/v1/transactions?limit=0', undefined, 400, 'invalid_request'],
        ['GET', '/v1/nothing', undefined, 404, 'not_found'],
      ];
      for (const [method, path, body, status, code] of cases) {
        const r = await http(method, `${u}${path}`, body);
        expect({ path, body: typeof body === 'string' ? body : JSON.stringify(body)?.slice(0, 60), status: r.status, code: r.body?.error?.code }).toEqual({
          path,
          body: typeof body === 'string' ? body : JSON.stringify(body)?.slice(0, 60),
          status,
          code,
        });
      }
      const begun = await http('POST', `${u}/v1/transactions`, { participants: [{ name: 'a', url: 'http://127.0.0.1:1' }] }, { 'idempotency-key': ' ' });
      expect(begun.status).toBe(400);
      // The participant routes too.
      expect((await http('POST', `${a.url}/2pc/work`, { txId: 'ok', work: 1, extra: 2 })).body.error.code).toBe('invalid_request');
      expect((await http('POST', `${a.url}/2pc/work`, { txId: 'bad/id', work: {} })).body.error.code).toBe('invalid_tx_id');
      expect((await http('POST', `${a.url}/2pc/decision`, { txId: 'never-begun', decision: 'commit' })).body.error.code).toBe('decision_not_recorded');
      expect((await http('POST', `${a.url}/2pc/decision`, { txId: 'x', decision: 'maybe' })).status).toBe(400);
      expect((await http('POST', `${a.url}/2pc/prepare`, '[')).body.error.code).toBe('invalid_json');
    });

    it('enlisting after commit started is tx_not_active', async () => {
      const id = await beginWithWork(c1.url, [{ p: slow, work: take('plum', 1) }]);
      const commit = http('POST', `${c1.url}/v1/transactions/${id}/commit`);
      await waitUntil('frozen', 10_000, async () => (await http('GET', `${c2.url}/v1/transactions/${id}`)).body.recordState !== 'active');
      const late = await http('POST', `${c2.url}/v1/transactions/${id}/participants`, { name: 'b', url: b.url });
      expect(late.status).toBe(409);
      expect(late.body.error.code).toBe('tx_not_active');
      expect((await commit).body.outcome).toBe('committed');
      await waitApplied(id, 'commit', [slow]);
    });
  });

  describe('coordinator failure', () => {
    it('kill -9 of a coordinator mid-commit: another coordinator finishes through its recovery loop', async () => {
      const c3 = coordinatorProc(stack, 'c3', BASE_PORT + 55);
      c3.start();
      await c3.waitHealthy();
      const id = await beginWithWork(
        c3.url,
        [
          { p: a, work: take('apple', 2) },
          { p: slow, work: take('plum', 2) },
        ],
        8_000,
      );
      const commit = http('POST', `${c3.url}/v1/transactions/${id}/commit`).catch((e: unknown) => e);
      // The slow participant takes 1.5 s to prepare: kill while the votes are coming in.
      await waitUntil('frozen', 20_000, async () => (await http('GET', `${c1.url}/v1/transactions/${id}`)).body.recordState === 'preparing');
      await c3.kill9();
      expect(await commit).toBeInstanceOf(Error); // the client lost its answer with the process
      // No client retries: the recovery loops of c1 and c2 (and the participants' help at the
      // deadline) finish it. Commit is expected (both vote yes well before the deadline), but
      // what this test proves is that the decision is reached, applied everywhere and collected.
      await waitCollected(c1, id, 60_000);
      const g = await http('GET', `${c2.url}/v1/transactions/${id}`);
      expect(g.body).toMatchObject({ collected: true, votes: { a: { vote: 'yes' } } });
      const decision = g.body.decision as 'commit' | 'abort';
      expect(decision).toBe(g.body.votes.slow?.vote === 'yes' ? 'commit' : 'abort');
      await waitApplied(id, decision, [a, slow]);
    });
  });

  describe('measurements', () => {
    it('metrics count what happened, and commit latency of an all-yes 2-participant transaction is printed', async () => {
      const samples: number[] = [];
      const n = Number(process.env['TWOPC_LATENCY_SAMPLES'] ?? 40);
      for (let i = 0; i < n; i++) {
        const id = await beginWithWork(c1.url, [
          { p: a, work: take('apple', 1) },
          { p: b, work: take('pear', 1) },
        ]);
        const t0 = performance.now();
        const r = await http('POST', `${c1.url}/v1/transactions/${id}/commit`);
        samples.push(performance.now() - t0);
        expect(r.body, JSON.stringify(r.body)).toMatchObject({ outcome: 'committed' });
        // The answer comes when the votes decide, before the participants apply and unlock: the next
        // transaction takes the same skus, so it waits for that (outside the timed part), or it would
        // find them locked and vote no on a slow machine.
        await waitApplied(id, 'commit', [a, b]);
      }
      // For scale: one store write (a CAS, as the protocol's writes are) on the same cluster, now.
      const puts: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await store.casCreate(`bench/${SEED}/${i}`, 'x');
        puts.push(performance.now() - t0);
      }
      const q = (xs: number[], p: number): number => {
        const sorted = [...xs].sort((x, y) => x - y);
        return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
      };
      console.log(
        `${backend.name}: commit latency over ${n} sequential all-yes 2-participant commits: p50 ${q(samples, 0.5).toFixed(1)} ms, p99 ${q(samples, 0.99).toFixed(1)} ms; ` +
          `one store CAS meanwhile: p50 ${q(puts, 0.5).toFixed(1)} ms, p99 ${q(puts, 0.99).toFixed(1)} ms`,
      );
      const aborted = await http('POST', `${c1.url}/v1/transactions`, {});
      expect((await http('POST', `${c1.url}/v1/transactions/${aborted.body.id as string}/abort`)).body.outcome).toBe('aborted');
      const m = parseMetrics((await http('GET', `${c1.url}/metrics`)).body as string);
      expect(m.get('twopc_transactions_begun_total')).toBeGreaterThanOrEqual(n);
      expect(m.get('twopc_transactions_committed_total')).toBeGreaterThanOrEqual(n);
      expect(m.get('twopc_transactions_aborted_total')).toBeGreaterThan(0);
      expect(m.get('twopc_commit_latency_seconds_count')).toBeGreaterThanOrEqual(n);
      expect((await http('GET', `${c1.url}/healthz`)).status).toBe(200);
    });
  });
}
