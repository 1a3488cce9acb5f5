/**
 * Goal: the bank service (demo/bank/bank.ts) on a real data folder: commit
 * makes the new balances durable before it resolves, a commit replayed
 * after a restart is applied once, restore takes an in-doubt transfer's
 * hold back, applied ids are forgotten only once the participant log says
 * so, and an audit's prepare waits a bounded time for holds to drain (yes
 * when they do, no when they do not) while new transfers vote no. Behind a
 * participant restarted in doubt, a decision that arrives before recovery
 * restored the hold leaves no hold behind (docs/CHAOS.md, finding 6).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { decisionKey, encodeTxRecord, txKey } from '../../coordinator/protocol/kernel.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import type { TxWatchEvent, WatchOptions } from '../../coordinator/txstore/txstore.js';
import { ParticipantNode } from '../../participant/participant.js';
import { Bank, type BankFile } from '../../demo/bank/bank.js';
import { AUDIT_WORK, transferWork } from '../../demo/bank/work.js';
import { waitFor } from '../support/wait.js';

const dirs: string[] = [];
const nodes: ParticipantNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'demo-bank-'));
  dirs.push(d);
  return d;
}

const open = (dataDir: string, auditWaitMs = 300): Promise<Bank> =>
  Bank.open({ name: 'bank-a', dataDir, openingBalances: { alice: 100, bob: 100 }, auditWaitMs, onFatal: (e) => { throw e; } });
const onDisk = (dir: string): BankFile => JSON.parse(readFileSync(join(dir, 'bank.json'), 'utf8')) as BankFile;
const balance = (b: Bank, id: string): number | undefined => b.accounts().find((a) => a.id === id)?.balance;

describe('bank durability', () => {
  it('commit resolves only after the new balances are on disk', async () => {
    const dir = tempDir();
    const bank = await open(dir);
    expect(onDisk(dir)).toMatchObject({ openingTotal: 200, balances: { alice: 100, bob: 100 } });
    expect(await bank.prepare('t1', transferWork([{ account: 'alice', delta: -30 }]))).toEqual({ vote: 'yes' });
    await bank.commit('t1');
    expect(onDisk(dir)).toMatchObject({ balances: { alice: 70, bob: 100 }, committed: { t1: expect.any(Number) } });
    const reopened = await open(dir);
    expect(balance(reopened, 'alice')).toBe(70);
    expect(reopened.openingTotal).toBe(200);
  });

  it('a commit replayed after a restart (applied, not yet logged as applied) is applied once', async () => {
    const dir = tempDir();
    const work = transferWork([{ account: 'bob', delta: 25 }]);
    const first = await open(dir);
    await first.prepare('t1', work);
    await first.commit('t1');
    // The process dies here; the participant log still says "voted yes", so recovery restores and commits again.
    const second = await open(dir);
    second.restore('t1', work);
    await second.commit('t1');
    expect(balance(second, 'bob')).toBe(125);
    expect(second.locks()).toEqual({ holds: 0, readLocks: 0 });
  });

  it('restore after a restart holds an in-doubt debit again until its decision', async () => {
    const dir = tempDir();
    const work = transferWork([{ account: 'alice', delta: -100 }]);
    const first = await open(dir);
    await first.prepare('t1', work);
    const second = await open(dir);
    second.restore('t1', work);
    expect((await second.prepare('t2', transferWork([{ account: 'alice', delta: -1 }]))).vote).toBe('no');
    second.abort('t1');
    expect((await second.prepare('t2', transferWork([{ account: 'alice', delta: -1 }]))).vote).toBe('yes');
  });

  it('forgets applied ids only once the participant log says the apply is settled', async () => {
    const dir = tempDir();
    const bank = await open(dir);
    const settled = new Set<string>();
    bank.setSettledCheck((id) => settled.has(id));
    for (const id of ['t1', 't2']) {
      await bank.prepare(id, transferWork([{ account: 'bob', delta: 1 }]));
      await bank.commit(id);
    }
    expect(Object.keys(onDisk(dir).committed).sort()).toEqual(['t1', 't2']);
    settled.add('t1');
    await bank.prepare('t3', transferWork([{ account: 'bob', delta: 1 }]));
    await bank.commit('t3');
    expect(Object.keys(onDisk(dir).committed).sort()).toEqual(['t2', 't3']);
  });

  it('a bad work votes no with the reason, and commit of something never held fails loudly', async () => {
    const bank = await open(tempDir());
    expect(await bank.prepare('t1', { type: 'transfer', ops: [] })).toEqual({ vote: 'no', reason: 'work.ops must hold 1 to 16 ops' });
    await expect(bank.commit('t9')).rejects.toThrow('holds nothing');
  });
});

describe('audit locks in the bank', () => {
  it('an audit waits for a prepared transfer to finish, then reads the balances it left', async () => {
    const bank = await open(tempDir(), 5_000);
    await bank.prepare('t1', transferWork([{ account: 'alice', delta: -10 }]));
    const audit = bank.prepare('a1', AUDIT_WORK);
    // While the audit waits, a new transfer is refused at once (so the holds drain).
    expect(await bank.prepare('t2', transferWork([{ account: 'bob', delta: 1 }]))).toEqual({ vote: 'no', reason: 'audit lock: an audit is waiting for the locks' });
    await bank.commit('t1');
    expect(await audit).toEqual({ vote: 'yes' });
    expect(bank.auditRead('a1')).toMatchObject({ state: 'locked', total: 190 });
    await bank.commit('a1');
    expect(bank.auditRead('a1')).toMatchObject({ state: 'committed', total: 190 });
    expect((await bank.prepare('t2', transferWork([{ account: 'bob', delta: 1 }]))).vote).toBe('yes');
  });

  it('an audit that cannot get its locks in time votes no, and the bank takes transfers again', async () => {
    const bank = await open(tempDir(), 200);
    await bank.prepare('t1', transferWork([{ account: 'alice', delta: -10 }]));
    const started = Date.now();
    const answer = await bank.prepare('a1', AUDIT_WORK);
    expect(answer.vote).toBe('no');
    expect(answer.reason).toContain('could not lock every account within 200 ms');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await bank.prepare('t2', transferWork([{ account: 'bob', delta: 1 }]))).vote).toBe('yes');
  });
});

describe('the bank behind a participant, restarted in doubt', () => {
  async function participant(store: MemoryTxStore, dir: string, bank: Bank): Promise<ParticipantNode> {
    const node = await ParticipantNode.open({ name: 'bank-a', store, logPath: join(dir, 'participant-log.json'), service: bank, logger: silentLogger, onFatal: (e) => { throw e; } });
    nodes.push(node);
    return node;
  }

  // docs/CHAOS.md, finding 6 (seed 3): the watch, started before recovery, brought the abort of an
  // in-doubt transfer while recovery's read of it was out. The abort found no hold to release (the
  // hold died with the process); recovery then restored the hold, and nothing ever released it.
  it('an abort the watch brings before recovery reaches the transfer leaves no hold', async () => {
    const dir = tempDir();
    const store = new MemoryTxStore();
    const first = await participant(store, dir, await open(dir));
    await first.start();
    await first.receiveWork('t1', transferWork([{ account: 'alice', delta: -30 }]));
    const url = 'http://127.0.0.1:9';
    await store.put(txKey('t1'), encodeTxRecord({ participants: [{ name: 'bank-a', url }, { name: 'bank-b', url }], state: 'preparing', deadline: Date.now() + 60_000, createdAt: Date.now() }));
    expect(await first.prepare('t1')).toEqual({ txId: 't1', vote: 'yes' });
    await first.stop(); // a crash: the participant log and the bank file survive, the hold does not
    nodes.splice(nodes.indexOf(first), 1);

    const bank = await open(dir);
    const calls: string[] = [];
    const restore = bank.restore.bind(bank);
    const abort = bank.abort.bind(bank);
    let restored = (): void => undefined;
    const restoreCalled = new Promise<void>((r) => (restored = r));
    bank.restore = (txId, work) => {
      calls.push(`restore ${txId}`);
      restored();
      restore(txId, work);
    };
    bank.abort = (txId) => {
      calls.push(`abort ${txId}`);
      abort(txId);
    };
    const node = await participant(store, dir, bank);
    // The log write of an applied decision is slower than recovery's read: it lands after the restore.
    const recordApplied = node.log.recordApplied.bind(node.log);
    node.log.recordApplied = async (...args) => {
      await restoreCalled;
      return recordApplied(...args);
    };
    // The abort is decided once the watch runs and before recovery's read of t1 answers; the read
    // answers once the watch has handed the decision to the node and what that started has run.
    let delivered = (): void => undefined;
    const decisionDelivered = new Promise<void>((r) => (delivered = r));
    const watch = store.watch.bind(store);
    store.watch = async function* (prefix: string, opts?: WatchOptions): AsyncGenerator<TxWatchEvent> {
      for await (const e of watch(prefix, opts)) {
        yield e; // resumes once the watcher handled the event
        if (e.key === decisionKey('t1')) delivered();
      }
    };
    const range = store.range.bind(store);
    let decided = false;
    store.range = async (prefix, opts) => {
      if (prefix === txKey('t1') && !decided) {
        decided = true;
        await store.casCreate(decisionKey('t1'), 'abort');
        await decisionDelivered;
        await new Promise((r) => setImmediate(r)); // what the decision started runs first
      }
      return range(prefix, opts);
    };
    await node.start();
    await waitFor('t1 acknowledged', 5_000, () => node.log.get('t1')?.ackedAt !== undefined);
    // The chaos check's view: no prepared transaction left, so no hold may be left either.
    expect(node.transactions({ phase: 'prepared', limit: 10 })).toEqual([]);
    expect(bank.locks()).toEqual({ holds: 0, readLocks: 0 });
    expect(calls).toEqual(['restore t1', 'abort t1']);
    expect(balance(bank, 'alice')).toBe(100);
  });
});
