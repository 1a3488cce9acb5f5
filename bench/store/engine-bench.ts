/**
 * Embedded engines for the store's on-disk state machine (issue 15), measured
 * on the store's workload at the engine level: no HTTP, no Raft, no WAL.
 *
 *     npx tsx bench/store/engine-bench.ts [--keys 1000000] [--engines keyspace,lmdb,level]
 *         [--batch 64] [--overwrite-s 20] [--read-s 8] [--range-s 8] [--dir DIR] [--json FILE]
 *
 * Engines (each runs in its own child process, so RSS and heap are its own):
 * - `keyspace`: today's in-memory Keyspace (store/kv/keyspace.ts), the baseline.
 * - `lmdb`: lmdb-js, `noSync` (no fsync at commit; the WAL is the durability
 *   point), one `transactionSync` per batch, sync `get` inside it, `getRange`.
 * - `lmdb-overlap`: lmdb-js defaults (`overlappingSync`), each batch committed
 *   with the async-flush flag putSync uses (0x10002): commit on the main
 *   thread, fsync on lmdb's own thread, `db.flushed` says when it is durable.
 * - `lmdb-sync`: lmdb-js defaults, plain `transactionSync` (fsync in the commit,
 *   on the main thread).
 * - `level`: classic-level 3, `getSync` for the read before each write (with an
 *   overlay of the batch's own writes: LevelDB cannot read inside a write batch),
 *   `await db.batch(ops)` (async, `sync: false`), async iterators for ranges.
 * - `level-async`: the same with `await db.getMany(keys)` for the reads.
 *
 * Phases per engine: (1) load N keys of 512-byte values in a random order, in
 * batches of `--batch` writes as the apply loop would do them (read the old
 * record, write the new one with version and revisions, and write the applied
 * index in the same transaction); (2) random overwrites in the same batches
 * for `--overwrite-s`; (3) random point reads; (4) ordered range scans of 100
 * keys from random starts; (5) close, reopen, read the applied index back.
 * The event loop is yielded to after every batch, as the node's Ready loop
 * does (it awaits its WAL fsync between batches).
 *
 * The data directory defaults to a temp dir under os.tmpdir() and is removed
 * afterwards. 1,000,000 keys take about 1 GB on disk in LMDB, 4,000,000 about
 * 3.7 GB; check `df -h` first.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { intFlag, parseFlags, stringFlag } from '../../lib/args.js';
import { fmt, machine, progress } from '../output.js';
import { ALL_ENGINES, freshValue, isPromise, keyOf, makeEngine, RANGE_LIMIT, rng, VALUE_BYTES, yieldLoop, type Engine, type EngineName, type Options } from './engines.js';

function pct(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function sortedCopy(xs: number[]): Float64Array {
  return Float64Array.from(xs).sort();
}

function diskBytes(dir: string | undefined): number | null {
  if (dir === undefined) return null;
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = statSync(join(dir, name));
    if (st.isFile()) total += st.blocks * 512;
  }
  return total;
}

/**
 * Resident memory as Linux reports it: RSS split into anonymous (heap,
 * native) and file-backed pages, and PSS, which counts a page mapped twice
 * once. lmdb-js grows its map by mapping the file again and keeps the older,
 * smaller mappings, so one page-cache page can count two or three times in
 * RssFile; Pss_File is the real figure.
 */
interface MemParts {
  rssAnonMb: number | null;
  rssFileMb: number | null;
  pssMb: number | null;
  pssFileMb: number | null;
}

function memParts(): MemParts {
  const field = (text: string, name: string): number | null => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) / 1024 : null;
  };
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const status = read('/proc/self/status');
  const rollup = read('/proc/self/smaps_rollup');
  return {
    rssAnonMb: field(status, 'RssAnon'),
    rssFileMb: field(status, 'RssFile'),
    pssMb: field(rollup, 'Pss'),
    pssFileMb: field(rollup, 'Pss_File'),
  };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

interface BatchPhase {
  writes: number;
  seconds: number;
  writesPerS: number;
  commitP50Ms: number;
  commitP99Ms: number;
  commitP999Ms: number;
  commitMaxMs: number;
}

async function runBatches(
  engine: Engine,
  state: { applied: number },
  nextKey: () => number,
  stop: (writes: number, elapsedMs: number) => boolean,
  batch: number,
  maxWrites: number,
  onProgress?: (writes: number) => void,
): Promise<BatchPhase> {
  const lat: number[] = [];
  let writes = 0;
  const start = performance.now();
  while (!stop(writes, performance.now() - start)) {
    const n = Math.min(batch, maxWrites - writes);
    const keys: string[] = new Array<string>(n);
    const values: string[] = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      keys[i] = keyOf(nextKey());
      values[i] = freshValue();
    }
    const t0 = performance.now();
    const r = engine.applyBatch(keys, values, ++state.applied);
    if (isPromise(r)) await r;
    lat.push(performance.now() - t0);
    writes += n;
    onProgress?.(writes);
    await yieldLoop();
  }
  const seconds = (performance.now() - start) / 1000;
  const s = sortedCopy(lat);
  return {
    writes,
    seconds,
    writesPerS: writes / seconds,
    commitP50Ms: pct(s, 0.5),
    commitP99Ms: pct(s, 0.99),
    commitP999Ms: pct(s, 0.999),
    commitMaxMs: s[s.length - 1] ?? NaN,
  };
}

interface LatencyPhase {
  ops: number;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
}

async function runOps(seconds: number, op: () => unknown | Promise<unknown>): Promise<LatencyPhase> {
  const lat: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  let sinceYield = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    const r = op();
    if (isPromise(r)) await r;
    lat.push(performance.now() - t0);
    // Let the loop turn now and then, as a server between requests.
    if (++sinceYield === 256) {
      sinceYield = 0;
      await yieldLoop();
    }
  }
  const s = sortedCopy(lat);
  return { ops: lat.length, opsPerS: lat.length / ((performance.now() - start) / 1000), p50Ms: pct(s, 0.5), p99Ms: pct(s, 0.99) };
}

interface EngineResult {
  engine: EngineName;
  keys: number;
  batch: number;
  load: BatchPhase;
  rssAfterLoadMb: number;
  rssAnonAfterLoadMb: number | null;
  rssFileAfterLoadMb: number | null;
  pssAfterLoadMb: number | null;
  pssFileAfterLoadMb: number | null;
  heapUsedAfterLoadMb: number;
  overwrite: BatchPhase;
  read: LatencyPhase;
  range: LatencyPhase & { keysPerScan: number };
  diskMb: number | null;
  closeMs: number;
  reopenMs: number;
  appliedIndexWritten: number;
  appliedIndexReadBack: number;
  rssEndMb: number;
  loadavg1Start: number;
  loadavg1End: number;
}

/** Phase 1: every key once, in a random order, with progress every tenth. */
function loadAll(name: EngineName, engine: Engine, state: { applied: number }, rand: () => number, o: Options): Promise<BatchPhase> {
  // A random permutation of the key numbers: the load order.
  const order = new Uint32Array(o.keys);
  for (let i = 0; i < o.keys; i++) order[i] = i;
  for (let i = o.keys - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  let cursor = 0;
  let nextTenth = 1;
  return runBatches(
    engine,
    state,
    () => order[cursor++] as number,
    (writes) => writes >= o.keys,
    o.batch,
    o.keys,
    (writes) => {
      if (writes >= (nextTenth * o.keys) / 10) {
        progress(`${name}: loaded ${writes.toLocaleString('en')} keys (${nextTenth * 10}%)`, true);
        nextTenth++;
      }
    },
  );
}

async function runEngine(name: EngineName, o: Options): Promise<EngineResult> {
  const loadavg1Start = os.loadavg()[0] as number;
  const dir = join(o.dir, name);
  const engine = await makeEngine(name, dir);
  const state = { applied: 0 };
  const rand = rng(0x2545f491);
  const load = await loadAll(name, engine, state, rand, o);
  gc();
  const mem = process.memoryUsage();
  const parts = memParts();

  const keyNum = (): number => Math.floor(rand() * o.keys);
  const overwrite = await runBatches(engine, state, keyNum, (_w, ms) => ms >= o.overwriteS * 1000, o.batch, Infinity);
  progress(`${name}: overwrites done`, true);
  const read = await runOps(o.readS, () => engine.get(keyOf(keyNum())));
  progress(`${name}: reads done`, true);
  let scanned = 0;
  let scans = 0;
  const range = await runOps(o.rangeS, () => {
    const r = engine.range(keyOf(keyNum()), RANGE_LIMIT);
    scans++;
    if (isPromise(r)) return r.then((n) => (scanned += n));
    scanned += r;
    return r;
  });
  progress(`${name}: ranges done`, true);

  const c0 = performance.now();
  await engine.close();
  const closeMs = performance.now() - c0;
  const diskMb = diskBytes(engine.dir);
  const r0 = performance.now();
  const readBack = await engine.reopen();
  // "Serves": the first read of a random key after the reopen.
  const first = engine.get(keyOf(keyNum()));
  if (isPromise(first)) await first;
  const reopenMs = performance.now() - r0;
  await engine.close();
  const rssEndMb = process.memoryUsage().rss / 2 ** 20;
  return {
    engine: name,
    keys: o.keys,
    batch: o.batch,
    load,
    rssAfterLoadMb: mem.rss / 2 ** 20,
    rssAnonAfterLoadMb: parts.rssAnonMb,
    rssFileAfterLoadMb: parts.rssFileMb,
    pssAfterLoadMb: parts.pssMb,
    pssFileAfterLoadMb: parts.pssFileMb,
    heapUsedAfterLoadMb: mem.heapUsed / 2 ** 20,
    overwrite,
    read,
    range: { ...range, keysPerScan: scans === 0 ? 0 : scanned / scans },
    diskMb: diskMb === null ? null : diskMb / 2 ** 20,
    closeMs,
    reopenMs,
    appliedIndexWritten: state.applied,
    appliedIndexReadBack: readBack,
    rssEndMb,
    loadavg1Start,
    loadavg1End: os.loadavg()[0] as number,
  };
}

// ---- the parent: one child per engine, then the table ---------------------------

function runChild(name: EngineName, args: readonly string[]): Promise<EngineResult> {
  return new Promise((resolve, reject) => {
    const script = process.argv[1] as string;
    const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', script, ...args, '--child', name], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const onSignal = (): void => {
      child.kill('SIGTERM');
    };
    process.once('SIGINT', onSignal);
    child.on('error', reject);
    child.on('exit', (code) => {
      process.removeListener('SIGINT', onSignal);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${name}: child exited with ${code}`));
      try {
        resolve(JSON.parse(line) as EngineResult);
      } catch {
        reject(new Error(`${name}: no result from the child: ${out.slice(-500)}`));
      }
    });
  });
}

function table(results: readonly EngineResult[]): string {
  const head = [
    'engine',
    'load w/s',
    'overwrite w/s',
    'commit p50 ms',
    'p99',
    'p999',
    'max',
    'read p50 µs',
    'read p99 µs',
    'range(100) p50 µs',
    'range p99 µs',
    'RSS after load MB (anon+file)',
    'PSS MB (file)',
    'heap MB',
    'disk MB',
    'reopen ms',
    'applied ok',
    'load avg 1m',
  ];
  const rows = results.map((r) => [
    r.engine,
    fmt(r.load.writesPerS, 0),
    fmt(r.overwrite.writesPerS, 0),
    fmt(r.overwrite.commitP50Ms, 2),
    fmt(r.overwrite.commitP99Ms, 2),
    fmt(r.overwrite.commitP999Ms, 2),
    fmt(r.overwrite.commitMaxMs, 1),
    fmt(r.read.p50Ms * 1000, 1),
    fmt(r.read.p99Ms * 1000, 1),
    fmt(r.range.p50Ms * 1000, 0),
    fmt(r.range.p99Ms * 1000, 0),
    `${fmt(r.rssAfterLoadMb, 0)} (${fmt(r.rssAnonAfterLoadMb, 0)}+${fmt(r.rssFileAfterLoadMb, 0)})`,
    `${fmt(r.pssAfterLoadMb, 0)} (${fmt(r.pssFileAfterLoadMb, 0)})`,
    fmt(r.heapUsedAfterLoadMb, 0),
    r.diskMb === null ? '-' : fmt(r.diskMb, 0),
    r.engine === 'keyspace' ? '-' : fmt(r.reopenMs, 1),
    r.appliedIndexReadBack === r.appliedIndexWritten ? 'yes' : `no (${r.appliedIndexReadBack}/${r.appliedIndexWritten})`,
    `${fmt(r.loadavg1Start, 1)}→${fmt(r.loadavg1End, 1)}`,
  ]);
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseFlags({
    keys: { type: 'string' },
    engines: { type: 'string' },
    batch: { type: 'string' },
    'overwrite-s': { type: 'string' },
    'read-s': { type: 'string' },
    'range-s': { type: 'string' },
    dir: { type: 'string' },
    json: { type: 'string' },
    'keep-data': { type: 'boolean' },
    child: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    process.stdout.write(
      'usage: engine-bench.ts [--keys N] [--engines ' +
        ALL_ENGINES.join(',') +
        '] [--batch 64] [--overwrite-s 20] [--read-s 8] [--range-s 8] [--dir DIR] [--json FILE] [--keep-data]\n',
    );
    return;
  }
  const o: Options = {
    keys: intFlag(values, 'keys', 1_000_000),
    batch: intFlag(values, 'batch', 64),
    overwriteS: intFlag(values, 'overwrite-s', 20),
    readS: intFlag(values, 'read-s', 8),
    rangeS: intFlag(values, 'range-s', 8),
    dir: stringFlag(values, 'dir') ?? '',
  };
  if (o.keys < o.batch || o.batch < 1) throw new Error('--keys must be at least --batch, and --batch at least 1');

  const child = stringFlag(values, 'child');
  if (child !== undefined) {
    const result = await runEngine(child as EngineName, o);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }

  const engines = (stringFlag(values, 'engines') ?? 'keyspace,lmdb,level').split(',') as EngineName[];
  for (const e of engines) if (!ALL_ENGINES.includes(e)) throw new Error(`unknown engine ${e}; one of ${ALL_ENGINES.join(', ')}`);
  const base = o.dir === '' ? mkdtempSync(join(os.tmpdir(), 'engine-bench-')) : mkdtempSync(join(o.dir, 'engine-bench-'));
  const startedAt = new Date().toISOString();
  process.stderr.write(
    `engine-bench: ${o.keys.toLocaleString('en')} keys of ${VALUE_BYTES} B, batches of ${o.batch}, data in ${base}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`,
  );
  const results: EngineResult[] = [];
  try {
    for (const e of engines) {
      const args = ['--keys', String(o.keys), '--batch', String(o.batch), '--overwrite-s', String(o.overwriteS), '--read-s', String(o.readS), '--range-s', String(o.rangeS), '--dir', base];
      const r = await runChild(e, args);
      results.push(r);
      process.stderr.write(`${e}: done, load average ${r.loadavg1End.toFixed(2)}\n`);
      if (values['keep-data'] !== true) rmSync(join(base, e), { recursive: true, force: true });
    }
  } finally {
    if (values['keep-data'] !== true) rmSync(base, { recursive: true, force: true });
  }
  const report = {
    startedAt,
    endedAt: new Date().toISOString(),
    machine: machine(),
    options: { ...o, dir: base, valueBytes: VALUE_BYTES, rangeLimit: RANGE_LIMIT },
    loadavg: os.loadavg(),
    results,
  };
  process.stdout.write(`\n${o.keys.toLocaleString('en')} keys, ${VALUE_BYTES}-byte values, batches of ${o.batch} writes (+ applied index); ${startedAt}\n\n`);
  process.stdout.write(`${table(results)}\n\n`);
  process.stdout.write(`1-minute load average at the end: ${os.loadavg()[0]?.toFixed(2)} (2 cores; other work shares the machine)\n`);
  const json = stringFlag(values, 'json');
  if (json !== undefined) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`engine-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
