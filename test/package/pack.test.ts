/**
 * Goal: the package a user installs works. `npm pack` builds dist/ and makes
 * the tarball; a fresh project installs it (runtime dependencies only, no
 * tsx), then, on plain node: the three public entry points import from
 * JavaScript, and type-check from TypeScript (a wrong argument is an error,
 * so the types are real, not `any`); `raft2pc --help` exits 0; and the bin
 * runs a store node and kvctl from dist/, whose value a script reads back
 * through `raft2pc/store`. Ports 34000-34001, 34100.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const STORE_PORT = 34000;
const PEER_PORT = 34100;
const dir = mkdtempSync(join(tmpdir(), 'raft2pc-pack-'));
const project = join(dir, 'consumer');
const bin = join(project, 'node_modules/.bin/raft2pc');
let store: ChildProcess | undefined;

function run(file: string, args: string[], opts: { cwd?: string; input?: string } = {}): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(file, args, { cwd: opts.cwd ?? project, encoding: 'utf8', input: opts.input ?? '', stdio: ['pipe', 'pipe', 'pipe'], timeout: 240_000 });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const x = e as { status: number | null; stdout: string; stderr: string };
    return { status: x.status ?? -1, stdout: x.stdout, stderr: x.stderr };
  }
}

function npm(args: string[], cwd: string): string {
  const r = run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  npm(['pack', '--pack-destination', dir], REPO);
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack made no tarball');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // @types/node as a TypeScript user has it; --prefer-offline takes what `npm ci` already cached.
  npm(['install', '--prefer-offline', join(dir, tarball), '@types/node@20'], project);
}, 300_000);

afterAll(() => {
  if (store?.pid !== undefined && store.exitCode === null) process.kill(store.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('the installed package', () => {
  it('installs no tsx: everything it runs is plain JavaScript', () => {
    expect(readdirSync(join(project, 'node_modules'))).not.toContain('tsx');
  });

  it('imports raft2pc/client, raft2pc/participant, raft2pc/store and raft2pc/recipes from JavaScript', () => {
    writeFileSync(
      join(project, 'imports.mjs'),
      `import * as client from 'raft2pc/client';
import * as participant from 'raft2pc/participant';
import * as store from 'raft2pc/store';
import * as recipes from 'raft2pc/recipes';
console.log(JSON.stringify({
  client: typeof client.CoordinatorClient,
  participant: typeof participant.ParticipantNode,
  store: typeof store.StoreClient,
  recipes: typeof recipes.Mutex,
}));`,
    );
    const r = run(process.execPath, ['imports.mjs']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ client: 'function', participant: 'function', store: 'function', recipes: 'function' });
  });

  it('type-checks from TypeScript, and a wrong argument is a type error', () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'] }, include: ['*.ts'] }),
    );
    writeFileSync(
      join(project, 'typed.ts'),
      `import { CoordinatorClient } from 'raft2pc/client';
import { ParticipantNode } from 'raft2pc/participant';
import { StoreClient } from 'raft2pc/store';
const store = new StoreClient({ endpoints: ['http://127.0.0.1:2379'] });
const pending: Promise<unknown> = store.get('k');
void pending;
export const kinds: string[] = [typeof CoordinatorClient, typeof ParticipantNode];
// @ts-expect-error endpoints is a list of URLs, not a number
new StoreClient({ endpoints: 42 });
`,
    );
    const r = run(process.execPath, [TSC, '-p', '.']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('raft2pc --help exits 0 and lists the commands', () => {
    const r = run(bin, ['--help']);
    expect(r.status).toBe(0);
    for (const cmd of ['store', 'cluster', 'coordinator', 'kvctl', 'tx']) expect(r.stdout).toContain(cmd);
  });

  it('runs a store node and kvctl from dist/, and raft2pc/store reads the value back', async () => {
    const cluster = `n1=127.0.0.1:${STORE_PORT}:${PEER_PORT}`;
    store = spawn(bin, ['store', '--id', 'n1', '--cluster', cluster, '--data-dir', join(dir, 'n1')], { cwd: project, stdio: 'ignore' });
    const endpoint = `http://127.0.0.1:${STORE_PORT}`;
    await waitFor('the store node to serve', 30_000, () => run(bin, ['kvctl', '--endpoints', endpoint, 'put', 'greeting', 'hello']).status === 0);
    writeFileSync(
      join(project, 'read.mjs'),
      `import { StoreClient } from 'raft2pc/store';
const c = new StoreClient({ endpoints: ['${endpoint}'] });
const kv = await c.get('greeting');
console.log(JSON.stringify(kv?.value ?? null));
c.close();`,
    );
    const r = run(process.execPath, ['read.mjs']);
    expect(r.stdout.trim()).toBe('"hello"');
    expect(run(bin, ['kvctl', '--endpoints', endpoint, 'get', 'greeting']).stdout).toContain('hello');
    store.kill('SIGTERM');
    await waitFor('the store node to exit on SIGTERM', 15_000, () => store?.exitCode !== null || store.signalCode !== null);
    expect(store.exitCode).toBe(0);
  });
});
