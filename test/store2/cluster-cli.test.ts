/**
 * Goal: `npm run cluster` (store/node/cluster-cli.ts) can grow a running
 * 3-node cluster to 5 and shrink it back to 3 from its stdin commands
 * (`add`, `remove <id>`, `status`, `quit`), and the cluster it leaves serves
 * writes with exactly the asked-for voters. The CLI runs as a real process;
 * every pid it prints (and its own) is killed in afterAll.
 *
 * Ports: members n1..n5 serve clients on 35800-35804 and peers on 35900-35904.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreClient } from '../../store/client/client.js';
import { waitFor } from './support/poll.js';

const BASE_PORT = 35800;
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

let cli: ChildProcess | undefined;
let output = '';
let dataDir = '';
let failed = false;
const pids = new Set<number>();

function say(line: string): void {
  cli?.stdin?.write(`${line}\n`);
}

/** Waits for `pattern` to appear in the CLI's output after position `from`. */
async function expectOutput(pattern: RegExp, from: number, timeoutMs = 60_000): Promise<RegExpExecArray> {
  return waitFor(`CLI output ${pattern}`, timeoutMs, () => pattern.exec(output.slice(from)) ?? undefined, 25);
}

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'store2-cli-'));
  cli = spawn(process.execPath, ['--import', 'tsx', 'store/node/cluster-cli.ts', '--nodes', '3', '--base-port', String(BASE_PORT), '--data-dir', dataDir], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const m of output.matchAll(/pid (\d+)/g)) pids.add(Number(m[1]));
  };
  cli.stdout?.on('data', collect);
  cli.stderr?.on('data', collect);
});

afterAll(async () => {
  if (failed) console.error(`CLI output:\n${output}`);
  if (cli && cli.exitCode === null && cli.signalCode === null) {
    const exited = new Promise<void>((r) => cli?.once('exit', () => r()));
    if (cli.pid !== undefined) process.kill(cli.pid, 'SIGKILL');
    await exited;
  }
  // The nodes are the CLI's children: kill each printed pid that still runs.
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (!failed) rmSync(dataDir, { recursive: true, force: true });
});

describe('npm run cluster: grow and shrink', () => {
  it('adds n4 and n5, removes n1 and n2, and leaves a working 3-voter cluster', async () => {
    try {
      await expectOutput(/commands: status/, 0, 120_000);
      let mark = output.length;
      say('add');
      await expectOutput(/added n4 as a voter/, mark);
      say('add');
      await expectOutput(/added n5 as a voter/, mark);
      mark = output.length;
      say('status');
      await expectOutput(/members: voters n1,n2,n3,n4,n5 /, mark);
      const urls = [0, 1, 2, 3, 4].map((i) => `http://127.0.0.1:${BASE_PORT + i}`);
      const client = new StoreClient({ endpoints: urls });
      await client.put('cli/grown', 'yes');

      mark = output.length;
      say('remove n1');
      await expectOutput(/stopped n1[\s\S]*leader is n\d/, mark);
      say('remove n2');
      await expectOutput(/stopped n2[\s\S]*leader is n\d/, mark);
      mark = output.length;
      say('status');
      await expectOutput(/members: voters n3,n4,n5 /, mark);
      expect(output.slice(mark)).toMatch(/n1 .* stopped/);

      // The shrunk cluster takes writes and kept the old ones.
      const small = new StoreClient({ endpoints: urls.slice(2) });
      await small.put('cli/shrunk', 'yes');
      expect((await small.get('cli/grown'))?.value).toBe('yes');
      const members = await small.members();
      expect(members.members.map((m) => `${m.id}:${m.role}`).sort()).toEqual(['n3:voter', 'n4:voter', 'n5:voter']);

      say('quit');
      const code = await waitFor('the CLI to exit', 20_000, () => (cli?.exitCode ?? null) !== null ? { code: cli?.exitCode } : undefined, 50);
      expect(code.code).toBe(0);
    } catch (e) {
      failed = true;
      throw e;
    }
  }, 300_000);
});
