/**
 * Top frames by self time of V8 CPU profiles (`node --cpu-prof`), as a
 * table per profile and as JSON: what issue 17 asks docs/BENCHMARKS.md to
 * show before and after each change.
 *
 *   npx tsx bench/profile-top.ts [--top 25] [--by function|file|package] FILE_OR_DIR...
 *
 * A directory stands for every `.cpuprofile` in it (one per process).
 * `--by file` sums self time per source file, `--by package` per npm
 * package or per top folder of this repository, which says at a glance
 * whether the time goes to our code, to express, to JSON or to the kernel.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

type Grouping = 'function' | 'file' | 'package';

const SPECIAL = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);

function frameKey(frame: ProfileNode['callFrame'], by: Grouping): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (SPECIAL.has(name) || frame.url === '') return by === 'function' ? name : SPECIAL.has(name) ? name : '(native)';
  const url = frame.url.replace(/^file:\/\//, '');
  if (by === 'package') return packageOf(url);
  const short = shortPath(url);
  return by === 'file' ? short : `${name} ${short}:${frame.lineNumber + 1}`;
}

function shortPath(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const cwd = process.cwd() + '/';
  return url.startsWith(cwd) ? url.slice(cwd.length) : url;
}

function packageOf(url: string): string {
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const short = shortPath(url);
  const parts = short.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Self time per key, in microseconds, and the profile's total. */
export function selfTimes(profile: Profile, by: Grouping): { totalUs: number; byKey: Map<string, number> } {
  const keyOf = new Map<number, string>();
  for (const n of profile.nodes) keyOf.set(n.id, frameKey(n.callFrame, by));
  const byKey = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const key = keyOf.get(id) ?? '(unknown)';
    if (key === '(idle)') return;
    totalUs += dt;
    byKey.set(key, (byKey.get(key) ?? 0) + dt);
  });
  return { totalUs, byKey };
}

function profilesIn(paths: readonly string[]): string[] {
  return paths.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.cpuprofile'))
          .sort()
          .map((f) => join(p, f))
      : [p],
  );
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, by: { type: 'string', default: 'function' } } });
  const by = values.by as Grouping;
  if (!['function', 'file', 'package'].includes(by)) throw new Error(`--by must be function, file or package, not ${values.by}`);
  const top = Number(values.top);
  const out: { file: string; busyMs: number; top: { key: string; ms: number; pct: number }[] }[] = [];
  for (const file of profilesIn(positionals)) {
    const { totalUs, byKey } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile, by);
    const rows = [...byKey.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    console.log(`\n${basename(file)}: ${(totalUs / 1000).toFixed(0)} ms busy (idle excluded)\n`);
    console.log('| self ms | % | ' + by + ' |\n|---:|---:|---|');
    for (const [key, us] of rows) console.log(`| ${(us / 1000).toFixed(0)} | ${((100 * us) / totalUs).toFixed(1)} | ${key.replace(/\|/g, '\\|')} |`);
    out.push({ file: basename(file), busyMs: totalUs / 1000, top: rows.map(([key, us]) => ({ key, ms: us / 1000, pct: (100 * us) / totalUs })) });
  }
  console.log('\n' + JSON.stringify(out));
}

main();
