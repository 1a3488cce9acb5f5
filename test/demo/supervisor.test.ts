/**
 * Goal: the supervision library (demo/supervisor/) that the demo and the
 * chaos runner build on: the documented port layout, a data folder that
 * `--fresh` wipes only when it is the demo's, and one process managed by
 * pid (start when healthy, pause and resume, SIGKILL, a graceful stop that
 * escalates to SIGKILL, a start that retries a port taken for a moment, a
 * start that fails at once when the process dies). Ports 38700-38710.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_MARKER, DEFAULT_BANKS, DemoSupervisor, ManagedProcess, demoLayout, layoutPorts, openingTotal, type ProcessEvent } from '../../demo/supervisor/index.js';
import { isAlive, waitFor } from './support.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const TINY = join(ROOT, 'test/demo/fixtures/tiny-server.ts');
const dir = mkdtempSync(join(tmpdir(), 'demo-supervisor-'));
const started: ManagedProcess[] = [];

afterAll(() => {
  for (const p of started) p.killNow();
  rmSync(dir, { recursive: true, force: true });
});

/** Holds a port; connections to it (the health checks) are dropped at once, so closing never waits on them. */
async function holdPort(port: number): Promise<{ close(): Promise<void> }> {
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { close: () => new Promise<void>((r) => server.close(() => r())) };
}

function tiny(name: string, port: number, extra: string[] = [], events?: ProcessEvent[]): ManagedProcess {
  const p = new ManagedProcess(
    { name, role: 'bank', port, url: `http://127.0.0.1:${port}`, script: TINY, args: ['--port', String(port), ...extra], logFile: join(dir, `${name}.log`) },
    ROOT,
    (e) => events?.push(e),
  );
  started.push(p);
  return p;
}

describe('layout', () => {
  it('puts every process at base + a documented offset, all distinct', () => {
    const l = demoLayout(7100);
    expect(l.appPort).toBe(7100);
    expect(l.coordinators.map((c) => [c.name, c.port])).toEqual([['c1', 7101], ['c2', 7102]]);
    expect(l.controlPort).toBe(7109);
    expect(l.banks.map((b) => [b.name, b.port])).toEqual([['bank-a', 7111], ['bank-b', 7112], ['bank-c', 7113]]);
    expect(l.store.map((s) => [s.name, s.clientPort, s.peerPort])).toEqual([['n1', 7121, 7131], ['n2', 7122, 7132], ['n3', 7123, 7133]]);
    const ports = layoutPorts(l);
    expect(new Set(ports).size).toBe(ports.length);
    expect(Math.max(...ports) - 7100).toBe(33);
    expect(openingTotal(DEFAULT_BANKS)).toBe(12_000);
  });

  it('refuses a base port that cannot hold the layout, and bad bank names', () => {
    expect(() => demoLayout(80)).toThrow('base port');
    expect(() => demoLayout(65_530)).toThrow('base port');
    expect(() => demoLayout(7100, [{ name: 'Bank A', accounts: { alice: 1 } }])).toThrow('bank name');
  });
});

describe('data folder', () => {
  it('creates the folder with its marker, and --fresh wipes a folder that has it', () => {
    const d = join(dir, 'data1');
    DemoSupervisor.prepareDataDir(d, { fresh: false });
    expect(existsSync(join(d, DATA_MARKER))).toBe(true);
    writeFileSync(join(d, 'old-state'), 'x');
    DemoSupervisor.prepareDataDir(d, { fresh: false });
    expect(existsSync(join(d, 'old-state'))).toBe(true); // kept without --fresh
    DemoSupervisor.prepareDataDir(d, { fresh: true });
    expect(readdirSync(d).sort()).toEqual([DATA_MARKER, 'logs']);
  });

  it("never wipes a non-empty folder that is not the demo's", () => {
    const d = join(dir, 'precious');
    mkdirSync(d);
    writeFileSync(join(d, 'thesis.tex'), 'x');
    expect(() => DemoSupervisor.prepareDataDir(d, { fresh: true })).toThrow('refusing to wipe');
    expect(existsSync(join(d, 'thesis.tex'))).toBe(true);
  });
});

describe('one managed process', () => {
  it('starts when healthy, pauses, resumes, and dies by SIGKILL', async () => {
    const events: ProcessEvent[] = [];
    const p = tiny('p1', 38701, [], events);
    expect(p.state).toBe('stopped');
    await p.start(60_000);
    const pid = p.pid as number;
    expect(p.info()).toMatchObject({ name: 'p1', state: 'running', pid, starts: 1 });
    p.pause();
    expect(p.state).toBe('paused');
    expect(await p.healthy()).toBe(false);
    const answer = await fetch(`${p.spec.url}/healthz`, { signal: AbortSignal.timeout(500) }).then(
      () => 'answered',
      () => 'no answer',
    );
    expect(answer).toBe('no answer'); // a stopped process cannot answer
    p.resume();
    await waitFor('the resumed process to answer', 10_000, () => p.healthy());
    await p.kill();
    expect(p.info()).toMatchObject({ state: 'exited', exitSignal: 'SIGKILL' });
    expect(isAlive(pid)).toBe(false);
    expect(events.map((e) => e.type)).toEqual(['started', 'paused', 'resumed', 'exited']);
    expect(events[3]).toMatchObject({ expected: true, signal: 'SIGKILL' });
  });

  it('a graceful stop escalates to SIGKILL when SIGTERM is ignored, even when paused', async () => {
    const p = tiny('p2', 38703, ['--ignore-sigterm']);
    await p.start(60_000);
    const pid = p.pid as number;
    p.pause();
    const t = Date.now();
    await p.stop(500);
    expect(Date.now() - t).toBeGreaterThanOrEqual(450);
    expect(p.info()).toMatchObject({ state: 'stopped', exitSignal: 'SIGKILL' });
    expect(isAlive(pid)).toBe(false);
  });

  it('retries a start whose port is taken for a moment (EADDRINUSE)', async () => {
    const blocker = await holdPort(38705);
    const p = tiny('p3', 38705);
    const starting = p.start(60_000);
    // Let it die on the taken port at least once, then free the port.
    await waitFor('a start to fail on the taken port', 30_000, () => p.logSinceStart().includes('EADDRINUSE'));
    await blocker.close();
    await starting;
    expect(p.info().starts).toBeGreaterThan(1);
    await p.stop();
    expect(p.state).toBe('stopped');
  });

  it('fails a start whose process exits for another reason at once, naming its last log lines', async () => {
    const p = tiny('p4', 38707, ['--crash']);
    await expect(p.start(60_000)).rejects.toThrow(/exited during start \(code 3[\s\S]*tiny-server: told to crash/);
    expect(p.alive).toBe(false);
    expect(p.info().starts).toBe(1);
  });
});
