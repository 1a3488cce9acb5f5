// Goal: the coordinator runtime and service logic, fast and in one process,
// over the in-memory store model (unit tests only; test/twopc runs the same
// paths as real processes on a real cluster): a commit drives prepare, the
// votes, the decision, the acks and garbage collection; participants vote
// and learn the decision from the store watch alone when every hint is lost;
// the recovery loop finishes a transaction a dead coordinator left in
// doubt; idle live transactions are evicted under the live bound and loaded
// back on demand; a no vote and a deadline abort with the right reasons.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DONE_PREFIX } from '../../coordinator/protocol/compacted.js';
import { decisionKey, encodeTxRecord, encodeVote, makeVote, txKey, voteKey } from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { http, waitUntil } from '../twopc/support/procs.js';
import { startCoordinator, startParticipant, type LocalParticipant } from '../twopc/support/inprocess.js';
import { idForIdempotencyKey, type CoordinatorService } from '../../coordinator/service/service.js';
import type { CoordinatorServer } from '../../coordinator/service/server.js';

let dir = '';
let store: MemoryTxStore;
const closers: (() => Promise<void>)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(os.tmpdir(), 'coord-svc-'));
  store = new MemoryTxStore();
});

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

async function coordinator(overrides: Parameters<typeof startCoordinator>[1] = {}): Promise<{ server: CoordinatorServer; service: CoordinatorService; url: string }> {
  const c = await startCoordinator(store, overrides);
  closers.push(() => c.server.stop());
  return c;
}

async function participant(name: string, serve = true): Promise<LocalParticipant> {
  const p = await startParticipant(store, dir, name, undefined, serve);
  closers.push(() => p.close());
  return p;
}

async function begin(url: string, ps: readonly LocalParticipant[], timeoutMs = 10_000): Promise<string> {
  const r = await http('POST', `${url}/v1/transactions`, { timeoutMs });
  expect(r.status).toBe(201);
  const id = r.body.id as string;
  for (const p of ps) {
    await p.node.receiveWork(id, { item: p.name });
    expect((await http('POST', `${url}/v1/transactions/${id}/participants`, { name: p.name, url: p.url })).status).toBe(200);
  }
  return id;
}

function txKeysOf(id: string): string[] {
  return [...store.dump().keys()].filter((k) => k === txKey(id) || k.startsWith(`${txKey(id)}/`));
}

describe('coordinator service over the in-memory store', () => {
  it('commits: prepare, votes, decision, acks, then the keys are collected into the compacted record', async () => {
    const { url } = await coordinator();
    const [a, b] = [await participant('a'), await participant('b')];
    const id = await begin(url, [a, b]);
    const r = await http('POST', `${url}/v1/transactions/${id}/commit`);
    expect(r.body).toEqual({ id, outcome: 'committed', votes: { a: 'yes', b: 'yes' } });
    await waitUntil('collected', 5_000, () => txKeysOf(id).length === 0);
    expect(a.service.applied(id)).toBe('commit');
    expect(b.service.applied(id)).toBe('commit');
    expect(store.dump().has(`${DONE_PREFIX}${id}`)).toBe(true);
    const g = await http('GET', `${url}/v1/transactions/${id}`);
    expect(g.body).toMatchObject({ id, state: 'committed', collected: true, decision: 'commit' });
  });

  it('every hint lost: participants vote on the frozen record and apply the decision they watch', async () => {
    const { url } = await coordinator();
    // Not served over HTTP: every prepare and decision call fails.
    const [a, b] = [await participant('a', false), await participant('b', false)];
    const id = await begin(url, [a, b]);
    const r = await http('POST', `${url}/v1/transactions/${id}/commit`);
    expect(r.body.outcome).toBe('committed');
    await waitUntil('applied by both', 5_000, () => a.service.applied(id) === 'commit' && b.service.applied(id) === 'commit');
    await waitUntil('collected', 5_000, () => txKeysOf(id).length === 0);
  });

  it('fault injection: with RAFT2PC_FAULTS=1 a coordinator cut off from one participant still commits through the store; without it the route is 404', async () => {
    expect((await http('GET', `${(await coordinator()).url}/v1/admin/faults`)).status).toBe(404);
    process.env['RAFT2PC_FAULTS'] = '1';
    let url: string;
    let server: CoordinatorServer;
    try {
      ({ url, server } = await coordinator({ id: 'c-faults' }));
    } finally {
      delete process.env['RAFT2PC_FAULTS'];
    }
    const [a, b] = [await participant('a'), await participant('b')];
    for (const body of [{}, { blockedUrls: 'x' }, { blockedUrls: ['ftp://x'] }, { blockedUrls: [], more: 1 }]) {
      const bad = await http('PUT', `${url}/v1/admin/faults`, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
    }
    const cut = await http('PUT', `${url}/v1/admin/faults`, { blockedUrls: [`${a.url}/`] });
    expect(cut.body).toEqual({ id: 'c-faults', blockedUrls: [a.url] });
    const id = await begin(url, [a, b]);
    const r = await http('POST', `${url}/v1/transactions/${id}/commit`);
    expect(r.body.outcome).toBe('committed');
    // a never heard from the coordinator: it voted and applied from the store.
    await waitUntil('applied by both', 5_000, () => a.service.applied(id) === 'commit' && b.service.applied(id) === 'commit');
    await waitUntil('the blocked prepare hint to fail', 5_000, () => server.hints.failed >= 1);
    expect((await http('DELETE', `${url}/v1/admin/faults`)).body).toEqual({ id: 'c-faults', blockedUrls: [] });
  });

  it('a no vote aborts with its reason; every participant that got work aborts', async () => {
    const { url } = await coordinator();
    const [a, b] = [await participant('a'), await participant('b')];
    b.service.answer = { vote: 'no', reason: 'out of stock' };
    const id = await begin(url, [a, b]);
    const r = await http('POST', `${url}/v1/transactions/${id}/commit`);
    expect(r.body).toMatchObject({ outcome: 'aborted', votes: { b: 'no' }, reason: 'b voted no: out of stock' });
    await waitUntil('aborted by both', 5_000, () => a.service.applied(id) === 'abort' && b.service.applied(id) === 'abort');
  });

  it('the recovery loop finishes what a dead coordinator left undecided past its deadline, by the commit rule', async () => {
    // What coordinators that died mid-commit leave behind: frozen records, no decision. In
    // `allYes` every vote landed; in `oneMissing` one participant never voted.
    const participants = [
      { name: 'p', url: 'http://127.0.0.1:9' },
      { name: 'q', url: 'http://127.0.0.1:9' },
    ];
    const record = { participants, state: 'preparing' as const, deadline: Date.now() - 1, createdAt: Date.now() - 5_000 };
    for (const id of ['allYes', 'oneMissing']) await store.put(txKey(id), encodeTxRecord(record));
    for (const p of ['p', 'q']) await store.casCreate(voteKey('allYes', p), encodeVote(makeVote('yes', p)));
    await store.casCreate(voteKey('oneMissing', 'p'), encodeVote(makeVote('yes', 'p')));
    const { service, url } = await coordinator({ recoveryIntervalMs: 60_000 });
    const pass = await service.recovery.runOnce();
    // allYes is committed by its votes already (not in doubt), but nobody recorded the decision.
    expect(pass).toMatchObject({ inDoubt: 1, adopted: 2 });
    await waitUntil('decided', 5_000, async () => (await store.get(decisionKey('allYes'))) !== null && (await store.get(decisionKey('oneMissing'))) !== null);
    expect((await store.get(decisionKey('allYes')))?.value).toBe('commit');
    expect((await store.get(decisionKey('oneMissing')))?.value).toBe('abort');
    const g = await http('GET', `${url}/v1/transactions/oneMissing`);
    expect(g.body.votes.q).toMatchObject({ vote: 'no', by: 'c1' });
    // Nobody acks (the participants are gone), so nothing is collected.
    expect(txKeysOf('allYes').length).toBeGreaterThan(0);
  });

  it('evicts idle transactions past the live bound and loads them back on demand', async () => {
    const { url, service } = await coordinator({ maxLiveTxs: 2 });
    const a = await participant('a');
    const ids = [await begin(url, [a]), await begin(url, [a]), await begin(url, [a])];
    expect(service.runtime.liveCount).toBeLessThanOrEqual(2);
    const r = await http('POST', `${url}/v1/transactions/${ids[0] as string}/commit`);
    expect(r.body.outcome).toBe('committed');
  });

  it('a deadline with a silent participant fills its vote with no and aborts', async () => {
    const { url } = await coordinator();
    const a = await participant('a');
    // The work goes first (an Idempotency-Key fixes the id), so the short deadline cannot beat it.
    const id = idForIdempotencyKey('silent-1');
    await a.node.receiveWork(id, { y: 1 });
    const participants = [{ name: 'silent', url: 'http://127.0.0.1:9' }, { name: 'a', url: a.url }];
    const begun = await http('POST', `${url}/v1/transactions`, { timeoutMs: 300, participants }, { 'idempotency-key': 'silent-1' });
    expect(begun.body.id).toBe(id);
    const r = await http('POST', `${url}/v1/transactions/${id}/commit`);
    expect(r.body).toMatchObject({ outcome: 'aborted', votes: { silent: 'no' }, reason: 'silent vote filled with no by c1: no vote before the deadline' });
    // (a's own help comes later than the coordinator: participants wait helpGraceMs past the deadline.)
    await waitUntil('a aborted', 5_000, () => a.service.applied(id) === 'abort');
  });
});
