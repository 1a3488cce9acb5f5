/**
 * One child process the supervisor owns, by pid: start it, wait until its
 * /healthz answers, kill it (SIGKILL), pause and resume it (SIGSTOP and
 * SIGCONT), stop it gracefully (SIGTERM, then SIGKILL past a deadline).
 * Nothing here restarts a process on its own; callers decide.
 *
 * Children get their own process group (`detached`), so a Ctrl-C in the
 * terminal reaches only the supervisor, which then stops them in order;
 * `killNow` is the synchronous last resort for the supervisor's exit hook.
 * Output goes to one log file per process, appended across restarts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { nodeArgsFor } from '../../lib/entry.js';
import { keepAliveTimers } from '../../lib/timers.js';

export type ProcessRole = 'store' | 'coordinator' | 'bank' | 'app';

/** stopped: not started, or stopped by us; exited: it ended by itself or was killed. */
export type ProcessState = 'stopped' | 'running' | 'paused' | 'exited';

export interface ProcessSpec {
  readonly name: string;
  readonly role: ProcessRole;
  readonly port: number;
  /** Base URL of its HTTP API; `${url}/healthz` answers 200 when it is ready. */
  readonly url: string;
  /** The entry file: a .ts source (run through tsx) or a compiled .js (lib/entry.ts). */
  readonly script: string;
  readonly args: readonly string[];
  readonly logFile: string;
  /** Variables added to the supervisor's environment for this process alone (its store user and password). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Asks `url` and resolves with the HTTP status, 0 when nothing answered: how health is checked (https needs the CA). */
export type StatusProbe = (url: string, timeoutMs: number) => Promise<number>;

/** A probe over plain fetch: enough for http URLs. */
export const fetchProbe: StatusProbe = async (url, timeoutMs) => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
};

export interface ProcessInfo {
  readonly name: string;
  readonly role: ProcessRole;
  readonly port: number;
  readonly url: string;
  readonly pid: number | null;
  readonly state: ProcessState;
  readonly exitCode: number | null;
  readonly exitSignal: string | null;
  /** Epoch ms of the last start. */
  readonly startedAt: number | null;
  /** Times it was started (1 after the first start). */
  readonly starts: number;
  readonly logFile: string;
}

export type ProcessEvent =
  | { readonly type: 'started'; readonly name: string; readonly pid: number }
  | { readonly type: 'exited'; readonly name: string; readonly pid: number; readonly code: number | null; readonly signal: string | null; readonly expected: boolean }
  | { readonly type: 'paused' | 'resumed'; readonly name: string; readonly pid: number };

/** What the supervisor (and its control API) can do to one process by name. */
export type ProcessAction = 'kill' | 'pause' | 'resume' | 'restart' | 'start' | 'stop';
export const PROCESS_ACTIONS: readonly ProcessAction[] = ['kill', 'pause', 'resume', 'restart', 'start', 'stop'];

/** How long a signalled process gets to exit before the next step. */
export const EXIT_WAIT_MS = 5_000;

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private paused = false;
  /** Set while we stop or kill it, so its exit is reported as one we caused. */
  private stopping = false;
  private stoppedByUs = false;
  private startedAt: number | null = null;
  private starts = 0;
  private logOffset = 0;

  constructor(
    readonly spec: ProcessSpec,
    private readonly cwd: string,
    private readonly onEvent: (e: ProcessEvent) => void = () => {},
    private readonly probe: StatusProbe = fetchProbe,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Alive: spawned and not exited (paused counts as alive). */
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get state(): ProcessState {
    if (this.alive) return this.paused ? 'paused' : 'running';
    return this.child === undefined || this.stoppedByUs ? 'stopped' : 'exited';
  }

  info(): ProcessInfo {
    const c = this.child;
    return {
      name: this.spec.name,
      role: this.spec.role,
      port: this.spec.port,
      url: this.spec.url,
      pid: c?.pid ?? null,
      state: this.state,
      exitCode: c?.exitCode ?? null,
      exitSignal: c?.signalCode ?? null,
      startedAt: this.startedAt,
      starts: this.starts,
      logFile: this.spec.logFile,
    };
  }

  /** Spawns the process (not waiting for health); `env` adds variables for this run only (a test's failpoints). Throws if it is alive. */
  spawn(env: Readonly<Record<string, string>> = {}): void {
    if (this.alive) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    this.logOffset = existsSync(this.spec.logFile) ? statSync(this.spec.logFile).size : 0;
    const fd = openSync(this.spec.logFile, 'a');
    try {
      const child = spawn(process.execPath, [...nodeArgsFor(this.spec.script), ...this.spec.args], { cwd: this.cwd, stdio: ['ignore', fd, fd], detached: true, env: { ...process.env, ...this.spec.env, ...env } });
      this.child = child;
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    const child = this.child;
    const pid = child.pid;
    if (pid === undefined) throw new Error(`${this.name} could not be spawned`);
    this.paused = false;
    this.stoppedByUs = false;
    this.startedAt = Date.now();
    this.starts++;
    child.once('exit', (code, signal) => {
      this.paused = false;
      this.onEvent({ type: 'exited', name: this.name, pid, code, signal, expected: this.stopping });
    });
    this.onEvent({ type: 'started', name: this.name, pid });
  }

  /**
   * Spawns and waits until /healthz answers 200; past the deadline the
   * process is killed and the start fails. A start that died because
   * its port was briefly taken (EADDRINUSE: an outgoing connection can hold a
   * port for a moment when the ports lie in the kernel's ephemeral range) is
   * tried again until the deadline; any other early exit fails at once.
   */
  async start(timeoutMs: number, env: Readonly<Record<string, string>> = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let portRetries = 0;
    this.spawn(env);
    for (;;) {
      if (await this.healthy()) return;
      if (!this.alive) {
        const tail = this.logSinceStart();
        if (tail.includes('EADDRINUSE') && Date.now() < deadline) {
          portRetries++;
          await keepAliveTimers.sleep(250);
          this.spawn(env);
          continue;
        }
        throw new Error(`${this.name} exited during start (code ${this.child?.exitCode ?? null}, signal ${this.child?.signalCode ?? null}); last lines of ${this.spec.logFile}:\n${lastLines(tail, 8)}`);
      }
      if (Date.now() > deadline) {
        const why = portRetries > 0 ? ` (${portRetries} earlier tries died on a port in use, EADDRINUSE)` : '';
        const pid = this.pid;
        await this.kill(); // a start ends with a healthy process or none, never a half-started one
        throw new Error(`${this.name} (pid ${pid}) not healthy within ${timeoutMs} ms${why}, so it was killed; see ${this.spec.logFile}`);
      }
      await keepAliveTimers.sleep(100);
    }
  }

  async healthy(): Promise<boolean> {
    if (!this.alive || this.paused) return false;
    return (await this.probe(`${this.spec.url}/healthz`, 1_000)) === 200;
  }

  /** SIGKILL: no chance to flush or clean up. Resolves once it exited. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.stopping = true;
    try {
      await this.signalAndWait('SIGKILL', EXIT_WAIT_MS);
    } finally {
      this.stopping = false;
    }
  }

  pause(): void {
    if (!this.alive) throw new Error(`${this.name} is not running`);
    this.signal('SIGSTOP');
    this.paused = true;
    this.onEvent({ type: 'paused', name: this.name, pid: this.pid as number });
  }

  resume(): void {
    if (!this.alive) throw new Error(`${this.name} is not running`);
    this.signal('SIGCONT');
    this.paused = false;
    this.onEvent({ type: 'resumed', name: this.name, pid: this.pid as number });
  }

  /** SIGTERM (and SIGCONT, so a paused process can act on it), then SIGKILL past `graceMs`. */
  async stop(graceMs = EXIT_WAIT_MS): Promise<void> {
    if (!this.alive) {
      if (this.child !== undefined) this.stoppedByUs = true;
      return;
    }
    this.stopping = true;
    try {
      const exited = this.exitPromise();
      this.signal('SIGTERM');
      if (this.paused) this.signal('SIGCONT');
      if ((await withTimeout(exited, graceMs)) === 'timeout') await this.signalAndWait('SIGKILL', EXIT_WAIT_MS);
      this.stoppedByUs = true;
    } finally {
      this.stopping = false;
    }
  }

  /** Synchronous SIGKILL, for exit hooks where nothing can be awaited. */
  killNow(): void {
    if (this.alive) this.signal('SIGKILL');
  }

  logSinceStart(): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').slice(this.logOffset);
    } catch {
      return '';
    }
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // already gone
    }
  }

  private exitPromise(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.alive) return Promise.resolve();
    return new Promise((resolve) => child.once('exit', () => resolve()));
  }

  private async signalAndWait(sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const exited = this.exitPromise();
    this.signal(sig);
    if ((await withTimeout(exited, timeoutMs)) === 'timeout') throw new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms of ${sig}`);
  }
}

function withTimeout(p: Promise<void>, ms: number): Promise<'done' | 'timeout'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve('done');
    });
  });
}

/** The last `n` lines of a log text. */
export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
