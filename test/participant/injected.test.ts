// Goal: the participant runs with every outside-world effect injected, as
// the deterministic simulation runs it: with an in-memory LogFs it never
// touches the disk (and a second node recovers from what the first left
// there); with manual timers nothing times out, prepares from the watch or
// helps decide until those timers are advanced; a failed fdatasync stops the
// node (503 participant_failed) and reaches onFatal once, without exiting
// the process; the config refuses unknown fields and out-of-range values by
// name; and participant/ imports other components only through their entry
// points, with no import cycle inside it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { VirtualTimers } from '../support/virtual-timers.js';
import { decodeVote, encodeTxRecord, txKey, voteKey } from '../../coordinator/protocol/index.js';
import { MemoryTxStore } from '../../coordinator/txstore/index.js';
import { DEFAULT_PARTICIPANT_CONFIG, makeParticipantConfig, ParticipantConfigError, ParticipantNode, type LogFileHandle, type LogFs, type ParticipantNodeOptions, type ParticipantService, type PrepareAnswer } from '../../participant/index.js';
import { RecordingService } from '../twopc/support/inprocess.js';

/** A file system in memory: files, directories, and every sync it was asked for. */
class MemoryLogFs implements LogFs {
  readonly files = new Map<string, string>();
  readonly dirs = new Set<string>(['/']);
  readonly syncs: string[] = [];
  failDatasync = false;

  async readFile(path: string): Promise<string> {
    const text = this.files.get(path);
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  }

  async open(path: string, flags: 'a' | 'w' | 'r'): Promise<LogFileHandle> {
    if (!this.dirs.has(dirname(path))) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    if (flags === 'w' || (flags === 'a' && !this.files.has(path))) this.files.set(path, '');
    return {
      writeFile: async (data) => void this.files.set(path, (this.files.get(path) ?? '') + data),
      sync: async () => void this.syncs.push(`fsync ${path}`),
      datasync: async () => {
        if (this.failDatasync) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
        this.syncs.push(`datasync ${path}`);
      },
      close: async () => undefined,
    };
  }

  async rename(from: string, to: string): Promise<void> {
    const text = this.files.get(from);
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${from}`), { code: 'ENOENT' });
    this.files.delete(from);
    this.files.set(to, text);
  }

  async mkdir(path: string): Promise<string | undefined> {
    let first: string | undefined;
    for (let d = path; !this.dirs.has(d); d = dirname(d)) first = d;
    for (let d = path; !this.dirs.has(d); d = dirname(d)) this.dirs.add(d);
    return first;
  }
}

/** A service whose prepare answers "yes" only when released. */
class GatedService implements ParticipantService {
  readonly calls: string[] = [];
  release: () => void = () => undefined;
  prepare(txId: string): Promise<PrepareAnswer> {
    this.calls.push(`prepare ${txId}`);
    return new Promise((resolve) => (this.release = () => resolve({ vote: 'yes' })));
  }
  commit(txId: string): void {
    this.calls.push(`commit ${txId}`);
  }
  abort(txId: string): void {
    this.calls.push(`abort ${txId}`);
  }
}

const LOG_PATH = '/nowhere/participant-a/log';

async function openNode(opts: Partial<ParticipantNodeOptions> & Pick<ParticipantNodeOptions, 'store'>): Promise<ParticipantNode> {
  const node = await ParticipantNode.open({ name: 'a', logPath: LOG_PATH, service: new RecordingService(), logger: silentLogger, ...opts });
  await node.start();
  return node;
}

describe('ParticipantNode with injected dependencies', () => {
  it('keeps its log only in the injected LogFs, and a new node recovers from it', async () => {
    const store = new MemoryTxStore();
    const fs = new MemoryLogFs();
    const first = await openNode({ store, logFs: fs });
    expect(await first.receiveWork('t1', { n: 1 })).toEqual({ txId: 't1', accepted: true });
    expect(await first.prepare('t1')).toEqual({ txId: 't1', vote: 'yes' });
    await first.stop();
    expect(existsSync(dirname(LOG_PATH))).toBe(false);
    expect(fs.syncs).toContain(`fsync /nowhere`); // the new directories' entries made durable
    expect(fs.syncs).toContain(`datasync ${LOG_PATH}`);
    const service = new RecordingService();
    const second = await openNode({ store, logFs: fs, service });
    expect(service.calls).toEqual(['restore t1']); // in doubt: its locks come back
    expect(second.log.get('t1')?.vote?.vote).toBe('yes');
    await second.stop();
  });

  it('times out, prepares from the watch and helps decide only on the injected timers', async () => {
    const store = new MemoryTxStore();
    const timers = new VirtualTimers();
    const service = new GatedService();
    const node = await openNode({ store, logFs: new MemoryLogFs(), timers, service, config: { requestTimeoutMs: 5_000, watchPrepareDelayMs: 250, helpGraceMs: 100 } });
    await node.receiveWork('t1', { n: 1 });
    // The service's prepare hangs until released: the call times out after 5 s of manual time, not of real time.
    const prepared = node.prepare('t1').catch((e: unknown) => e);
    await timers.advance(4_999);
    expect(await Promise.race([prepared, 'pending'])).toBe('pending');
    await timers.advance(1);
    expect(await prepared).toMatchObject({ code: 'timeout' });
    service.release();
    await timers.advance(10);
    expect(decodeVote((await store.get(voteKey('t1', 'a')))?.value ?? '').vote).toBe('yes');

    // A frozen record naming us, with another participant silent: at the deadline (plus grace) we help decide abort.
    const deadline = timers.nowMs() + 1_000;
    await node.receiveWork('t2', { n: 2 });
    await store.put(txKey('t2'), encodeTxRecord({ participants: [{ name: 'a', url: 'http://127.0.0.1:9' }, { name: 'b', url: 'http://127.0.0.1:9' }], state: 'preparing', deadline, createdAt: timers.nowMs() }));
    await timers.advance(249);
    expect(service.calls).not.toContain('prepare t2');
    await timers.advance(1);
    expect(service.calls).toContain('prepare t2');
    service.release();
    await timers.advance(10);
    expect(node.transactions({ limit: 10 }).find((t) => t.txId === 't2')?.phase).toBe('prepared');
    await timers.advance(1_000 + 150);
    await timers.advance(10);
    expect(node.transactions({ limit: 10 }).find((t) => t.txId === 't2')?.phase).toBe('aborted');
    await node.stop();
  });

  it('a failed fdatasync stops the node and reaches onFatal once; the process goes on', async () => {
    const fs = new MemoryLogFs();
    const fatal: unknown[] = [];
    const node = await openNode({ store: new MemoryTxStore(), logFs: fs, onFatal: (e) => fatal.push(e) });
    fs.failDatasync = true;
    await expect(node.receiveWork('t1', { n: 1 })).rejects.toMatchObject({ code: 'participant_failed', status: 503 });
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'log_failed' });
    expect(node.ready).toBe(false);
    await expect(node.prepare('t2')).rejects.toMatchObject({ code: 'participant_failed' });
    await node.stop();
    expect(fatal).toHaveLength(1);
  });
});

describe('makeParticipantConfig', () => {
  it('gives the frozen defaults, and takes valid overrides', () => {
    const c = makeParticipantConfig({ requestTimeoutMs: 1_000 });
    expect(c).toEqual({ ...DEFAULT_PARTICIPANT_CONFIG, requestTimeoutMs: 1_000 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PARTICIPANT_CONFIG)).toBe(true);
  });

  it('refuses unknown fields and out-of-range values, naming each', () => {
    expect(() => makeParticipantConfig({ retentionMs: 1 } as never)).toThrow(/unknown field retentionMs/);
    expect(() => makeParticipantConfig({ maxOpenTxs: 0, watchPrepareDelayMs: 1.5 })).toThrow(/maxOpenTxs must be .*; watchPrepareDelayMs must be/);
    expect(() => makeParticipantConfig({ storeBackoffBaseMs: 100, storeBackoffMaxMs: 50 })).toThrow(/storeBackoffMaxMs must be an integer in \[100,/);
    expect(() => makeParticipantConfig({ logCompactIntervalMs: Number.NaN })).toThrow(ParticipantConfigError);
  });

  it('is checked when a node opens', async () => {
    await expect(ParticipantNode.open({ name: 'a', store: new MemoryTxStore(), logPath: LOG_PATH, service: new RecordingService(), logFs: new MemoryLogFs(), config: { helpGraceMs: -1 } })).rejects.toMatchObject({ code: 'invalid_config' });
  });
});

describe('participant/ imports', () => {
  const root = fileURLToPath(new URL('../../participant', import.meta.url));
  const files = readdirSync(root).filter((f) => f.endsWith('.ts'));
  const importsOf = (file: string): string[] => [...readFileSync(join(root, file), 'utf8').matchAll(/^(?:import|export)\b[^;]*?from '([^']+)'/gms)].map((m) => m[1] as string);

  it('reach other components only through their entry points', () => {
    const allowed = /^(\.\/[a-z-]+\.js|\.\.\/coordinator\/(protocol|txstore|runtime)\/index\.js|\.\.\/lib\/[a-z-]+\.js|node:[a-z/]+|express)$/;
    const bad = files.flatMap((f) => importsOf(f).filter((spec) => !allowed.test(spec)).map((spec) => `${f}: ${spec}`));
    expect(bad).toEqual([]);
  });

  it('form no cycle', () => {
    const edges = new Map(files.map((f) => [f, importsOf(f).filter((s) => s.startsWith('./')).map((s) => s.slice(2).replace(/\.js$/, '.ts'))]));
    const cycles: string[] = [];
    const visit = (f: string, path: readonly string[]): void => {
      if (path.includes(f)) return void cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      for (const next of edges.get(f) ?? []) visit(next, [...path, f]);
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });
});
