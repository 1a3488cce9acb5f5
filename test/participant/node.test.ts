// Goal: the participant library (ParticipantNode) keeps the protocol's order
// and recovers on its own, tested in one process over the in-memory store
// model with real log files: the vote reaches the store only after the log
// on disk holds it; a decision hint is believed only when the store holds
// that decision; a restarted participant takes its locks back, and past the
// deadline helps decide by the commit rule (abort when a vote is missing,
// commit when all are yes); work never prepared before a restart is voted
// "no"; work for a transaction that froze or committed without us is aborted
// locally (no crash, no ack); a throwing prepare is a "no" with its reason;
// after a restart nothing is prepared before the in-doubt locks are back; a
// hinted abort of a transaction it never heard of is acknowledged.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { ackKey, decisionKey, decodeVote, encodeTxRecord, encodeVote, makeVote, txKey, voteKey, type JsonValue } from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import { type TxCasResult, type WriteOptions } from '../../coordinator/txstore/txstore.js';
import { ParticipantNode } from '../../participant/participant.js';
import { RecordingService } from '../twopc/support/inprocess.js';
import { waitUntil } from '../twopc/support/procs.js';

let dir = '';
let store: MemoryTxStore;
const nodes: ParticipantNode[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(os.tmpdir(), 'pnode-'));
  store = new MemoryTxStore();
});

afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function open(name: string, service = new RecordingService(), watchPrepareDelayMs = 250): Promise<{ node: ParticipantNode; service: RecordingService }> {
  const node = await ParticipantNode.open({
    name,
    store,
    logPath: join(dir, `${name}.json`),
    service,
    logger: silentLogger,
    config: { helpGraceMs: 50, watchPrepareDelayMs },
    onFatal: (e) => console.error('fatal', e),
  });
  await node.start();
  nodes.push(node);
  return { node, service };
}

/** Stops a node as a crash would leave it: the log on disk, nothing else. */
async function crash(node: ParticipantNode): Promise<void> {
  nodes.splice(nodes.indexOf(node), 1);
  await node.stop();
}

async function frozen(id: string, names: readonly string[], deadline: number): Promise<void> {
  const record = { participants: names.map((name) => ({ name, url: 'http://127.0.0.1:9' })), state: 'preparing' as const, deadline, createdAt: Date.now() };
  await store.put(txKey(id), encodeTxRecord(record));
}

async function storedVote(id: string, name: string): Promise<string | undefined> {
  const kv = await store.get(voteKey(id, name));
  return kv === null ? undefined : decodeVote(kv.value).vote;
}

describe('ParticipantNode', () => {
  it('writes its vote to the store only after the log on disk holds it', async () => {
    const seen: string[] = [];
    const casCreate = store.casCreate.bind(store);
    store.casCreate = async (key: string, value: string, opts?: WriteOptions): Promise<TxCasResult> => {
      if (key.includes('/vote/')) {
        // The log file as a restart would read it: lines of `<crc32> <record JSON>`, the newest one wins.
        const records = readFileSync(join(dir, 'a.json'), 'utf8').split('\n').slice(1, -1).map((l) => JSON.parse(l.slice(9)) as { txId: string; vote?: { vote: string } });
        seen.push(`${key}:${records.filter((r) => r.txId === 't1').at(-1)?.vote?.vote ?? 'none'}`);
      }
      return casCreate(key, value, opts);
    };
    const { node } = await open('a');
    await node.receiveWork('t1', { n: 1 });
    expect(await node.prepare('t1', Date.now() + 10_000)).toEqual({ txId: 't1', vote: 'yes' });
    expect(seen).toEqual(['tx/t1/vote/a:yes']);
    expect(await storedVote('t1', 'a')).toBe('yes');
  });

  it('learns the decision from the watch, applies it once, acks, and believes a hint only when the store agrees', async () => {
    const { node, service } = await open('a');
    await node.receiveWork('t2', { n: 2 });
    await frozen('t2', ['a'], Date.now() + 10_000);
    expect(await node.prepare('t2')).toEqual({ txId: 't2', vote: 'yes' });
    await expect(node.decisionHint('t2', 'commit')).rejects.toMatchObject({ code: 'decision_not_recorded' });
    await store.casCreate(decisionKey('t2'), 'commit');
    await waitUntil('acked', 5_000, async () => (await store.get('tx/t2/ack/a')) !== null);
    await expect(node.decisionHint('t2', 'abort')).rejects.toMatchObject({ code: 'decision_conflict' });
    expect(await node.decisionHint('t2', 'commit')).toMatchObject({ phase: 'committed' });
    expect(service.calls.filter((c) => c === 'commit t2')).toHaveLength(1);
    expect(node.transactions({ limit: 10 })[0]).toMatchObject({ txId: 't2', phase: 'committed', vote: 'yes', decision: 'commit' });
  });

  it('restarted in doubt past the deadline: restores its locks and helps decide abort when a vote is missing', async () => {
    const first = await open('a');
    const deadline = Date.now() + 300;
    await first.node.receiveWork('t3', { n: 3 }); // work comes before the freeze (or the watch votes "no")
    await frozen('t3', ['a', 'b'], deadline);
    expect(await first.node.prepare('t3', deadline)).toEqual({ txId: 't3', vote: 'yes' });
    await crash(first.node);
    await waitUntil('deadline passed', 5_000, () => Date.now() > deadline);
    const again = await open('a');
    await waitUntil('decided and applied', 5_000, () => again.service.applied('t3') !== undefined);
    expect(again.service.calls).toEqual(['restore t3', 'abort t3']);
    expect((await store.get(decisionKey('t3')))?.value).toBe('abort');
    expect(await storedVote('t3', 'b')).toBe('no'); // filled by the helper, by CAS
    expect(decodeVote((await store.get(voteKey('t3', 'b')))!.value).by).toBe('participant:a');
  });

  it('restarted in doubt with every vote yes: helps decide commit', async () => {
    const first = await open('a');
    await first.node.receiveWork('t4', { n: 4 });
    await crash(first.node); // before prepare even ran: the work alone is logged
    await frozen('t4', ['a', 'b'], Date.now() + 300);
    await store.casCreate(voteKey('t4', 'b'), encodeVote(makeVote('yes', 'b')));
    const second = await open('a'); // recovery: work without a vote -> "no"
    await waitUntil('aborted', 5_000, () => second.service.applied('t4') === 'abort');
    expect(await storedVote('t4', 'a')).toBe('no');

    await second.node.receiveWork('t5', { n: 5 });
    await frozen('t5', ['a', 'b'], Date.now() + 300);
    await store.casCreate(voteKey('t5', 'b'), encodeVote(makeVote('yes', 'b')));
    expect(await second.node.prepare('t5', Date.now() + 300)).toEqual({ txId: 't5', vote: 'yes' });
    await crash(second.node);
    const third = await open('a');
    await waitUntil('committed', 5_000, () => third.service.applied('t5') === 'commit');
    expect(third.service.calls).toEqual(['restore t5', 'commit t5']);
  });

  it('work for a transaction that committed without us (never enlisted) is aborted locally, live and after a restart', async () => {
    const { node, service } = await open('a');
    await node.receiveWork('t7', { n: 7 });
    await frozen('t7', ['b'], Date.now() + 10_000);
    await waitUntil('aborted', 5_000, () => service.applied('t7') === 'abort');
    expect(await store.get('tx/t7/ack/a')).toBeNull(); // not a participant: no ack

    await node.receiveWork('t8', { n: 8 });
    await crash(node);
    await frozen('t8', ['b'], Date.now() + 10_000);
    await store.casCreate(voteKey('t8', 'b'), encodeVote(makeVote('yes', 'b')));
    await store.casCreate(decisionKey('t8'), 'commit');
    const again = await open('a');
    await waitUntil('aborted after restart', 5_000, () => again.node.transactions({ limit: 10 }).find((t) => t.txId === 't8')?.phase === 'aborted');
    expect(again.service.calls).toEqual(['abort t8']);
    expect(await store.get(voteKey('t8', 'a'))).toBeNull(); // no vote cast for a transaction that is not ours
  });

  it('a prepare that throws is a "no" with its reason, and the transaction aborts locally', async () => {
    const service = new RecordingService();
    service.prepare = (_txId: string, _work: JsonValue) => {
      throw new Error('disk on fire');
    };
    const { node } = await open('a', service);
    await node.receiveWork('t6', { n: 6 });
    expect(await node.prepare('t6')).toEqual({ txId: 't6', vote: 'no' });
    const vote = decodeVote((await store.get(voteKey('t6', 'a')))!.value);
    expect(vote).toMatchObject({ vote: 'no', by: 'a', reason: 'prepare failed: disk on fire' });
    await waitUntil('aborted', 5_000, () => service.applied('t6') === 'abort');
  });

  // Found by the 2PC simulation (`prepare-before-restore`, seed 2153): the watch
  // prepared a transaction frozen during start-up recovery against balances
  // whose in-doubt holds were not restored yet, promising the same money twice.
  it('after a restart, a transaction frozen while recovery runs is not prepared before recovery restored the in-doubt locks', async () => {
    const first = await open('a');
    await first.node.receiveWork('t20', { n: 20 });
    await frozen('t20', ['a', 'b'], Date.now() + 60_000);
    expect(await first.node.prepare('t20', Date.now() + 60_000)).toEqual({ txId: 't20', vote: 'yes' });
    await first.node.receiveWork('t21', { n: 21 });
    await crash(first.node);
    // Recovery's reads are slow; meanwhile t21 freezes and the watch sees it at once.
    const range = store.range.bind(store);
    let froze = false;
    store.range = async (prefix, opts) => {
      if (prefix === txKey('t20') || prefix === txKey('t21')) {
        if (!froze) {
          froze = true;
          await frozen('t21', ['a'], Date.now() + 60_000);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      return range(prefix, opts);
    };
    const again = await open('a', new RecordingService(), 0);
    await waitUntil('t20 and t21 recovered', 5_000, async () => (await store.get(voteKey('t21', 'a'))) !== null);
    expect(froze).toBe(true);
    // Recovered before any prepare: t21's work lost its locks with the process, so it is a "no",
    // never validated against balances whose in-doubt holds (t20) were not back yet.
    expect(again.service.calls).toEqual(['restore t20', 'abort t21']);
    expect(await storedVote('t21', 'a')).toBe('no');
  });

  // A participant that was down when the list froze has no record; its vote was filled "no".
  // Without an ack the transaction could never be collected.
  it('acknowledges a hinted abort of a transaction it has no record of, if the frozen list names it', async () => {
    const { node, service } = await open('a');
    await frozen('t22', ['a', 'b'], Date.now() - 1);
    await store.casCreate(voteKey('t22', 'a'), encodeVote(makeVote('no', 'coordinator:c1', 'no vote before the deadline')));
    await store.casCreate(decisionKey('t22'), 'abort');
    await frozen('t23', ['b'], Date.now() - 1); // not ours
    await store.casCreate(decisionKey('t23'), 'abort');
    await node.decisionHint('t22', 'abort');
    await node.decisionHint('t23', 'abort');
    await waitUntil('t22 acked', 5_000, async () => (await store.get(ackKey('t22', 'a'))) !== null);
    expect(service.calls).toEqual(['abort t22']);
    expect(await store.get(ackKey('t23', 'a'))).toBeNull();
    expect(node.transactions({ limit: 10 }).map((t) => [t.txId, t.phase])).toEqual([['t22', 'aborted']]);
  });
});
