/** What every benchmark prints: progress lines, table cells, and the machine description in its JSON. */
import os from 'node:os';

/** A progress line on stderr: rewritten in place on a terminal, only finished lines otherwise. */
export function progress(line: string, done: boolean): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}${done ? '\n' : ''}`);
  else if (done) process.stderr.write(`${line}\n`);
}

/** A number for a table cell; '-' when there is none. */
export function fmt(n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

/** a / b as "1.23x"; '-' when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 || Number.isNaN(a) || Number.isNaN(b) ? '-' : `${(a / b).toFixed(2)}x`;
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}`, node: process.version };
}
