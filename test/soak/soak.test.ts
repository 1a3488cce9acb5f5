/**
 * Goal: `npm run soak` (bench/soak/) works end to end. One short real soak
 * (20 s of load at a modest rate, a row every 5 s, the built-in store on
 * ports 33520+) must print a table row per interval, end with the gate line
 * `minutes=M tx=N errors=E leader_changes=L max_rss_mb=R` (transactions
 * committed, no error, no leader change), exit 0, and leave its JSON and an
 * HTML report with its charts. Bad usage exits 2 with the usage.
 *
 * The soak stops what it starts by pid; if it has to be killed, this file
 * kills what it left, by the pids it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../lib/cli.js';
import { HttpClientError } from '../../lib/http-client.js';
import { HttpStatusError } from '../../bench/loadgen.js';
import { finalLine, passed, type SoakTotals } from '../../bench/soak/intervals.js';
import { errorCode } from '../../bench/soak/load.js';
import { soakCommand } from '../../bench/soak/soak.js';
import { ElectionCounter } from '../../bench/soak/store-status.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASE_PORT = 33_520;
const DURATION_S = 20;
const INTERVAL_S = 5;
const OUT = mkdtempSync(join(os.tmpdir(), 'raft2pc-soak-test-'));

let child: ChildProcess | undefined;
let stdout = '';
let stderr = '';

function run(args: readonly string[], deadlineMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/soak/soak.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RAFT2PC_DURATION: '' } });
    child = c;
    c.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`the soak did not end within ${deadlineMs} ms:\n${stdout}\n${stderr}`));
    }, deadlineMs);
    c.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** What a killed soak left, by the pids it printed (`soak: pids n1=123 ...`), except itself. */
function killLeftovers(): void {
  const line = /^soak: pids (.*)$/m.exec(stdout)?.[1] ?? '';
  for (const m of line.matchAll(/(\S+)=(\d+)/g)) {
    if (m[1] === 'driver') continue;
    try {
      process.kill(Number(m[2]), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

afterAll(() => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  killLeftovers();
  rmSync(OUT, { recursive: true, force: true });
});

describe('the gate', () => {
  it('counts every term rise after the first seen as an election, per interval', () => {
    const c = new ElectionCounter();
    c.observe(null);
    c.observe(2);
    c.observe(2);
    expect(c.take()).toBe(0);
    c.observe(5); // two polls missed: still three elections
    c.observe(4); // a member behind
    expect(c.take()).toBe(3);
    expect(c.take()).toBe(0);
    expect(c.term).toBe(5);
  });

  it('names errors by code, and fails on any error or leader change', () => {
    expect(errorCode(new HttpStatusError(503, JSON.stringify({ error: { code: 'no_leader', message: 'x' } })))).toBe('503 no_leader');
    expect(errorCode(new HttpStatusError(502, 'bad gateway'))).toBe('http 502');
    expect(errorCode(new Error('transaction aborted: participant voted no'))).toBe('aborted');
    expect(errorCode(new HttpClientError('timeout', 'GET /x: no complete answer within 10000 ms'))).toBe('timeout');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(errorCode(new HttpClientError('connection', 'GET /x: connect ECONNREFUSED', { cause: refused }))).toBe('connection ECONNREFUSED');
    expect(errorCode(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    const t: SoakTotals = { minutes: 60.004, tx: 12, errors: 0, errorsByCode: {}, leaderChanges: 0, maxRssMb: 150.6, maxRssMbByProcess: {}, exited: [] };
    expect(finalLine(t)).toBe('minutes=60 tx=12 errors=0 leader_changes=0 max_rss_mb=151');
    expect(passed(t)).toBe(true);
    expect(passed({ ...t, errors: 1 })).toBe(false);
    expect(passed({ ...t, leaderChanges: 1 })).toBe(false);
  });
});

describe('npm run soak', () => {
  it('a short soak on the built-in store: a row per interval, the gate line, JSON and an HTML report with charts', async () => {
    const code = await run(['--duration', String(DURATION_S), '--interval-s', String(INTERVAL_S), '--rate', '15', '--clients', '4', '--base-port', String(BASE_PORT), '--out', OUT], 120_000);
    const lines = stdout.trimEnd().split('\n');
    const context = `${stdout}\n--- stderr ---\n${stderr.slice(-3_000)}`;
    expect(code, context).toBe(0);

    // One table row per interval, in order, each as its interval ended.
    const rows = lines.filter((l) => /^\| \d+ \|/.test(l));
    expect(rows.length, context).toBe(DURATION_S / INTERVAL_S);
    rows.forEach((r, k) => expect(r.startsWith(`| ${k + 1} |`)).toBe(true));
    expect(lines.some((l) => l.startsWith('| # | end s | tx | tx/s | commit p50 ms | p99 ms | p999 ms | errors | leader changes |'))).toBe(true);

    // The last line, and nothing after it.
    const last = lines.at(-1) ?? '';
    const m = /^minutes=([\d.]+) tx=(\d+) errors=(\d+) leader_changes=(\d+) max_rss_mb=(\d+)$/.exec(last);
    expect(m, context).not.toBeNull();
    const [, minutes, tx, errors, leaderChanges, maxRss] = (m as RegExpExecArray).map(Number);
    expect(minutes).toBeGreaterThanOrEqual(DURATION_S / 60 - 0.01);
    expect(tx).toBeGreaterThan(0);
    expect(errors).toBe(0);
    expect(leaderChanges).toBe(0);
    expect(maxRss).toBeGreaterThan(10);

    // The JSON: the same rows and totals.
    const jsonPath = /^data:\s+(\S+)$/m.exec(stdout)?.[1] as string;
    const htmlPath = /^report:\s+(\S+)$/m.exec(stdout)?.[1] as string;
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as {
      rows: { index: number; tx: number; errors: number; leaderChanges: number; commit: { p999Ms: number }; rssMb: Record<string, number | null>; anonMb: Record<string, number | null>; store: { keys: number | null } }[];
      totals: { tx: number; errors: number; leaderChanges: number };
      finalLine: string;
      passed: boolean;
      samples: unknown[];
    };
    expect(report.finalLine).toBe(last);
    expect(report.passed).toBe(true);
    expect(report.rows.map((r) => r.index)).toEqual([1, 2, 3, 4]);
    expect(report.rows.reduce((s, r) => s + r.tx, 0)).toBe(tx);
    expect(report.totals).toMatchObject({ tx, errors: 0, leaderChanges: 0 });
    expect(Object.keys(report.rows[0]?.rssMb ?? {})).toEqual(['n1', 'n2', 'n3', 'coord', 'part-a', 'part-b', 'driver']);
    // RssAnon leaves out file pages (LMDB's mapped database): never more than the RSS it is part of, never nothing.
    for (const [p, rss] of Object.entries(report.rows[0]?.rssMb ?? {})) {
      const anon = report.rows[0]?.anonMb[p] ?? Number.NaN;
      expect(anon, p).toBeGreaterThan(1);
      expect(anon, p).toBeLessThanOrEqual((rss ?? 0) + 1);
    }
    expect(report.rows.at(-1)?.store.keys).toBeGreaterThan(0);
    expect(report.samples.length).toBeGreaterThan(DURATION_S / 2);

    // The HTML report, with its charts.
    expect(existsSync(htmlPath)).toBe(true);
    const html = readFileSync(htmlPath, 'utf8');
    for (const h of ['Throughput', 'Commit latency per interval', 'RSS per process', 'Store size']) expect(html).toContain(`<h2>${h}`);
    expect(html.match(/<svg /g)?.length).toBeGreaterThanOrEqual(5);
    expect(html).toContain(last);
  }, 150_000);

  it('bad usage exits 2 with the usage', async () => {
    const err: string[] = [];
    const io = { env: {}, out: () => {}, err: (l: string) => void err.push(l) };
    expect(await runCommand(soakCommand, [], io)).toBe(2);
    expect(err[0]).toMatch(/--duration: required/);
    expect(await runCommand(soakCommand, ['--duration', '10', '--store', 'zk'], io)).toBe(2);
    expect(await runCommand(soakCommand, ['--duration', '10', '--rate', '0'], io)).toBe(2);
    expect(await runCommand(soakCommand, ['--duration', '10', '--interval-s', 'soon'], io)).toBe(2);
    expect(err.some((l) => l.startsWith('usage: raft2pc soak [flags]'))).toBe(true);
    // The real process too.
    stdout = '';
    stderr = '';
    expect(await run(['--duration', '5', '--bogus'], 60_000)).toBe(2);
    expect(stderr).toMatch(/--bogus: unknown flag/);
  }, 90_000);
});
