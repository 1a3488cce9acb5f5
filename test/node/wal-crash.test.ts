// Goal: a WAL writer killed with SIGKILL at a random moment loses nothing it
// acknowledged: after reopening, every acknowledged index is present, the log
// is a contiguous prefix 1..n with the right contents, and writing resumes.
// Several kill/restart rounds run on the same directory, so recovery after a
// recovery (tail already repaired once) is covered too. Replay a failure with
// WAL_CRASH_SEED=<seed>.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { WriteAheadLog } from '../../store/node/wal.js';
import { expectedData, tempDirs, waitFor } from './fixtures/wal-test-helpers.js';

const dirs = tempDirs('wal-crash');
afterEach(dirs.cleanup);

const FIXTURE = fileURLToPath(new URL('./fixtures/wal-writer.ts', import.meta.url));
const ROUNDS = 4;
const START_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 10_000;

interface Child {
  readonly pid: number;
  readonly acked: number[];
  readonly output: () => string;
  readonly exited: () => boolean;
}

function startWriter(dir: string, concurrency: number, segmentSizeBytes: number): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, String(concurrency), String(segmentSizeBytes)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acked: number[] = [];
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    const lines = stdout.split('\n');
    stdout = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.on('exit', () => (exited = true));
  if (child.pid === undefined) throw new Error('spawn failed');
  return { pid: child.pid, acked, output: () => stderr.slice(-2000), exited: () => exited };
}

it('every acknowledged entry survives SIGKILL at a random moment', async () => {
  const seed = Number(process.env.WAL_CRASH_SEED ?? Date.now() % 2 ** 31);
  const rng = new SeededRandom(seed);
  const dir = await dirs.make();
  let maxAcked = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const concurrency = 1 + rng.int(16);
    const segmentSizeBytes = 4096 + rng.int(16_384);
    const killAfterAcks = 1 + rng.int(600);
    const where = `seed ${seed}, round ${round} (concurrency ${concurrency}, segment ${segmentSizeBytes} B, kill after ${killAfterAcks} acks)`;

    const child = startWriter(dir, concurrency, segmentSizeBytes);
    try {
      await waitFor(
        () => child.acked.length >= killAfterAcks || child.exited(),
        START_TIMEOUT_MS,
        () => `${where}: writer acked ${child.acked.length}; stderr: ${child.output()}`,
      );
      expect(child.exited(), `${where}: writer died on its own: ${child.output()}`).toBe(false);
    } finally {
      if (!child.exited()) process.kill(child.pid, 'SIGKILL');
    }
    await waitFor(child.exited, EXIT_TIMEOUT_MS, () => `${where}: writer ${child.pid} did not exit`);

    const { wal, state } = await WriteAheadLog.open(dir);
    await wal.close();
    const indexes = state.entries.map((e) => e.index);
    const highestAcked = Math.max(0, ...child.acked);
    expect(indexes, `${where}: log is not the contiguous prefix 1..n`).toEqual(indexes.map((_, i) => i + 1));
    expect(state.lastIndex, `${where}: acked ${highestAcked} but the log ends at ${state.lastIndex}`).toBeGreaterThanOrEqual(highestAcked);
    expect(state.lastIndex, `${where}: earlier rounds' acks lost`).toBeGreaterThanOrEqual(maxAcked);
    for (const e of state.entries) expect(e.data, `${where}: entry ${e.index}`).toBe(expectedData(e.index));
    expect(state.hardState.commit, `${where}: hard state older than an ack`).toBeGreaterThanOrEqual(highestAcked);
    expect(state.hardState.commit, `${where}: hard state ahead of the log`).toBeLessThanOrEqual(state.lastIndex);
    maxAcked = Math.max(maxAcked, highestAcked);
  }
  expect(maxAcked, `seed ${seed}: the writer never got going`).toBeGreaterThan(0);
});
