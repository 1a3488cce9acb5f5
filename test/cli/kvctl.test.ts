/**
 * Goal: kvctl, run as a child process like an operator would, talks to a real
 * 3-node cluster and prints the store's answers: put/get/cas/range/del/txn/
 * status/members with --json, the human output of get, and the exit codes
 * (1 with the store's error code, 2 for bad usage, 3 for a failed CAS).
 * Every child process and wait is bounded; the cluster is stopped by pid.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../store/node/launcher.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const KVCTL = join(ROOT, 'store/cli/kvctl.ts');
const BASE_PORT = 33000;
const RUN_TIMEOUT_MS = 30_000;

let cluster: LocalCluster | undefined;
let dataDir = '';
let endpoints = '';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function kvctl(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', KVCTL, '--endpoints', endpoints, ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, KVCTL_ENDPOINTS: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`kvctl ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

/** Runs kvctl with --json, expects exit 0, and parses stdout. */
async function json<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const r = await kvctl(['--json', ...args]);
  expect(r.code, `kvctl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function errorOf(r: Run): { code: string; message: string } {
  const line = r.stderr.trim().split('\n').pop() ?? '';
  return (JSON.parse(line) as { error: { code: string; message: string } }).error;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(os.tmpdir(), 'kvctl-test-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir, logToFiles: true });
  endpoints = cluster.endpoints.join(',');
  cluster.start();
  await cluster.waitForLeader(30_000);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

describe('kvctl against a 3-node cluster', () => {
  it('put then get returns the record; a second put reports the previous value', async () => {
    const first = await json<{ revision: number; previous: string | null }>('put', 'cli/a', 'one');
    expect(first.previous).toBeNull();
    expect(first.revision).toBeGreaterThan(0);
    const second = await json<{ revision: number; previous: string | null }>('put', 'cli/a', 'two');
    expect(second.previous).toBe('one');
    expect(second.revision).toBeGreaterThan(first.revision);
    const kv = await json<{ key: string; value: string; version: number; createRevision: number; modRevision: number }>('get', 'cli/a');
    expect(kv).toMatchObject({ key: 'cli/a', value: 'two', version: 2, createRevision: first.revision, modRevision: second.revision });

    const human = await kvctl(['get', 'cli/a']);
    expect(human.code).toBe(0);
    expect(human.stdout).toBe('cli/a\ntwo\n');
  });

  it('get of a missing key exits 1 with key_not_found', async () => {
    const r = await kvctl(['--json', 'get', 'cli/missing']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(errorOf(r).code).toBe('key_not_found');
    const human = await kvctl(['get', 'cli/missing']);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain('key_not_found');
  });

  it('cas: swap on a match, exit 3 on a mismatch, create-if-absent once', async () => {
    await json('put', 'cli/cas', 'v1');
    const ok = await json<{ succeeded: boolean; previous: string | null }>('cas', 'cli/cas', 'v1', 'v2');
    expect(ok).toMatchObject({ succeeded: true, previous: 'v1' });

    const miss = await kvctl(['--json', 'cas', 'cli/cas', 'v1', 'v3']);
    expect(miss.code).toBe(3);
    expect(JSON.parse(miss.stdout)).toMatchObject({ succeeded: false, previous: 'v2' });

    const created = await json<{ succeeded: boolean; previous: string | null }>('cas', 'cli/fresh', '--absent', 'first');
    expect(created).toMatchObject({ succeeded: true, previous: null });
    const again = await kvctl(['--json', 'cas', 'cli/fresh', '--absent', 'second']);
    expect(again.code).toBe(3);
    expect(JSON.parse(again.stdout)).toMatchObject({ succeeded: false, previous: 'first' });
    expect((await json<{ value: string }>('get', 'cli/fresh')).value).toBe('first');
  });

  it('range --prefix lists keys in order and pages with --limit', async () => {
    for (const k of ['c', 'a', 'b']) await json('put', `cli/r/${k}`, `val-${k}`);
    const all = await json<{ kvs: { key: string; value: string }[]; more: boolean }>('range', '--prefix', 'cli/r/');
    expect(all.kvs.map((kv) => kv.key)).toEqual(['cli/r/a', 'cli/r/b', 'cli/r/c']);
    expect(all.kvs.map((kv) => kv.value)).toEqual(['val-a', 'val-b', 'val-c']);
    expect(all.more).toBe(false);
    const page = await json<{ kvs: { key: string }[]; more: boolean }>('range', '--prefix', 'cli/r/', '--limit', '2');
    expect(page.kvs.map((kv) => kv.key)).toEqual(['cli/r/a', 'cli/r/b']);
    expect(page.more).toBe(true);
  });

  it('del removes a key once', async () => {
    await json('put', 'cli/d', 'x');
    expect(await json('del', 'cli/d')).toMatchObject({ deleted: true, previous: 'x' });
    expect(await json('del', 'cli/d')).toMatchObject({ deleted: false, previous: null });
    const r = await kvctl(['--json', 'get', 'cli/d']);
    expect(r.code).toBe(1);
    expect(errorOf(r).code).toBe('key_not_found');
  });

  it('txn reads {compare, success, failure} from stdin', async () => {
    await json('put', 'cli/t', 'go');
    const txn = {
      compare: [{ key: 'cli/t', target: 'value', op: '=', value: 'go' }],
      success: [{ type: 'put', key: 'cli/t2', value: 'done' }],
      failure: [{ type: 'put', key: 'cli/t2', value: 'failed' }],
    };
    const r = await kvctl(['--json', 'txn'], JSON.stringify(txn));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ succeeded: true });
    expect((await json<{ value: string }>('get', 'cli/t2')).value).toBe('done');

    const bad = await kvctl(['--json', 'txn'], 'not json');
    expect(bad.code).toBe(2);
    expect(errorOf(bad).code).toBe('invalid_input');
  });

  it('status reports every node with one agreed leader; members lists three voters', async () => {
    const rows = await json<{ endpoint: string; id: string; role: string; leaderId: string | null; pid: number }[]>('status');
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => r.id).sort()).toEqual(['n1', 'n2', 'n3']);
    const leaders = rows.filter((r) => r.role === 'leader');
    expect(leaders).toHaveLength(1);
    expect(new Set(rows.map((r) => r.leaderId))).toEqual(new Set([leaders[0]?.id]));
    expect(rows.map((r) => r.pid).sort()).toEqual(cluster?.processes.map((p) => p.pid).sort());

    const m = await json<{ members: { id: string; role: string }[] }>('members');
    expect(m.members.map((x) => x.id).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(m.members.every((x) => x.role === 'voter')).toBe(true);
  });

  it('leader transfer hands leadership to the named member; members remove/add refuse bad changes', async () => {
    const rows = await json<{ id: string; role: string }[]>('status');
    const target = rows.find((r) => r.role !== 'leader')?.id as string;
    const moved = await json<{ leaderId: string }>('leader', 'transfer', target);
    expect(moved.leaderId).toBe(target);
    const after = await json<{ id: string; role: string }[]>('status');
    expect(after.find((r) => r.role === 'leader')?.id).toBe(target);
    // Removing an unknown member and adding an existing voter are refused with codes, and change nothing.
    const removeUnknown = await kvctl(['--json', 'members', 'remove', 'nope']);
    expect(removeUnknown.code).toBe(1);
    expect(errorOf(removeUnknown).code).toBe('member_not_found');
    const m = await json<{ members: { id: string; role: string }[] }>('members');
    expect(m.members.map((x) => x.id).sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('bad usage exits 2 with one line saying what is wrong, then the usage', async () => {
    const r = await kvctl(['--json', 'frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('raft2pc kvctl: frobnicate: unknown command');
    const put = await kvctl(['put']);
    expect(put.code).toBe(2);
    expect(put.stderr.split('\n')[0]).toBe('raft2pc kvctl put: expected: put KEY [VALUE]');
  });
});
