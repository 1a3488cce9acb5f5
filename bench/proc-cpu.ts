/**
 * CPU time of benchmark processes, read from /proc: what bench:2pc and
 * bench:store divide by the operations of a window to give CPU per
 * transaction or per write, and so which processes an operation costs.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ on Linux, which /proc/<pid>/stat counts in
/** `st` of a listening socket in /proc/net/tcp. */
const TCP_LISTEN = '0A';

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

/**
 * The pids of this machine's processes listening on `ports` (TCP, IPv4 or
 * IPv6): the sockets' inodes from /proc/net/tcp{,6}, then the processes
 * holding them from /proc/<pid>/fd. How bench:store measures the CPU of a
 * cluster it did not start (--endpoints). Empty where /proc cannot tell.
 */
export function pidsListeningOn(ports: readonly number[]): number[] {
  const inodes = listeningInodes(new Set(ports));
  return inodes.size === 0 ? [] : pidsHolding(inodes);
}

function listeningInodes(ports: ReadonlySet<number>): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[];
    try {
      lines = readFileSync(file, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...; local_address is HEXIP:HEXPORT
      const f = line.trim().split(/\s+/);
      const port = Number.parseInt(f[1]?.split(':')[1] ?? '', 16);
      const inode = f[9];
      if (f[3] === TCP_LISTEN && ports.has(port) && inode !== undefined && inode !== '0') inodes.add(inode);
    }
  }
  return inodes;
}

function pidsHolding(inodes: ReadonlySet<string>): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    const holds = fds.some((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        return m !== null && inodes.has(m[1] as string);
      } catch {
        return false;
      }
    });
    if (holds) pids.push(Number(entry));
  }
  return pids;
}
