/**
 * A process's memory from /proc by pid. A store node on LMDB (or etcd on
 * bbolt) maps its database file, so VmRSS counts page-cache pages that are not
 * the process's own; RssAnon (heap, stacks, malloc) is what the process itself
 * costs, and Pss shares the mapped pages among their users.
 */
import { readFileSync } from 'node:fs';

export interface ProcMemory {
  readonly pid: number;
  /** Anonymous resident memory (heap, stacks, malloc): what the process itself costs. */
  readonly rssAnonMb: number | null;
  /** Proportional set size: resident pages, shared ones divided among their users (file pages included); null unless asked for. */
  readonly pssMb: number | null;
  /** VmRSS (counts the mapped database file's cached pages). */
  readonly rssMb: number | null;
}

function kbField(text: string, field: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m?.[1] === undefined ? null : Number(m[1]) / 1024;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** RssAnon and VmRSS from /proc/<pid>/status, and Pss from smaps_rollup with `pss` (a costlier read); nulls for a process that is gone. */
export function procMemory(pid: number, opts: { readonly pss?: boolean } = {}): ProcMemory {
  const status = readOr(`/proc/${pid}/status`);
  const pssMb = opts.pss === true ? kbField(readOr(`/proc/${pid}/smaps_rollup`), 'Pss') : null;
  return { pid, rssAnonMb: kbField(status, 'RssAnon'), pssMb, rssMb: kbField(status, 'VmRSS') };
}
