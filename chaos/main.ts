/**
 * `npm run chaos -- --duration 120 --seed 7 [--faults kill,pause,partition,disk] [--store builtin|etcd]`
 *
 * Runs the bank demo's processes under a seeded fault schedule with a steady
 * load, then checks safety and liveness (docs/CHAOS.md). The last line is
 *   transfers=N committed=C aborted=A audits=K faults=F violations=V in_doubt=D
 * Exit status: 0 no violation, 1 violations, 2 bad usage, 3 the run itself
 * failed (e.g. the processes did not start). Ctrl-C (or SIGTERM) stops the
 * load early; the run still heals, checks and stops every process it started.
 */
import { runChaos } from './run.js';
import { parseChaosArgs, USAGE, UsageError } from './options.js';

const say = (line: string): void => void process.stdout.write(`${line}\n`);

let options;
try {
  options = parseChaosArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`chaos: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(e instanceof UsageError ? 2 : 3);
}

const abort = new AbortController();
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    signals++;
    if (signals === 1) {
      say(`chaos: ${sig}: stopping the load; healing, checking and stopping the processes (again to exit at once)`);
      abort.abort();
    } else {
      process.exit(130); // the exit hook SIGKILLs every child by pid
    }
  });
}

try {
  const summary = await runChaos(options, say, abort.signal);
  say(summary.finalLine);
  process.exit(summary.violations > 0 ? 1 : 0);
} catch (e) {
  process.stderr.write(`chaos: the run failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(3);
}
