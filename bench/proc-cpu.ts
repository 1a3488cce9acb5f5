/**
 * CPU time of benchmark processes, read from /proc: what bench:2pc and
 * bench:store divide by the operations of a window to give CPU per
 * transaction or per write, and so which processes an operation costs.
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ on Linux, which /proc/<pid>/stat counts in

/** User + system CPU milliseconds a process used so far; undefined where /proc cannot tell (gone, not Linux). */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? ((utime + stime) * 1_000) / TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}

/** The summed CPU milliseconds of `pids` so far; undefined when there are none or any cannot be read. */
export function cpuMsOf(pids: readonly (number | undefined)[]): number | undefined {
  if (pids.length === 0) return undefined;
  let sum = 0;
  for (const pid of pids) {
    const ms = cpuMs(pid);
    if (ms === undefined) return undefined;
    sum += ms;
  }
  return sum;
}
