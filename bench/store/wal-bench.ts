/**
 * WAL micro-benchmark: latency of one small save (write + fdatasync) and
 * throughput of saves at several concurrencies, showing group commit at work.
 *
 *     npx tsx bench/store/wal-bench.ts [dir] [seconds-per-row]
 *
 * `dir` defaults to a temp dir under os.tmpdir(), removed afterwards; point
 * it at the disk the store will use, since fsync cost is the disk's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../store/raft/types.js';
import { WriteAheadLog } from '../../store/node/wal.js';

const LATENCY_SAVES = 300;
const CONCURRENCIES = [1, 8, 64, 256];
const PAYLOAD = 'x'.repeat(100);

function entry(index: number): Entry {
  return { index, term: 1, type: 'normal', data: PAYLOAD };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

async function latency(dir: string): Promise<Record<string, string>> {
  const fsyncMs: number[] = [];
  const { wal } = await WriteAheadLog.open(dir, { onFsync: (e) => fsyncMs.push(e.durationMs) });
  const saveMs: number[] = [];
  for (let i = 1; i <= LATENCY_SAVES; i++) {
    const start = performance.now();
    await wal.save([entry(i)], { term: 1, vote: 'n1', commit: i });
    saveMs.push(performance.now() - start);
  }
  await wal.close();
  saveMs.sort((a, b) => a - b);
  fsyncMs.sort((a, b) => a - b);
  const mean = saveMs.reduce((a, b) => a + b, 0) / saveMs.length;
  return {
    saves: String(LATENCY_SAVES),
    'save p50 ms': percentile(saveMs, 0.5).toFixed(3),
    'save p99 ms': percentile(saveMs, 0.99).toFixed(3),
    'save mean ms': mean.toFixed(3),
    'fdatasync p50 ms': percentile(fsyncMs, 0.5).toFixed(3),
  };
}

async function throughput(dir: string, concurrency: number, seconds: number): Promise<Record<string, string>> {
  const { wal } = await WriteAheadLog.open(dir);
  let next = 1;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const index = next++;
      await wal.save([entry(index)], { term: 1, vote: 'n1', commit: index });
    }
  };
  const start = performance.now();
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearTimeout(timer);
  const elapsedS = (performance.now() - start) / 1000;
  const { calls, fsyncs, bytesWritten } = wal.stats;
  await wal.close();
  return {
    concurrency: String(concurrency),
    'entries/s': (calls / elapsedS).toFixed(0),
    'fsyncs/s': (fsyncs / elapsedS).toFixed(0),
    'saves per fsync': (calls / fsyncs).toFixed(1),
    'MB/s': (bytesWritten / elapsedS / 1e6).toFixed(2),
  };
}

async function main(): Promise<void> {
  const [dirArg, secondsArg] = process.argv.slice(2);
  const seconds = Number(secondsArg ?? '3');
  const root = dirArg ?? (await mkdtemp(join(tmpdir(), 'wal-bench-')));
  try {
    console.log(`WAL benchmark in ${root} (Node ${process.version}, ${PAYLOAD.length}-byte entries, hard state on every save)\n`);
    console.log('One save at a time (write + fdatasync per save):');
    console.table([await latency(join(root, 'latency'))]);
    console.log(`Concurrent saves, ${seconds} s per row (group commit):`);
    const rows: Record<string, string>[] = [];
    for (const c of CONCURRENCIES) rows.push(await throughput(join(root, `c${c}`), c, seconds));
    console.table(rows);
  } finally {
    if (dirArg === undefined) await rm(root, { recursive: true, force: true });
  }
}

await main();
