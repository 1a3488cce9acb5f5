/**
 * Goal: every program answers its command line as an operator expects, run
 * as a real process the way the scripts and the bin run it: `--help` prints
 * the usage on stdout, nothing on stderr, exit 0; an unknown flag or a bad
 * value prints one line saying which and why, then the usage, on stderr,
 * exit 2, and never a stack trace. Nothing here listens on a port: every
 * run ends at the command line.
 */
import { describe, expect, it } from 'vitest';
import { runProgram, type Finished } from './processes.js';

interface ProgramCase {
  /** As `raft2pc <name>` names it in messages. */
  readonly prog: string;
  readonly file: string;
  /** Arguments before the flags under test (the bin's command name). */
  readonly pre?: readonly string[];
  /** Takes --log-level (the services do). */
  readonly logLevel: boolean;
}

const PROGRAMS: readonly ProgramCase[] = [
  { prog: 'raft2pc store', file: 'store/node/main.ts', logLevel: true },
  { prog: 'raft2pc cluster', file: 'store/node/cluster-cli.ts', logLevel: true },
  { prog: 'raft2pc coordinator', file: 'coordinator/service/main.ts', logLevel: true },
  { prog: 'raft2pc kvctl', file: 'store/cli/kvctl.ts', logLevel: false },
  { prog: 'raft2pc participant-example', file: 'examples/inventory/main.ts', logLevel: true },
  { prog: 'raft2pc app', file: 'demo/app/main.ts', logLevel: true },
  { prog: 'raft2pc bank', file: 'demo/bank/main.ts', logLevel: true },
  { prog: 'raft2pc demo', file: 'demo/start.ts', logLevel: true },
  { prog: 'raft2pc demo-cli', file: 'demo/cli.ts', logLevel: false },
  { prog: 'raft2pc store', file: 'bin/raft2pc.ts', pre: ['store'], logLevel: true },
  { prog: 'raft2pc coordinator', file: 'bin/raft2pc.ts', pre: ['coordinator'], logLevel: true },
];

const STACK_FRAME = /^\s+at /;

function expectOneLineThenUsage(r: Finished, firstLine: string, prog: string): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n');
  expect(lines[0]).toBe(firstLine);
  expect(lines.filter((l) => l.startsWith(`${prog}:`))).toHaveLength(2); // the error, then the usage's title
  expect(lines.some((l) => l.startsWith(`usage: ${prog} `))).toBe(true);
  expect(lines.filter((l) => STACK_FRAME.test(l))).toEqual([]);
}

describe.each(PROGRAMS)('$file $pre', ({ prog, file, pre = [], logLevel }) => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const r = await runProgram(file, [...pre, '--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${prog}: `));
    expect(r.stdout).toContain(`usage: ${prog} `);
    expect(r.stdout).toContain('-h, --help');
    if (logLevel) expect(r.stdout).toMatch(/--log-level <debug\|info\|warn\|error> {2}\(enum; default info; env RAFT2PC_LOG_LEVEL\)/);
  });

  it('an unknown flag: one line naming it, the usage, exit 2', async () => {
    expectOneLineThenUsage(await runProgram(file, [...pre, '--bogus']), `${prog}: --bogus: unknown flag`, prog);
  });

  it('a bad value: one line saying why, the usage, exit 2', async () => {
    const r = await runProgram(file, [...pre, '--log-level', 'nope']);
    const why = logLevel ? '--log-level: "nope" is not one of debug, info, warn, error' : '--log-level: unknown flag';
    expectOneLineThenUsage(r, `${prog}: ${why}`, prog);
  });
});

describe('bin/raft2pc.ts', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await runProgram('bin/raft2pc.ts', ['--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const cmd of ['store', 'cluster', 'coordinator', 'kvctl', 'tx', 'participant-example', 'demo']) {
      expect(r.stdout).toMatch(new RegExp(`^ {2}${cmd} +\\S`, 'm'));
    }
    expect(r.stdout).not.toContain('cannot load');
  });

  it('an unknown command: one line, the list of commands, exit 2', async () => {
    const r = await runProgram('bin/raft2pc.ts', ['nope']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe('raft2pc: nope: unknown command');
    expect(lines).toContain('commands:');
    expect(lines.filter((l) => STACK_FRAME.test(l))).toEqual([]);
  });

  it('dispatches to a group and its subcommands: kvctl get --help, tx --help', async () => {
    const get = await runProgram('bin/raft2pc.ts', ['kvctl', 'get', '--help']);
    expect(get.code).toBe(0);
    expect(get.stdout).toContain('usage: raft2pc kvctl get [flags] KEY');
    const tx = await runProgram('bin/raft2pc.ts', ['tx', '--help']);
    expect(tx.code).toBe(0);
    expect(tx.stdout).toContain('usage: raft2pc tx <command> [flags]');
  });
});
