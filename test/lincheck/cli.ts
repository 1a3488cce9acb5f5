/**
 * Checks a history file for linearizability.
 *
 *   tsx test/lincheck/cli.ts history.json [--timeout-ms N] [--max-steps N] [--json]
 *
 * Use "-" to read the history from stdin. Exit codes: 0 linearizable,
 * 1 not linearizable, 2 bad usage or malformed history, 3 unknown (budget exceeded).
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { checkHistory, type CheckOptions, type CheckResult } from './checker.js';
import { HistoryFormatError, parseHistory } from './history.js';

export const EXIT_OK = 0;
export const EXIT_ILLEGAL = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNKNOWN = 3;

const USAGE =
  'usage: tsx test/lincheck/cli.ts <history.json | -> [--timeout-ms N] [--max-steps N] [--json] [--no-minimize]';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  readFile: (path: string) => string;
}

const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  readFile: (path) => readFileSync(path === '-' ? 0 : path, 'utf8'),
};

function formatResult(result: CheckResult): string[] {
  const lines: string[] = [];
  const width = Math.max(3, ...result.perKey.map((k) => JSON.stringify(k.key).length));
  for (const k of result.perKey) {
    const extra = [
      `${k.operations} ops`,
      k.unknownOperations > 0 ? `${k.unknownOperations} unknown` : '',
      k.failedOperations > 0 ? `${k.failedOperations} failed (ignored)` : '',
      `${k.steps} steps`,
      `${k.elapsedMs.toFixed(1)} ms`,
      k.limit !== undefined ? `limit ${k.limit} exceeded` : '',
    ].filter((s) => s !== '');
    lines.push(`${JSON.stringify(k.key).padEnd(width)}  ${k.result.padEnd(7)}  ${extra.join(', ')}`);
  }
  for (const k of result.perKey) {
    if (k.counterexample !== undefined) lines.push('', k.counterexample.message);
  }
  lines.push(
    '',
    `result: ${result.result} (${result.perKey.length} keys, ${result.operations} operations, ${result.elapsedMs.toFixed(1)} ms)`,
  );
  return lines;
}

export function main(argv: readonly string[], io: CliIo = defaultIo): number {
  const options: CheckOptions = {};
  let json = false;
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--json') json = true;
    else if (arg === '--no-minimize') options.minimize = false;
    else if (arg === '--timeout-ms' || arg === '--max-steps') {
      const n = Number(argv[++i]);
      if (!Number.isFinite(n) || n <= 0) {
        io.err(`${arg} needs a positive number\n${USAGE}`);
        return EXIT_USAGE;
      }
      if (arg === '--timeout-ms') options.timeoutMs = n;
      else options.maxSteps = n;
    } else if (arg === '-h' || arg === '--help') {
      io.out(USAGE);
      return EXIT_OK;
    } else if (arg.startsWith('--')) {
      io.err(`unknown option ${arg}\n${USAGE}`);
      return EXIT_USAGE;
    } else if (file === undefined) file = arg;
    else {
      io.err(`one history file at a time\n${USAGE}`);
      return EXIT_USAGE;
    }
  }
  if (file === undefined) {
    io.err(USAGE);
    return EXIT_USAGE;
  }
  let result: CheckResult;
  try {
    result = checkHistory(parseHistory(io.readFile(file)), options);
  } catch (err) {
    if (err instanceof HistoryFormatError || (err as NodeJS.ErrnoException).code !== undefined) {
      io.err(`${file}: ${(err as Error).message}`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (json) io.out(JSON.stringify(result, null, 2));
  else for (const line of formatResult(result)) io.out(line);
  return result.result === 'ok' ? EXIT_OK : result.result === 'illegal' ? EXIT_ILLEGAL : EXIT_UNKNOWN;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
