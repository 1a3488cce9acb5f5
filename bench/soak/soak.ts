/**
 * The soak:
 *
 *   npm run soak -- --duration S [--store builtin|etcd] [--rate TX_PER_S] [--clients N]
 *                   [--interval-s 60] [--base-port P] [--out DIR]
 *
 * Runs the 2PC benchmark's system (a 3-node store, built-in or a throwaway
 * etcd, one coordinator and two participants, each its own process) under a
 * steady load for S seconds, and reports per interval (a minute by default):
 * throughput, commit p50/p99/p999, errors by code, leader changes, each
 * process's RSS and the store's size, as a table row when the interval ends
 * (stdout; progress on stderr). Then an HTML report with charts and its JSON
 * (OUT/<time>-<store>.html and .json), and one last line:
 *
 *   minutes=M tx=N errors=E leader_changes=L max_rss_mb=R
 *
 * Exit status: 0 when no transaction failed and the store elected no new
 * leader, 1 otherwise (or when the run itself failed), 2 on bad usage.
 * Ctrl-C (or SIGTERM) ends the load early and still reports; again to exit
 * at once. docs/SOAK.md says more.
 */
import { defineCommand, isEntryPoint, runMain } from '../../lib/cli.js';
import { runSoak } from './run.js';

export const soakCommand = defineCommand({
  name: 'soak',
  summary: 'run the 2PC workload steadily for a long time and report per interval; exits 1 on any error or leader change',
  details: [
    'Leader changes: how far the store\'s highest Raft term rose during the load (every term',
    'begins with an election). Each process\'s RSS is VmRSS from /proc/<pid>/status.',
    'Ports: the store at --base-port..+2 (peers at +100), the coordinator at +50, participants at +52, +54.',
  ].join('\n'),
  flags: {
    duration: { type: 'int', required: true, min: 1, max: 7 * 86_400, placeholder: 'S', description: 'seconds of load' },
    store: { type: 'enum', values: ['builtin', 'etcd'], default: 'builtin', description: 'builtin: a 3-node built-in store; etcd: a throwaway 3-member etcd (/usr/bin/etcd)' },
    rate: { type: 'int', min: 1, max: 1_000_000, placeholder: 'TX_PER_S', description: 'transactions started per second across the clients (default: flat out)' },
    clients: { type: 'int', default: 16, min: 1, max: 4_096, description: 'concurrent clients, each one transaction at a time' },
    'interval-s': { type: 'int', default: 60, min: 1, max: 86_400, placeholder: 'S', description: 'seconds per reported interval' },
    'base-port': { type: 'int', default: 31_000, min: 1_024, max: 65_000, placeholder: 'P', description: 'first port (store P..P+2, peers P+100.., coordinator P+50, participants P+52, P+54)' },
    out: { type: 'string', default: '.artifacts/soak', placeholder: 'DIR', description: 'where the report, its JSON, the logs and the data go' },
    'timeout-ms': { type: 'int', default: 10_000, min: 100, description: 'transaction timeout sent with begin, ms' },
    'snapshot-every': { type: 'int', min: 1, description: 'the built-in store\'s --snapshot-every (default: the node\'s own)' },
    'keep-data': { type: 'boolean', description: 'keep the store\'s and participants\' data after a passing soak (always kept after a failing one)' },
  },
  async run(v, _positionals, ctx) {
    const abort = new AbortController();
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (++signals > 1) process.exit(130); // the run's exit hook kills every process it started, by pid
      ctx.err(`soak: ${sig}: ending the load early; reporting, then stopping the processes (again to exit at once)`);
      abort.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const options = {
        durationS: v.duration,
        store: v.store,
        rate: v.rate,
        clients: v.clients,
        intervalS: v['interval-s'],
        basePort: v['base-port'],
        outDir: v.out,
        timeoutMs: v['timeout-ms'],
        keepData: v['keep-data'],
        snapshotEvery: v['snapshot-every'],
      } as const;
      const result = await runSoak(options, { out: ctx.out }, abort.signal, `npm run soak -- ${process.argv.slice(2).join(' ')}`.trim());
      ctx.out(`report: ${result.html}`);
      ctx.out(`data:   ${result.json}`);
      ctx.out(`logs:   ${result.runDir}`);
      ctx.out(result.finalLine);
      return result.passed ? 0 : 1;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  },
});

if (isEntryPoint(import.meta.url)) runMain(soakCommand);
