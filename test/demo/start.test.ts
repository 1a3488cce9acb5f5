/**
 * Goal: `npm start` does what the README says, run exactly that way:
 * `npm start -- --data-dir <tmp> --fresh --base-port P` prints every
 * process's role, port and pid and the page's URL, the page answers, the
 * coordinators answer /openapi.json, /readyz and /metrics (with the process
 * metrics), the CLI (`npm run transfer`, `npm run audit`) works against it, and one SIGINT
 * to the terminal's process group (what Ctrl-C sends) stops everything: npm
 * exits and no printed pid is left alive. Ports 38500-38533.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { get, isAlive, waitFor } from './support.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const BASE_PORT = 38500;
const APP = `http://127.0.0.1:${BASE_PORT}`;
const dir = mkdtempSync(join(tmpdir(), 'demo-start-'));
const run = promisify(execFile);

let npm: ChildProcess | undefined;
let output = '';
const printed = new Map<string, { role: string; port: number; pid: number }>();

afterAll(() => {
  // Whatever the test saw and is still alive goes, by pid (and the npm process group).
  for (const { pid } of printed.values()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  if (npm?.pid !== undefined && npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('starts the whole demo, serves the page, and stops every process on Ctrl-C', async () => {
    const child = spawn('npm', ['start', '--', '--data-dir', dir, '--fresh', '--base-port', String(BASE_PORT)], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    npm = child;
    child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));

    await waitFor('the page URL to be printed', 90_000, () => {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`);
      return output.includes(`open ${APP}/`);
    });
    for (const m of output.matchAll(/^ {2}(store|coordinator|bank|app|supervisor) +(\S+) +(\d+) +(\d+)$/gm)) {
      printed.set(m[2] as string, { role: m[1] as string, port: Number(m[3]), pid: Number(m[4]) });
    }
    expect([...printed.keys()].sort()).toEqual(['app', 'bank-a', 'bank-b', 'bank-c', 'c1', 'c2', 'control', 'n1', 'n2', 'n3']);
    expect(printed.get('app')?.port).toBe(BASE_PORT);
    for (const [name, p] of printed) expect(isAlive(p.pid), name).toBe(true);

    const page = await fetch(`${APP}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>raft2pc demo');
    const state = await waitFor('the app to see every bank', 20_000, async () => {
      const s = await get(`${APP}/v1/state`);
      const body = s.body as { banks: { up: boolean }[]; expectedTotal: number | null };
      return s.status === 200 && body.banks.length === 3 && body.banks.every((b) => b.up) ? body : undefined;
    });
    expect(state.expectedTotal).toBe(12_000);

    // What an operator scrapes and probes, on a coordinator of the running demo.
    const c1 = `http://127.0.0.1:${printed.get('c1')?.port}`;
    const api = await get(`${c1}/openapi.json`);
    expect(api.status).toBe(200);
    const doc = api.body as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain('/v1/transactions');
    expect((await waitFor('c1 to be ready', 20_000, async () => ((await get(`${c1}/readyz`)).status === 200 ? true : undefined)))).toBe(true);
    const metrics = await fetch(`${c1}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^process_cpu_seconds_total \d/m);

    const t = await run('npm', ['run', '--silent', 'transfer', '--', '--from', 'bank-a:alice', '--to', 'bank-b:bob', '--amount', '10', '--base-port', String(BASE_PORT)], { cwd: ROOT, timeout: 60_000 });
    expect(t.stdout).toMatch(/^committed {2}bank-a:alice -> bank-b:bob {2}10 {2}tx /);
    const a = await run('npm', ['run', '--silent', 'audit', '--', '--base-port', String(BASE_PORT)], { cwd: ROOT, timeout: 60_000 });
    expect(a.stdout).toContain('total across banks: 12000');
    expect(a.stdout).toMatch(/bank-a +alice=990 /);

    // Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it.
    process.kill(-(child.pid as number), 'SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    expect(code, output).not.toBe('timeout');
    expect(output).toContain('all stopped');
    const alive = [...printed].filter(([, p]) => isAlive(p.pid)).map(([name, p]) => `${name} (pid ${p.pid})`);
    expect(alive).toEqual([]);
  });
});
