/**
 * What a benchmark's store nodes run: the compiled package by default, the
 * JavaScript `npm run build` makes and an installed package runs, not the
 * TypeScript sources under tsx (whose runtime helpers, such as the one that
 * names every function made per request, cost the nodes a few percent of
 * their CPU: docs/BENCHMARKS.md, "Pipelined requests and the code that ships").
 */
import { spawnSync } from 'node:child_process';
import { builtProgramPath, FROM_SOURCES, PACKAGE_ROOT } from '../lib/entry.js';
import { progress } from './output.js';

export type NodeCode = 'build' | 'sources';
export const NODE_CODES: readonly NodeCode[] = ['build', 'sources'];

/** The store node's entry file for `code` (building the package first when run from the sources); undefined: the launcher's default. */
export function storeNodeProgram(code: NodeCode): string | undefined {
  if (code === 'sources' || !FROM_SOURCES) return undefined;
  progress('building the package (npm run build), so the nodes run the code that ships ...', true);
  const r = spawnSync('npm', ['run', 'build'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status ?? r.signal}); --code sources runs the sources`);
  return builtProgramPath('store/node/main');
}
