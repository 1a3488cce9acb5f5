/**
 * Service processes for the TLS tests: started from their mains (the code
 * that ships), waited on until they print their ready line, and stopped by
 * pid (SIGTERM, then SIGKILL past a deadline), whatever a test did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { nodeArgsFor, PACKAGE_ROOT, programPath } from '../../lib/entry.js';
import { waitFor } from '../support/wait.js';

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything it wrote, both streams. */
  output(): string;
  /** Resolves with its exit code once it exits. */
  readonly exited: Promise<number | null>;
}

const started = new Set<ChildProcess>();
const STOP_GRACE_MS = 5_000;

/** Starts `program` (e.g. 'coordinator/service/main') with `args` and extra environment. */
export function startProcess(name: string, program: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): ServiceProcess {
  const child = spawn(process.execPath, [...nodeArgsFor(programPath(program)), ...args], { cwd: PACKAGE_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => started.delete(child));
  return { name, child, output: () => out, exited };
}

/** Waits until the process printed `line` (or fails early with its output when it exits first). */
export async function waitReady(p: ServiceProcess, line: RegExp, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${p.name} to print ${line}`, timeoutMs, () => {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited ${p.child.exitCode}: ${p.output().slice(-2_000)}`);
    return line.test(p.output());
  });
}

/** Stops one process by its pid: SIGTERM, then SIGKILL if it is still there after the grace period. */
export async function stopProcess(p: ServiceProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null || p.child.pid === undefined) return;
  process.kill(p.child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (p.child.pid !== undefined && p.child.exitCode === null) process.kill(p.child.pid, 'SIGKILL');
  }, STOP_GRACE_MS);
  await p.exited;
  clearTimeout(timer);
}

/** The last resort: whatever is still running when the worker exits is killed by pid. */
process.on('exit', () => {
  for (const c of started) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGKILL');
});

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * `n` ports of [first, first + count) that nothing holds now. A process
 * binds its port itself, so this can only lower the odds of a clash with a
 * client's outgoing connection (where a machine's ephemeral range covers the
 * test blocks; these lie below this one's, 40000-60999), not rule it out.
 */
export async function freePorts(first: number, count: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let port = first; port < first + count && out.length < n; port++) if (await isFree(port)) out.push(port);
  if (out.length < n) throw new Error(`fewer than ${n} free ports in ${first}..${first + count - 1}`);
  return out;
}
