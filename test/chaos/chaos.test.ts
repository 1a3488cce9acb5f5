/**
 * Goal: the chaos runner (chaos/, docs/CHAOS.md) works end to end, and the
 * system passes it. One short run (~45 s of load) of the real CLI with a
 * fixed seed and every fault kind, on the built-in store (ports 39100+):
 * it must exit 0 with zero violations and nothing in doubt, and it must
 * really have done something: transfers committed, audits completed, and
 * at least one fault of each kind (kill, pause, partition, torn WAL) injected.
 *
 * The runner owns its processes by pid and stops them itself; if it has to
 * be killed, this file kills whatever it left, by the pids it recorded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChaosSummary } from '../../chaos/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT_DIR = join(ROOT, '.artifacts/chaos');
// Seed 3: the store lane tears a WAL first, so even a slow start covers every kind (schedule.test.ts).
const SEED = Number(process.env['CHAOS_TEST_SEED'] ?? 3);
const DURATION_S = 45;
const BASE_PORT = 39_100;
/** Start (~10 s), load, healing, quiescence and checks; generous for a loaded 2-core machine. */
const RUN_DEADLINE_MS = 300_000;
const STOP_GRACE_MS = 60_000;

let runner: ChildProcess | undefined;
let output = '';

function runDirOf(text: string): string | undefined {
  return /data=(\S+)/.exec(text)?.[1];
}

/** Last resort after a runner that had to be killed: its children, by the pids it recorded, if they are still its children. */
function killLeftovers(): void {
  const dir = runDirOf(output);
  if (dir === undefined || !existsSync(join(dir, 'pids.json'))) return;
  const { children } = JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')) as { children: Record<string, number> };
  for (const pid of Object.values(children)) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone
    }
    if (cmdline.includes(dir)) process.kill(pid, 'SIGKILL');
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<number | null | 'timeout'> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

afterAll(async () => {
  if (runner !== undefined && runner.exitCode === null && runner.signalCode === null) {
    runner.kill('SIGTERM'); // the runner heals, stops its processes and exits
    if ((await waitExit(runner, STOP_GRACE_MS)) === 'timeout') runner.kill('SIGKILL');
  }
  killLeftovers();
});

describe('chaos runner', () => {
  it(`a ${DURATION_S} s run with every fault kind finds no violation and really injects faults`, async () => {
    mkdirSync(OUT_DIR, { recursive: true });
    const summaryFile = join(OUT_DIR, `test-summary-${SEED}.json`);
    const args = ['--import', 'tsx', 'chaos/main.ts', '--duration', String(DURATION_S), '--seed', String(SEED), '--faults', 'kill,pause,partition,disk', '--store', 'builtin', '--base-port', String(BASE_PORT), '--out-dir', OUT_DIR, '--summary', summaryFile];
    runner = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    runner.stdout?.on('data', (b: Buffer) => void (output += b.toString()));
    runner.stderr?.on('data', (b: Buffer) => void (output += b.toString()));
    const code = await waitExit(runner, RUN_DEADLINE_MS);
    const context = `seed=${SEED}; runner output:\n${output.slice(-6_000)}`;
    expect(code, context).toBe(0);

    const lines = output.trimEnd().split('\n');
    expect(lines[lines.length - 1], context).toMatch(/^transfers=\d+ committed=\d+ aborted=\d+ audits=\d+ faults=\d+ violations=0 in_doubt=0$/);
    expect(output, context).toContain(`replay: npm run chaos -- --duration ${DURATION_S} --seed ${SEED}`);

    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as ChaosSummary;
    expect(s.violations, context).toBe(0);
    expect(s.inDoubt, context).toBe(0);
    expect(s.linearizability, context).toBe('ok');
    expect(s.committed, context).toBeGreaterThan(20);
    expect(s.audits, context).toBeGreaterThan(0);
    for (const kind of ['kill', 'pause', 'partition', 'disk']) expect(s.faultsByKind[kind] ?? 0, `${kind} faults; ${context}`).toBeGreaterThan(0);
    for (const c of s.checks) expect(c.ok, `${c.name}: ${c.detail}`).toBe(true);

    const html = readFileSync(s.report, 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toContain('<script');
    expect(JSON.parse(readFileSync(s.reportJson, 'utf8'))).toHaveProperty('transfers');
  }, RUN_DEADLINE_MS + STOP_GRACE_MS);
});
