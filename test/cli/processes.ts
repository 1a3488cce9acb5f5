/**
 * Test support for test/cli: the project's programs as real processes
 * (`node --import tsx FILE ...`), each bounded by a deadline, with an
 * environment free of the variables that would change their flags.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** The environment minus RAFT2PC_* and the older variables flags read (TWOPC_STORE, KVCTL_ENDPOINTS). */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RAFT2PC_') && k !== 'TWOPC_STORE' && k !== 'KVCTL_ENDPOINTS') env[k] = v;
  return { ...env, ...extra };
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A program started from `file` (relative to the repository), with its output collected. */
export class Program {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<Finished>;

  constructor(file: string, args: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, file), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (c: Buffer) => (this.stdout += c.toString()));
    this.child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((res, rej) => {
      this.child.once('error', rej);
      // 'close', not 'exit': the output pipes are drained by then.
      this.child.once('close', (code, signal) => res({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the process has exited and its output is read; rejects past `timeoutMs`. */
  async finished(timeoutMs: number): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_res, rej) => {
      timer = setTimeout(() => rej(new Error(`pid ${this.pid} did not exit within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2_000)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL if still running (afterAll's cleanup, by pid). */
  kill(): void {
    if (this.running) process.kill(this.pid, 'SIGKILL');
  }
}

/** Runs a program to its end. */
export function runProgram(file: string, args: readonly string[], timeoutMs = 60_000): Promise<Finished> {
  const p = new Program(file, args);
  return p.finished(timeoutMs).finally(() => p.kill());
}
