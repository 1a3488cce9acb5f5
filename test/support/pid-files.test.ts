// Goal: a process that an earlier, killed test run left on a fixed port is
// reaped by the next start under the same tag, and only if its command line
// still names that port (a recycled pid belongs to someone else).
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { systemTimers } from '../../lib/timers.js';
import { forgetPid, reapStale, recordPid } from './pid-files.js';
import { waitFor } from './wait.js';

const started: ChildProcess[] = [];

function sleeper(mark: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '--port', mark], { stdio: 'ignore' });
  started.push(child);
  return child;
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

afterEach(() => {
  for (const c of started.splice(0)) if (alive(c)) c.kill('SIGKILL');
});

describe('pid files', () => {
  it('reaps the recorded process when its command line names the port, and forgets the record', async () => {
    const old = sleeper('39990');
    await waitFor('spawned', 5_000, () => old.pid !== undefined);
    recordPid('test-39990', old.pid as number);
    reapStale('test-39990', '--port 39990');
    await waitFor('reaped', 5_000, () => !alive(old));
    expect(old.signalCode).toBe('SIGKILL');
    // The record is gone: a second reap is a no-op.
    reapStale('test-39990', '--port 39990');
  });

  it('leaves alone a recorded pid whose command line names another port (a recycled pid)', async () => {
    const other = sleeper('39991');
    await waitFor('spawned', 5_000, () => other.pid !== undefined);
    recordPid('test-39992', other.pid as number);
    reapStale('test-39992', '--port 39992');
    await systemTimers.sleep(200);
    expect(alive(other)).toBe(true);
    forgetPid('test-39992', other.pid as number);
  });
});
