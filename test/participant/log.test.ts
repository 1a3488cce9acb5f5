// Goal: the participant's local log is durable the way the protocol needs:
// what was recorded is there when a new instance opens the file (even though
// Vitest sets NODE_ENV=test, the trap that turns lowdb's preset into memory);
// a write resolves only after the temp file is fsynced, renamed over the log
// and the directory fsynced; concurrent writes share one fsync; a failed
// write leaves the old file intact and fails the log for good; and the
// log refuses to change a vote or a decision once recorded.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../lib/assert.js';
import { DurableJsonFile, nodeLogFs, ParticipantLog, ParticipantLogError, type LogFs } from '../../participant/log.js';

const T0 = 1_700_000_000_000;
let dir = '';
let path = '';

beforeEach(() => {
  dir = mkdtempSync(join(os.tmpdir(), 'plog-'));
  path = join(dir, 'bank-a', 'log.json');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Wraps the real fs and records every operation in order, with the file it touched. */
function spyFs(ops: string[], hooks: { failRename?: boolean; beforeDirSync?: () => Promise<void> } = {}): LogFs {
  const name = (p: string): string => (p === dirname(path) ? 'dir' : p.endsWith('.tmp') ? 'tmp' : 'log');
  return {
    readFile: (p, enc) => nodeLogFs.readFile(p, enc),
    mkdir: (p, opts) => nodeLogFs.mkdir(p, opts),
    rename: async (from, to) => {
      ops.push(`rename ${name(from)}->${name(to)}`);
      if (hooks.failRename) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
      return nodeLogFs.rename(from, to);
    },
    open: async (p, flags) => {
      const h = await nodeLogFs.open(p, flags);
      const n = name(p);
      ops.push(`open ${n}`);
      return {
        writeFile: async (data, enc) => {
          ops.push(`write ${n}`);
          return h.writeFile(data, enc);
        },
        sync: async () => {
          if (n === 'dir') await hooks.beforeDirSync?.();
          ops.push(`fsync ${n}`);
          return h.sync();
        },
        close: async () => {
          ops.push(`close ${n}`);
          return h.close();
        },
      };
    },
  };
}

describe('ParticipantLog durability', () => {
  it('records are there when a new instance opens the same file (NODE_ENV=test does not matter)', async () => {
    expect(process.env['NODE_ENV']).toBe('test'); // the condition under which JSONFilePreset would use memory
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', { from: 'alice', amount: 5 }, T0);
    await log.recordVote('t1', 'yes', undefined, T0 + 1);
    await log.recordWork('t2', { from: 'bob', amount: 7 }, T0 + 2);
    await log.recordVote('t2', 'no', 'insufficient funds', T0 + 3);
    await log.recordApplied('t1', 'commit', T0 + 4);
    await log.recordAcked('t1', T0 + 5);

    const reopened = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(reopened.get('t1')).toEqual({ txId: 't1', work: { from: 'alice', amount: 5 }, receivedAt: T0, vote: { vote: 'yes', at: T0 + 1 }, applied: { decision: 'commit', at: T0 + 4 }, ackedAt: T0 + 5 });
    expect(reopened.get('t2')?.vote).toEqual({ vote: 'no', reason: 'insufficient funds', at: T0 + 3 });
    expect(reopened.unfinished().map((r) => r.txId)).toEqual(['t2']);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ version: 1, participant: 'bank-a' });
  });

  it('a write resolves only after: temp written and fsynced, renamed over the log, directory fsynced', async () => {
    const ops: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let resolved = false;
    const log = await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs(ops, { beforeDirSync: () => gate }) });
    const pending = log.recordVote('t1', 'no', 'no work', T0).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBe(false); // the directory fsync has not happened: not durable, not acknowledged
    release();
    await pending;
    expect(ops).toEqual(['open tmp', 'write tmp', 'fsync tmp', 'close tmp', 'rename tmp->log', 'open dir', 'fsync dir', 'close dir']);
  });

  it('concurrent writes share fsyncs (group commit) and all of them are durable', async () => {
    const ops: string[] = [];
    const log = await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs(ops) });
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.recordWork(`t${i}`, { i }, T0 + i)));
    const fsyncs = ops.filter((o) => o === 'fsync tmp').length;
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThan(20);
    const reopened = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(reopened.size).toBe(20);
  });

  it('a failed write leaves the old file intact and fails the log until a restart', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', { a: 1 }, T0);
    const broken = await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs([], { failRename: true }) });
    await expect(broken.recordVote('t1', 'yes', undefined, T0 + 1)).rejects.toMatchObject({ code: 'log_failed' });
    // Memory may be ahead of the disk now, so nothing is answered from it any more.
    expect(() => broken.get('t1')).toThrow(ParticipantLogError);
    await expect(broken.recordVote('t1', 'yes', undefined, T0 + 1)).rejects.toMatchObject({ code: 'log_failed' });
    // After a restart: the vote never became durable, the temp file is ignored.
    expect(readdirSync(dirname(path)).sort()).toEqual(['log.json', 'log.json.tmp']);
    const restarted = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(restarted.get('t1')?.vote).toBeUndefined();
  });

  it('the adapter is a plain lowdb Adapter: read returns null for a missing file', async () => {
    const adapter = new DurableJsonFile<{ x: number }>(join(dir, 'nothing.json'));
    expect(await adapter.read()).toBeNull();
  });
});

describe('ParticipantLog rules', () => {
  it('work is idempotent, conflicting work and late work are refused', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', { a: 1 }, T0);
    await expect(log.recordWork('t1', { a: 1 }, T0 + 1)).resolves.toMatchObject({ receivedAt: T0 });
    await expect(log.recordWork('t1', { a: 2 }, T0 + 1)).rejects.toMatchObject({ code: 'work_conflict', status: 409 });
    await log.recordVote('t1', 'yes', undefined, T0 + 2);
    await expect(log.recordWork('t1', { a: 1 }, T0 + 3)).rejects.toMatchObject({ code: 'tx_not_active' });
    await expect(log.recordWork('bad/id', {}, T0)).rejects.toMatchObject({ code: 'invalid_tx_id', status: 400 });
  });

  it('a vote and a decision never change; commit needs a logged yes; ack needs an applied decision', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', {}, T0);
    await log.recordVote('t1', 'yes', undefined, T0);
    await expect(log.recordVote('t1', 'yes', undefined, T0 + 9)).resolves.toMatchObject({ vote: { at: T0 } });
    await expect(log.recordVote('t1', 'no', undefined, T0)).rejects.toThrow(AssertionError);
    await log.recordApplied('t1', 'abort', T0);
    await expect(log.recordApplied('t1', 'commit', T0)).rejects.toThrow(AssertionError);
    await log.recordVote('t2', 'no', 'no work', T0);
    await expect(log.recordApplied('t2', 'commit', T0)).rejects.toThrow(AssertionError);
    await expect(log.recordAcked('t3', T0)).rejects.toThrow(AssertionError);
    await expect(log.recordVote('t4', 'yes', undefined, T0)).rejects.toThrow(AssertionError); // yes without work
  });

  it('bounds its size and compacts acknowledged records past the retention time', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a', maxRecords: 2 });
    await log.recordWork('t1', {}, T0);
    await log.recordWork('t2', {}, T0);
    await expect(log.recordWork('t3', {}, T0)).rejects.toMatchObject({ code: 'log_full', status: 503 });
    await log.recordVote('t1', 'no', undefined, T0);
    await log.recordApplied('t1', 'abort', T0);
    await log.recordAcked('t1', T0 + 10);
    expect(await log.compact(T0 + 100, 1_000)).toBe(0);
    expect(await log.compact(T0 + 1_010, 1_000)).toBe(1);
    expect(log.list().map((r) => r.txId)).toEqual(['t2']);
    expect((await ParticipantLog.open({ path, participant: 'bank-a' })).size).toBe(1);
  });

  it('refuses a corrupt file or another participant\'s log', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', {}, T0);
    await expect(ParticipantLog.open({ path, participant: 'bank-b' })).rejects.toMatchObject({ code: 'log_corrupt' });
    writeFileSync(path, '{"version":1,"participant":"bank-a","txs":');
    await expect(ParticipantLog.open({ path, participant: 'bank-a' })).rejects.toMatchObject({ code: 'log_corrupt' });
    writeFileSync(path, '{"version":1,"participant":"bank-a","txs":{"t1":{"txId":"t1","receivedAt":1,"vote":{"vote":"maybe"}}}}');
    await expect(ParticipantLog.open({ path, participant: 'bank-a' })).rejects.toMatchObject({ code: 'log_corrupt' });
  });
});
