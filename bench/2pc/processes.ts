/**
 * The benchmark's own processes (one coordinator, two participants), each
 * `node --import tsx` with an IPC channel, its output in a log file, managed
 * by pid: stopped with SIGTERM, then SIGKILL after 5 s. Also reads any
 * process's CPU time from /proc, so a row can say where the CPU went.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildReport, FromChild, ToChild } from './ipc.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const HERE = join(ROOT, 'bench/2pc');

export class BenchProc {
  private child: ChildProcess | undefined;
  private nextSeq = 0;
  private readonly waiting = new Map<number, (r: ChildReport) => void>();
  port = 0;

  constructor(
    readonly name: string,
    private readonly script: 'bench-coordinator.ts' | 'bench-participant.ts',
    private readonly args: readonly string[],
    readonly logFile: string,
    /** Extra node flags, e.g. --cpu-prof. */
    private readonly nodeArgs: readonly string[] = [],
    /** Its store user (secure mode, by environment: never on argv) and the scheme it serves. */
    private readonly secure: { readonly env: Readonly<Record<string, string>>; readonly scheme: 'http' | 'https' } = { env: {}, scheme: 'http' },
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get url(): string {
    return `${this.secure.scheme}://127.0.0.1:${this.port}`;
  }

  private get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once it says it serves (or rejects when it exits first). */
  async start(timeoutMs = 60_000): Promise<void> {
    const fd = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [...this.nodeArgs, '--import', 'tsx', join(HERE, this.script), ...this.args], {
      cwd: ROOT,
      stdio: ['ignore', fd, fd, 'ipc'],
      env: { ...process.env, TWOPC_FAILPOINTS: '', ...this.secure.env },
    });
    this.child = child;
    child.on('message', (m: FromChild) => {
      if (m.type === 'report') {
        this.waiting.get(m.seq)?.(m.report);
        this.waiting.delete(m.seq);
      }
    });
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${this.name} not ready within ${timeoutMs} ms; see ${this.logFile}`)), timeoutMs);
      child.on('message', (m: FromChild) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        this.port = m.port;
        res();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        rej(new Error(`${this.name} exited (${code ?? signal}) before it was ready; see ${this.logFile}:\n${tail(this.logFile)}`));
      });
    });
  }

  /** The process's store call counts and metrics, right now. */
  report(timeoutMs = 10_000): Promise<ChildReport> {
    const child = this.child;
    if (child === undefined || !this.running) return Promise.reject(new Error(`${this.name} is not running; see ${this.logFile}`));
    const seq = this.nextSeq++;
    return new Promise<ChildReport>((res, rej) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        rej(new Error(`${this.name} did not report within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(seq, (r) => {
        clearTimeout(timer);
        res(r);
      });
      const m: ToChild = { type: 'report', seq };
      child.send(m);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running || child.pid === undefined) return;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) child.kill('SIGKILL');
    }, 5_000);
    await exited;
    clearTimeout(timer);
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

