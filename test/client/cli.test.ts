// Goal: the transactions CLI (`raft2pc tx`, client/cli.ts) run as a process
// against real coordinators over a real 3-node store (ports 32010-32012,
// peers 32110-32112, coordinators and a participant on 32071-32081): list
// (text table and --json, state filter, coordinators from the environment),
// get, commit and abort of real transactions with their exit codes (3 when
// the transaction ended the other way), --help exits 0, and bad usage exits
// 2 with one line naming the mistake, never a stack trace.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CoordinatorClient } from 'raft2pc/client';
import { coordinatorProc, inventoryProc, take, useStack, type Proc } from '../twopc/support/procs.js';
import { builtinBackend } from '../twopc/support/procs.js';

const BASE_PORT = 32010;
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const CLI = join(ROOT, 'client/cli.ts');

let c1: Proc;
let c2: Proc;
let a: Proc;

useStack(builtinBackend(BASE_PORT), 'client-cli', async (stack) => {
  c1 = coordinatorProc(stack, 'c1', BASE_PORT + 61);
  c2 = coordinatorProc(stack, 'c2', BASE_PORT + 63);
  a = inventoryProc(stack, 'a', BASE_PORT + 71, { apple: 100 });
  return [c1, c2, a];
});

interface Ran {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs the CLI as its own process; RAFT2PC_* variables come only from `env`. */
function tx(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Ran> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAFT2PC_')));
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', rej);
    child.once('close', (code) => {
      clearTimeout(timer);
      res({ code, out, err });
    });
  });
}

const coordinators = (): string => `${c1.url},${c2.url}`;

/** A transaction with its work at `a`, begun through the SDK and left for the CLI to finish. */
async function pending(): Promise<string> {
  const sdk = new CoordinatorClient({ coordinators: [c1.url, c2.url] });
  const participant = { name: 'a', url: a.url };
  const begun = await sdk.begin({ participants: [participant], timeoutMs: 60_000 });
  await sdk.sendWork(participant, begun.id, take('apple', 1));
  sdk.close();
  return begun.id;
}

describe('raft2pc tx as a process', () => {
  it('--help prints the usage and exits 0, for the group and for a command', async () => {
    const [group, get] = await Promise.all([tx(['--help']), tx(['get', '--help'])]);
    expect(group.code).toBe(0);
    expect(group.out).toContain('usage: raft2pc tx <command> [flags]');
    expect(group.out).toMatch(/list\s+list transactions/);
    expect(get.code).toBe(0);
    expect(get.out).toContain('usage: raft2pc tx get [flags] TX_ID');
    expect(get.out).toContain('RAFT2PC_COORDINATORS');
  });

  it('bad usage exits 2 with one line saying what is wrong, and no stack trace', async () => {
    const cases: [string[], string][] = [
      [[], 'raft2pc tx: which command? one of list, get, commit, abort'],
      [['nope'], 'raft2pc tx: nope: unknown command'],
      [['get'], 'raft2pc tx get: TX_ID: required'],
      [['get', 'a', 'b'], 'raft2pc tx get: TX_ID: give exactly one transaction id'],
      [['commit', 'bad/id'], 'raft2pc tx commit: TX_ID: "bad/id" is not a transaction id ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)'],
      [['list', '--state', 'nope'], 'raft2pc tx list: --state: "nope" is not one of active, preparing, committed, aborted, in-doubt'],
      [['list', '--limit', '0'], 'raft2pc tx list: --limit: "0" is below the minimum 1'],
      [['list', '--bogus'], 'raft2pc tx list: --bogus: unknown flag'],
      [['list', '--coordinators', 'ftp://x'], 'raft2pc tx list: --coordinators: coordinators: "ftp://x" is not an http(s) base URL'],
    ];
    const runs = await Promise.all(cases.map(([args]) => tx(args)));
    runs.forEach((r, i) => {
      const [args, line] = cases[i] as [string[], string];
      expect([r.code, r.err.split('\n')[0]], args.join(' ')).toEqual([2, line]);
      expect(r.err).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m); // a stack frame
    });
  });

  it('commit and get: a real transaction commits, and get shows it', async () => {
    const id = await pending();
    const committed = await tx(['commit', id, '--json', '--coordinators', coordinators()]);
    expect(committed.code, committed.err).toBe(0);
    expect(JSON.parse(committed.out)).toMatchObject({ id, outcome: 'committed', votes: { a: 'yes' } });
    const json = await tx(['get', id, '--json', '--coordinators', coordinators()]);
    // Once collected, the compacted record keeps the participants' names, not their urls (docs/API.md).
    expect(JSON.parse(json.out)).toMatchObject({ id, state: 'committed', participants: [{ name: 'a' }] });
    const text = await tx(['get', id, '--coordinators', coordinators()]);
    expect(text.code).toBe(0);
    expect(text.out).toContain(`id:        ${id}`);
    expect(text.out).toContain('state:     committed');
    expect(text.out).toMatch(/^a\s+(http:\/\/127\.0\.0\.1:\d+|-)\s+yes/m);
    // Aborting it now: it committed already, exit 3.
    const late = await tx(['abort', id, '--coordinators', coordinators()]);
    expect([late.code, late.out.trim()]).toEqual([3, `${id} committed already: not aborted`]);
  });

  it('abort: a real transaction aborts with the reason given; committing it then exits 3', async () => {
    const id = await pending();
    const aborted = await tx(['abort', id, '--reason', 'the operator said no', '--coordinators', coordinators()]);
    expect(aborted.code, aborted.err).toBe(0);
    expect(aborted.out).toContain(`${id} aborted`);
    expect(aborted.out).toContain('the operator said no');
    const late = await tx(['commit', id, '--json', '--coordinators', coordinators()]);
    expect(late.code).toBe(3);
    expect(JSON.parse(late.out)).toMatchObject({ id, outcome: 'aborted' });
  });

  it('list: a table or JSON, filtered by state, coordinators from RAFT2PC_COORDINATORS', async () => {
    const id = await pending();
    const env = { RAFT2PC_COORDINATORS: coordinators() };
    const before = await tx(['list', '--json', '--state', 'active', '--limit', '1000'], env);
    expect(before.code, before.err).toBe(0);
    const active = JSON.parse(before.out) as { transactions: { id: string; state: string }[]; next: string | null };
    expect(active.transactions.map((t) => t.id)).toContain(id);
    expect(active.transactions.every((t) => t.state === 'active')).toBe(true);
    expect((await tx(['commit', id], env)).code).toBe(0);
    const table = await tx(['list', '--state', 'committed'], env);
    expect(table.code).toBe(0);
    const lines = table.out.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+PARTICIPANTS\s+CREATED\s+DEADLINE\s+COLLECTED$/);
    expect(lines.some((l) => l.startsWith(id) && /\scommitted\s+a\s/.test(l))).toBe(true);
  });

  it('errors exit 1 with the code: an unknown transaction, no coordinator answering', async () => {
    const [unknown, down] = await Promise.all([
      tx(['get', 'no-such-tx', '--coordinators', coordinators()]),
      tx(['list', '--coordinators', `http://127.0.0.1:${BASE_PORT + 79}`, '--retry-window-ms', '200']),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/^raft2pc tx get: tx_not_found \(404\): no transaction no-such-tx/);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/^raft2pc tx list: unavailable: /);
  });
});
