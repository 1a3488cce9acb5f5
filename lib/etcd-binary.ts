/**
 * Where Debian's `etcd-server` binary is, and its version: shared by the
 * benchmarks, the chaos runner (--store etcd) and the etcd tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/etcd', '/usr/local/bin/etcd'];

/** The etcd binary's path, or undefined when it is not installed. */
export function findEtcd(): string | undefined {
  for (const p of CANDIDATES) if (existsSync(p)) return p;
  const r = spawnSync('which', ['etcd'], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p === '' ? undefined : p;
}

export function etcdVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return /etcd Version:\s*(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}
