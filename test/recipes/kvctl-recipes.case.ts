// Goal (run by builtin-recipes.test.ts on its cluster): kvctl's coordination commands, run as child processes like an
// operator would, on a real 3-node cluster: `lock` runs CMD with LOCK_KEY and
// LOCK_TOKEN, exits with CMD's code, releases the lock, and two locks never
// overlap; `elect` holds leadership and `elect --listen` prints the leaders
// in order; `watch --prefix` prints the changes; every command has --help.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TxStore } from '../../coordinator/txstore/index.js';
import { runCommand } from '../../lib/cli.js';
import { PACKAGE_ROOT } from '../../lib/entry.js';
import { kvctlCommand } from '../../store/cli/kvctl.js';
import { Mutex, recipeKey, Session } from '../../recipes/index.js';
import { waitFor } from '../support/wait.js';
import { uniqueName } from './recipes.case.js';

const RUN_TIMEOUT_MS = 30_000;
const KVCTL = join(PACKAGE_ROOT, 'store/cli/kvctl.ts');

let currentEndpoints: () => string[] = () => [];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs kvctl to its end (bounded); `onLine` sees stdout lines as they come. */
function kvctl(args: readonly string[], onLine?: (line: string) => void, onSpawn?: (child: ChildProcess) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', KVCTL, '--endpoints', currentEndpoints().join(','), ...args], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      for (const line of c.toString().split('\n')) if (line !== '') onLine?.(line);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kvctl ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** kvctl's recipe commands against the cluster `endpoints()` names, `store()` reading it. */
export function kvctlRecipesSuite(endpoints: () => string[], storeOf: () => TxStore): void {
  describe('kvctl lock, elect, watch', () => {
    let store: TxStore;
    beforeAll(() => {
      currentEndpoints = endpoints;
      store = storeOf();
    });

    it('lock runs CMD with LOCK_KEY and LOCK_TOKEN, exits with its code, and releases the lock', async () => {
      const name = uniqueName('cli-lock');
      const r = await kvctl(['lock', name, '--ttl-ms', '2000', '--', 'sh', '-c', 'echo "$LOCK_KEY $LOCK_TOKEN"; exit 3']);
      expect(r.code).toBe(3);
      const [key, token] = r.stdout.trim().split(' ');
      expect(key?.startsWith(recipeKey('lock', name))).toBe(true);
      expect(Number(token)).toBeGreaterThan(0);
      expect((await store.range(recipeKey('lock', name))).kvs).toEqual([]);
    });

    it('lock: when the lease is lost while CMD runs, CMD gets SIGTERM and kvctl exits 1', async () => {
      const name = uniqueName('cli-lost');
      const prefix = recipeKey('lock', name);
      const started = Date.now();
      const run = kvctl(['lock', name, '--ttl-ms', '2000', '--', 'sh', '-c', 'echo held; exec sleep 20']);
      const holder = await waitFor('the lock taken', 20_000, async () => (await store.range(prefix)).kvs[0]);
      await store.revokeLease(holder.lease as string);
      const r = await run;
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('session_lost');
      expect(Date.now() - started).toBeLessThan(15_000); // not the 20 s of CMD
    });

    it('lock: SIGTERM while queued gives up at once and leaves nothing queued', async () => {
      const name = uniqueName('cli-queued');
      const prefix = recipeKey('lock', name);
      const session = await Session.open({ store, ttlMs: 5_000 });
      try {
        await new Mutex(session, name).lock();
        let waiting: ChildProcess | undefined;
        const run = kvctl(['lock', name, '--ttl-ms', '5000', '--', 'true'], undefined, (c) => (waiting = c));
        await waitFor('kvctl queued', 20_000, async () => (await store.range(prefix)).kvs.length === 2);
        waiting?.kill('SIGTERM');
        const r = await run;
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('aborted');
        expect((await store.range(prefix)).kvs.length).toBe(1); // its key went with it, not after the TTL
      } finally {
        await session.close();
      }
    });

    it('two locks on one name never overlap, and their tokens increase', async () => {
      const name = uniqueName('cli-mutual');
      const script = 'echo "start $LOCK_TOKEN $(date +%s%N)"; sleep 0.3; echo "end $LOCK_TOKEN $(date +%s%N)"';
      const runs = await Promise.all([0, 1].map(() => kvctl(['lock', name, '--ttl-ms', '2000', '--', 'sh', '-c', script])));
      expect(runs.map((r) => r.code)).toEqual([0, 0]);
      // [what, token, time in ns] of both runs, ordered by token: the first holder ended before the second started.
      const spans = runs.map((r) => r.stdout.trim().split('\n').map((l) => l.split(' ')));
      spans.sort((a, b) => Number(a[0]![1]) - Number(b[0]![1]));
      const [first, second] = spans as [string[][], string[][]];
      expect(Number(second[0]![1])).toBeGreaterThan(Number(first[0]![1]));
      expect(BigInt(first[1]![2]!)).toBeLessThan(BigInt(second[0]![2]!));
    });

    it('elect holds leadership until SIGTERM or --hold-ms; elect --listen prints the leaders in order', async () => {
      const name = uniqueName('cli-elect');
      const seen: { value: string; revision: number }[] = [];
      let alpha: ChildProcess | undefined;
      const first = kvctl(['elect', name, 'alpha', '--ttl-ms', '2000'], undefined, (c) => (alpha = c));
      await waitFor('alpha to lead', 20_000, async () => (await store.range(recipeKey('election', name))).kvs.length === 1);
      const listener = kvctl(['elect', '--listen', name, '--count', '2', '--json'], (l) => seen.push(JSON.parse(l) as { value: string; revision: number }));
      await waitFor('the listener to see alpha', 20_000, () => seen.length === 1);
      const second = kvctl(['elect', name, 'beta', '--hold-ms', '200', '--ttl-ms', '2000']);
      await waitFor('beta queued', 20_000, async () => (await store.range(recipeKey('election', name))).kvs.length === 2);
      alpha?.kill('SIGTERM'); // the operator's ^C: resign, exit 0
      const [a, b, l] = await Promise.all([first, second, listener]);
      expect([a.code, b.code, l.code]).toEqual([0, 0, 0]);
      expect(seen.map((x) => x.value)).toEqual(['alpha', 'beta']);
      expect(seen[1]!.revision).toBeGreaterThan(seen[0]!.revision);
      expect(a.stdout).toContain('alpha');
    });

    it('watch --prefix prints the changes under the prefix', async () => {
      const p = `${uniqueName('cli-watch')}/`;
      const lines: string[] = [];
      const watcher = kvctl(['watch', '--prefix', p, '--count', '2'], (l) => lines.push(l));
      // The watch starts after its first read: keep writing until it has seen one, then a delete.
      await waitFor('the watch to see a put', 20_000, async () => {
        await store.put(`${p}k`, 'v');
        return lines.length >= 1;
      }, 200);
      await store.delete(`${p}k`);
      const r = await watcher;
      expect(r.code).toBe(0);
      expect(lines[0]).toMatch(new RegExp(`^PUT ${p}k v \\(revision \\d+\\)$`));
      expect(lines.at(-1)).toMatch(/^(PUT|DELETE) /);
    });

    it('each command has --help, and a missing CMD is a usage error (in process)', async () => {
      for (const cmd of ['lock', 'elect', 'watch']) {
        const out: string[] = [];
        const code = await runCommand(kvctlCommand, [cmd, '--help'], { env: {}, out: (l) => out.push(l), err: () => {} }, 'kvctl');
        expect(code).toBe(0);
        expect(out.join('\n')).toContain(`kvctl ${cmd}`);
      }
      const err: string[] = [];
      expect(await runCommand(kvctlCommand, ['lock', 'x'], { env: {}, out: () => {}, err: (l) => err.push(l) }, 'kvctl')).toBe(2);
      expect(err[0]).toContain('expected: lock NAME -- CMD');
    });
  });
}
