// Goal: the participant's local log is durable the way the protocol needs:
// what was recorded is there when a new instance opens the file (even though
// Vitest sets NODE_ENV=test, the trap that turns lowdb's preset into memory);
// a change resolves only after its line is appended and the file
// fdatasynced; concurrent changes share one write and one sync (group
// commit); opening rewrites the file durably (temp file, fsync, rename,
// directory fsync), cutting a torn last line, refusing damage elsewhere and
// migrating the old one-document format; a failed write fails the log for
// good; a full log drops acknowledged records before it refuses work, and
// compaction keeps acknowledged records within a byte budget; and
// the log refuses to change a vote or a decision once recorded.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Adapter } from 'lowdb';
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
function spyFs(ops: string[], hooks: { failDatasync?: boolean; beforeDatasync?: () => Promise<void> } = {}): LogFs {
  const name = (p: string): string => (p === dirname(path) ? 'dir' : p === dirname(dirname(path)) ? 'parent' : p.endsWith('.tmp') ? 'tmp' : 'log');
  return {
    readFile: (p, enc) => nodeLogFs.readFile(p, enc),
    mkdir: (p, opts) => nodeLogFs.mkdir(p, opts),
    rename: async (from, to) => {
      ops.push(`rename ${name(from)}->${name(to)}`);
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
          ops.push(`fsync ${n}`);
          return h.sync();
        },
        datasync: async () => {
          await hooks.beforeDatasync?.();
          ops.push(`datasync ${n}`);
          if (hooks.failDatasync) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
          return h.datasync();
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
    const header = readFileSync(path, 'utf8').split('\n')[0] as string;
    expect(JSON.parse(header.slice(9))).toEqual({ version: 2, participant: 'bank-a' });
  });

  it('a new log is created durably: its new directory (parent fsynced), temp written and fsynced, renamed, directory fsynced; an existing one is fsynced', async () => {
    const ops: string[] = [];
    await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs(ops) });
    expect(ops).toEqual(['open parent', 'fsync parent', 'close parent', 'open tmp', 'write tmp', 'fsync tmp', 'close tmp', 'rename tmp->log', 'open dir', 'fsync dir', 'close dir']);
    ops.length = 0;
    await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs(ops) });
    expect(ops).toEqual(['open log', 'fsync log', 'close log']);
  });

  it('a change resolves only after its line is appended and the file fdatasynced', async () => {
    const ops: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let resolved = false;
    const log = await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs(ops, { beforeDatasync: () => gate }) });
    ops.length = 0;
    const pending = log.recordVote('t1', 'no', 'no work', T0).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBe(false); // not synced: not durable, not acknowledged
    release();
    await pending;
    expect(ops).toEqual(['open log', 'write log', 'datasync log']);
  });

  it('concurrent changes share one write and one fdatasync (group commit) and all of them are durable', async () => {
    const ops: string[] = [];
    const log = await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs(ops) });
    ops.length = 0;
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.recordWork(`t${i}`, { i }, T0 + i)));
    const syncs = ops.filter((o) => o === 'datasync log').length;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThan(20);
    expect(ops.filter((o) => o === 'write log').length).toBe(syncs);
    const reopened = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(reopened.size).toBe(20);
  });

  it('a failed write fails the log until a restart, which opens what is on disk', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', { a: 1 }, T0);
    const broken = await ParticipantLog.open({ path, participant: 'bank-a', fs: spyFs([], { failDatasync: true }) });
    await expect(broken.recordVote('t1', 'yes', undefined, T0 + 1)).rejects.toMatchObject({ code: 'log_failed' });
    // Memory may be ahead of the disk now, so nothing is answered from it any more.
    expect(() => broken.get('t1')).toThrow(ParticipantLogError);
    await expect(broken.recordVote('t1', 'yes', undefined, T0 + 1)).rejects.toMatchObject({ code: 'log_failed' });
    // After a restart the work is there; the vote may be too (written, never synced, never acted on).
    const restarted = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(restarted.get('t1')?.work).toEqual({ a: 1 });
  });

  it('a torn last line is cut off; damage before the last line is refused', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    await log.recordWork('t1', { a: 1 }, T0);
    await log.recordVote('t1', 'yes', undefined, T0 + 1);
    await log.close();
    appendFileSync(path, '0badf00d {"txId":"t1","work":{"a":1},"rec'); // a crash in the middle of an append
    const reopened = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(reopened.get('t1')?.vote?.vote).toBe('yes');
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    await reopened.recordApplied('t1', 'commit', T0 + 2);
    await reopened.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[1] = `${lines[1]?.slice(0, -3) ?? ''}xyz`; // a flipped byte in the first record
    writeFileSync(path, lines.join('\n'));
    await expect(ParticipantLog.open({ path, participant: 'bank-a' })).rejects.toMatchObject({ code: 'log_corrupt' });
  });

  it('migrates a log of the old one-document format', async () => {
    const rec = { txId: 't1', work: { a: 1 }, receivedAt: T0, vote: { vote: 'yes', at: T0 + 1 } };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify({ version: 1, participant: 'bank-a', txs: { t1: rec } }));
    const log = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(log.get('t1')).toEqual(rec);
    await log.recordApplied('t1', 'commit', T0 + 2);
    expect((await ParticipantLog.open({ path, participant: 'bank-a' })).get('t1')?.applied?.decision).toBe('commit');
  });

  it('rewrites the file once superseded lines outweigh the live records', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a', rewriteFloorBytes: 1_000 });
    for (let i = 0; i < 40; i++) {
      const id = `t${i}`;
      await log.recordWork(id, { i }, T0 + i);
      await log.recordVote(id, 'yes', undefined, T0 + i);
      await log.recordApplied(id, 'commit', T0 + i);
      await log.recordAcked(id, T0 + i);
    }
    await log.close();
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeLessThan(1 + 40 * 4); // rewritten at least once
    const reopened = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(reopened.size).toBe(40);
    expect(reopened.unfinished()).toEqual([]);
  });

  it('the adapter is a plain lowdb Adapter: read returns null for a missing file', async () => {
    // participant/ does not import lowdb; this line keeps the shape checked (by tsc).
    const adapter: Adapter<{ x: number }> = new DurableJsonFile<{ x: number }>(join(dir, 'nothing.json'));
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

  it('keeps acknowledged records within a byte budget: compaction drops the oldest past it, only what canDrop lets go', async () => {
    const acked = async (log: ParticipantLog, id: string): Promise<void> => {
      await log.recordWork(id, { pad: 'x'.repeat(100) }, T0);
      await log.recordVote(id, 'no', undefined, T0);
      await log.recordApplied(id, 'abort', T0);
      await log.recordAcked(id, T0);
    };
    const probe = await ParticipantLog.open({ path: join(dir, 'probe', 'log.json'), participant: 'bank-a' });
    await acked(probe, 'p1');
    const oneRecord = probe.memoryBytes.acknowledged;
    expect(oneRecord).toBeGreaterThan(100);
    // Room for two acknowledged records; the retention (an hour) never expires here.
    const log = await ParticipantLog.open({ path, participant: 'bank-a', maxRetainedBytes: 2 * oneRecord + 5 });
    for (const id of ['t1', 't2', 't3', 't4']) await acked(log, id);
    await log.recordWork('t5', {}, T0); // not acknowledged: never dropped, not counted
    expect(log.memoryBytes.acknowledged).toBe(4 * oneRecord);
    expect(log.memoryBytes.live).toBeGreaterThan(4 * oneRecord);
    expect(log.compactionDue(T0, 3_600_000)).toBe(true);
    expect(await log.compact(T0, 3_600_000, (id) => id !== 't1')).toBe(2); // t1 is still in the store: t2 and t3 go
    expect(log.list().map((r) => r.txId)).toEqual(['t1', 't4', 't5']);
    expect(log.memoryBytes.acknowledged).toBe(2 * oneRecord);
    expect(log.compactionDue(T0, 3_600_000)).toBe(false);
    const reopened = await ParticipantLog.open({ path, participant: 'bank-a' });
    expect(reopened.list().map((r) => r.txId)).toEqual(['t1', 't4', 't5']);
    expect(reopened.memoryBytes).toEqual(log.memoryBytes);
  });

  it('a full log drops its oldest acknowledged records that the store has collected before it refuses work, and no others', async () => {
    const log = await ParticipantLog.open({ path, participant: 'bank-a', maxRecords: 4 });
    for (const id of ['t1', 't2', 't3']) {
      await log.recordWork(id, {}, T0);
      await log.recordVote(id, 'no', undefined, T0);
      await log.recordApplied(id, 'abort', T0);
      await log.recordAcked(id, T0);
    }
    await log.recordWork('t4', {}, T0);
    // Full, and no compaction has seen the store yet: tx/{id} may live, so nothing is evicted.
    await expect(log.recordWork('t5', {}, T0)).rejects.toMatchObject({ code: 'log_full', status: 503 });
    expect(log.compactionDue(T0, 3_600_000)).toBe(true); // nearly full, within retention and budget
    // The store still holds tx/t2; t1 and t3 are collected. Within the retention, nothing is dropped now.
    expect(await log.compact(T0, 3_600_000, (id) => id !== 't2')).toBe(0);
    await log.recordWork('t5', {}, T0); // full: t1, the oldest collected, goes
    expect(log.list().map((r) => r.txId)).toEqual(['t2', 't3', 't4', 't5']);
    await log.recordWork('t6', {}, T0); // then t3; t2 stays
    expect(log.list().map((r) => r.txId)).toEqual(['t2', 't4', 't5', 't6']);
    await expect(log.recordWork('t7', {}, T0)).rejects.toMatchObject({ code: 'log_full' }); // t2 is acknowledged but not collected
    expect(log.list().map((r) => r.txId)).toEqual(['t2', 't4', 't5', 't6']);
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
