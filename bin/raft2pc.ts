#!/usr/bin/env node
/**
 * `raft2pc <command> [flags]`: every long-running program and command-line
 * tool of the package behind one name. A command's module is imported only
 * when that command runs (a store node never loads the etcd client, kvctl
 * never loads express); `raft2pc --help` imports them all to list their
 * summaries, so each summary is written once, in its command.
 */
import { defineGroup, isEntryPoint, processIo, PROGRAM, runMain, usageLines, type Command } from '../lib/cli.js';

/** Each command's name and how to load it. */
export const BIN_COMMANDS: ReadonlyMap<string, () => Promise<Command>> = new Map([
  ['store', async () => (await import('../store/node/main.js')).storeCommand],
  ['cluster', async () => (await import('../store/node/cluster-cli.js')).clusterCommand],
  ['coordinator', async () => (await import('../coordinator/service/main.js')).coordinatorCommand],
  ['kvctl', async () => (await import('../store/cli/kvctl.js')).kvctlCommand],
  ['tx', async () => (await import('../client/cli.js')).txCommand],
  ['participant-example', async () => (await import('../examples/inventory/main.js')).participantExampleCommand],
  ['demo', async () => (await import('../demo/start.js')).demoCommand],
  ['certs', async () => (await import('../lib/certs.js')).certsCommand],
  ['token', async () => (await import('../lib/token-cli.js')).tokenCommand],
]);

const SUMMARY = 'two-phase commit over a built-in Raft store';

/** Every command, loaded; one that cannot load (left out of a build) is listed as such. */
async function everyCommand(): Promise<Command[]> {
  return Promise.all(
    [...BIN_COMMANDS].map(async ([name, load]) => {
      try {
        return await load();
      } catch (e) {
        return { name, summary: `(cannot load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)})`, flags: {} };
      }
    }),
  );
}

async function rootUsage(): Promise<string[]> {
  return usageLines(defineGroup({ name: PROGRAM, summary: SUMMARY, subcommands: await everyCommand() }), PROGRAM);
}

/** A command runs as the process (runMain: its exit code, or a service that keeps running); anything else gets the list. */
async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  const load = name === undefined ? undefined : BIN_COMMANDS.get(name);
  const io = processIo();
  const exit = (code: number): void => void process.stdout.write('', () => process.exit(code));
  if (load !== undefined) {
    let command: Command;
    try {
      command = await load();
    } catch (e) {
      io.err(`${PROGRAM}: ${name}: cannot load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      return exit(1);
    }
    return runMain(command, rest);
  }
  const help = name === '--help' || name === '-h' || name === 'help';
  if (!help) io.err(`${PROGRAM}: ${name === undefined ? 'which command?' : `${name}: unknown command`}`);
  for (const line of await rootUsage()) (help ? io.out : io.err)(line);
  exit(help ? 0 : 2);
}

if (isEntryPoint(import.meta.url)) void main(process.argv.slice(2));
