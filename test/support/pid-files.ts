/**
 * Pid files for the processes tests start on fixed ports (etcd members, 2PC
 * processes, store nodes). Tests stop what they start by pid, but a Vitest
 * worker that is itself SIGKILLed (a timeout, an interrupted run) runs no
 * cleanup: its children live on and hold their ports, and the next run of
 * that file fails to start. So every start first reaps what a previous run
 * recorded under the same tag, if that pid still runs a command line naming
 * the same port (a recycled pid is left alone), then records its own.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const DIR = join(os.tmpdir(), 'raft2pc-test-pids');
/** How long a reaped process may take to disappear. */
const REAP_WAIT_MS = 3_000;

function file(tag: string): string {
  return join(DIR, `${tag.replace(/[^A-Za-z0-9._-]/g, '_')}.pid`);
}

function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined; // gone (or not Linux)
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Kills the process recorded under `tag` if it is still running and its command line contains `mark`. */
export function reapStale(tag: string, mark: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(file(tag), 'utf8').trim());
  } catch {
    return;
  }
  if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && commandLine(pid)?.includes(mark) === true) {
    console.warn(`reaping pid ${pid} (${tag}) left running by an earlier test run`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
    // Gone, or a zombie (empty command line) whose ports are already closed.
    for (const deadline = Date.now() + REAP_WAIT_MS; commandLine(pid)?.includes(mark) === true && Date.now() < deadline; ) sleepSync(20);
  }
  rmSync(file(tag), { force: true });
}

export function recordPid(tag: string, pid: number): void {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(file(tag), `${pid}\n`);
}

/** Forgets the record of `tag` if it is still `pid`'s. */
export function forgetPid(tag: string, pid: number): void {
  try {
    if (Number(readFileSync(file(tag), 'utf8').trim()) === pid) rmSync(file(tag), { force: true });
  } catch {
    // no record
  }
}
