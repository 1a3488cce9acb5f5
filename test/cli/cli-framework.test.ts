/**
 * Goal: lib/cli.ts gives every program the same command line. --help prints
 * the usage (each flag with its type, default and environment variable) on
 * stdout and exits 0; an unknown flag, a missing or bad value prints one
 * line `raft2pc <cmd>: --flag: why` and the usage on stderr and exits 2;
 * flags come from RAFT2PC_... variables too, the command line winning;
 * values reach run() validated and typed; groups dispatch to subcommands.
 * All in-process: runCommand takes argv, env and an output sink.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { defineCommand, defineGroup, envName, isEntryPoint, runCommand, UsageError, type Command, type CommandIo } from '../../lib/cli.js';

interface Captured {
  readonly io: CommandIo;
  readonly out: string[];
  readonly err: string[];
}

function capture(env: Record<string, string> = {}): Captured {
  const out: string[] = [];
  const err: string[] = [];
  // Lines may hold newlines (details); split so assertions see real lines.
  return { io: { env, out: (l) => out.push(...l.split('\n')), err: (l) => err.push(...l.split('\n')) }, out, err };
}

/** The last values run() saw. */
let seen: { values: Record<string, unknown>; positionals: readonly string[] } | undefined;

const serve = defineCommand({
  name: 'serve',
  summary: 'a test service',
  args: '[NAME...]',
  flags: {
    port: { type: 'int', default: 7000, min: 1, max: 65535, description: 'the port' },
    'log-level': { type: 'enum', values: ['debug', 'info', 'warn', 'error'], default: 'info', description: 'the level' },
    id: { type: 'string', required: true, description: 'the id' },
    host: { type: 'string', description: 'the host' },
    join: { type: 'boolean', description: 'join' },
    peers: { type: 'list', description: 'peers' },
    'old-name': { type: 'string', envAliases: ['LEGACY_OLD_NAME'], description: 'has an older variable' },
  },
  run(values, positionals) {
    expectTypeOf(values.port).toEqualTypeOf<number>();
    expectTypeOf(values['log-level']).toEqualTypeOf<'debug' | 'info' | 'warn' | 'error'>();
    expectTypeOf(values.id).toEqualTypeOf<string>();
    expectTypeOf(values.host).toEqualTypeOf<string | undefined>();
    expectTypeOf(values.join).toEqualTypeOf<boolean>();
    expectTypeOf(values.peers).toEqualTypeOf<readonly string[] | undefined>();
    seen = { values: { ...values }, positionals };
    if (values.host === 'refuse') throw new UsageError('--host', 'refused by run');
    if (values.host === 'crash') throw new Error('it broke');
    return values.port === 7001 ? 5 : undefined;
  },
});

async function run(cmd: Command, argv: string[], env: Record<string, string> = {}): Promise<Captured & { code: number | undefined }> {
  const c = capture(env);
  seen = undefined;
  const code = await runCommand(cmd, argv, c.io);
  return { ...c, code };
}

function expectUsageError(r: { code: number | undefined; err: string[]; out: string[] }, line: string): void {
  expect(r.code).toBe(2);
  expect(r.out).toEqual([]);
  expect(r.err[0]).toBe(line);
  // The rest is the usage, and nothing looks like a stack frame.
  expect(r.err.some((l) => l.startsWith('usage: raft2pc '))).toBe(true);
  expect(r.err.filter((l) => /^\s+at /.test(l))).toEqual([]);
  expect(seen).toBeUndefined();
}

describe('lib/cli.ts', () => {
  it('--help and -h print the usage on stdout with every flag, its type, default and env var, and exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await run(serve, [flag]);
      expect(r.code).toBe(0);
      expect(r.err).toEqual([]);
      expect(r.out[0]).toBe('raft2pc serve: a test service');
      expect(r.out).toContain('usage: raft2pc serve [flags] [NAME...]');
      const portLine = r.out.find((l) => l.includes('--port'));
      expect(portLine).toBe('      --port <int>  (int; default 7000; 1..65535; env RAFT2PC_PORT)');
      expect(r.out.find((l) => l.includes('--log-level'))).toContain('<debug|info|warn|error>');
      expect(r.out.find((l) => l.includes('--id'))).toContain('required; env RAFT2PC_ID');
      expect(seen).toBeUndefined();
    }
    // Help wins over mistakes elsewhere on the line.
    expect((await run(serve, ['--port', 'x', '--bogus', '--help'])).code).toBe(0);
  });

  it('values reach run() validated and typed, with defaults filled in', async () => {
    const r = await run(serve, ['--id', 'a', '--port=8080', '--join', '--peers', 'x, y,', '--peers', 'z', 'p1', '--', '--p2']);
    expect(r.code).toBeUndefined();
    expect(seen?.values).toEqual({ id: 'a', port: 8080, 'log-level': 'info', join: true, peers: ['x', 'y', 'z'] });
    expect(seen?.positionals).toEqual(['p1', '--p2']);
    expect((await run(serve, ['--id', 'a', '--port', '7001'])).code).toBe(5);
    expect((await run(serve, ['--id', 'a', '--port', '-1']))).toMatchObject({ code: 2 });
    expect((await run(serve, ['--id', 'a', '--join=false'])).code).toBeUndefined();
    expect(seen?.values['join']).toBe(false);
  });

  it('an unknown flag, a missing value or a bad value: one line naming the flag and why, the usage, exit 2', async () => {
    expectUsageError(await run(serve, ['--id', 'a', '--bogus']), 'raft2pc serve: --bogus: unknown flag');
    expectUsageError(await run(serve, ['--id', 'a', '-x']), 'raft2pc serve: -x: unknown flag');
    expectUsageError(await run(serve, []), 'raft2pc serve: --id: required (or set RAFT2PC_ID)');
    expectUsageError(await run(serve, ['--id']), 'raft2pc serve: --id: needs a value (string)');
    expectUsageError(await run(serve, ['--host', '--id', 'a']), 'raft2pc serve: --host: needs a value (string)');
    expectUsageError(await run(serve, ['--id', 'a', '--port', '12x']), 'raft2pc serve: --port: "12x" is not an integer');
    expectUsageError(await run(serve, ['--id', 'a', '--port', '1.5']), 'raft2pc serve: --port: "1.5" is not an integer');
    expectUsageError(await run(serve, ['--id', 'a', '--port', '0']), 'raft2pc serve: --port: "0" is below the minimum 1');
    expectUsageError(await run(serve, ['--id', 'a', '--port', '70000']), 'raft2pc serve: --port: "70000" is above the maximum 65535');
    expectUsageError(await run(serve, ['--id', 'a', '--log-level', 'nope']), 'raft2pc serve: --log-level: "nope" is not one of debug, info, warn, error');
    expectUsageError(await run(serve, ['--id', 'a', '--join=maybe']), 'raft2pc serve: --join: "maybe" is not true or false');
  });

  it('a string flag with parse hands run() the parsed value; what parse throws is the usage error; a required list must name something', async () => {
    let got: unknown;
    const cmd = defineCommand({
      name: 'p',
      summary: 's',
      flags: {
        pair: { type: 'string', default: 'a=1', parse: (t: string) => {
          const [k, v] = t.split('=');
          if (k === undefined || v === undefined) throw new Error('want k=v');
          return { k, v: Number(v) };
        }, description: 'a pair' },
        urls: { type: 'list', required: true, description: 'some URLs' },
      },
      run(values) {
        expectTypeOf(values.pair).toEqualTypeOf<{ k: string; v: number }>();
        got = values;
        return 0;
      },
    });
    expect((await run(cmd, ['--urls', 'x'])).code).toBe(0);
    expect(got).toEqual({ pair: { k: 'a', v: 1 }, urls: ['x'] });
    await run(cmd, ['--urls', 'x', '--pair', 'b=2']);
    expect(got).toMatchObject({ pair: { k: 'b', v: 2 } });
    expectUsageError(await run(cmd, ['--urls', 'x', '--pair', 'nope']), 'raft2pc p: --pair: want k=v');
    expectUsageError(await run(cmd, ['--urls', 'x'], { RAFT2PC_PAIR: 'nope' }), 'raft2pc p: --pair: RAFT2PC_PAIR: want k=v');
    expectUsageError(await run(cmd, ['--urls', ',']), 'raft2pc p: --urls: names nothing (it is required)');
  });

  it('positionals are refused where the command takes none', async () => {
    const none = defineCommand({ name: 'none', summary: 's', flags: {}, run: () => 0 });
    expectUsageError(await run(none, ['extra']), 'raft2pc none: extra: unexpected argument');
    expect((await run(none, [])).code).toBe(0);
  });

  it('every flag can come from RAFT2PC_<FLAG>, validated the same; the command line wins; an empty variable is unset', async () => {
    expect(envName('log-level')).toBe('RAFT2PC_LOG_LEVEL');
    const env = { RAFT2PC_ID: 'from-env', RAFT2PC_PORT: '9000', RAFT2PC_LOG_LEVEL: 'debug', RAFT2PC_JOIN: 'yes', RAFT2PC_PEERS: 'a,b', RAFT2PC_HOST: '' };
    await run(serve, [], env);
    expect(seen?.values).toEqual({ id: 'from-env', port: 9000, 'log-level': 'debug', join: true, peers: ['a', 'b'] });
    await run(serve, ['--id', 'flag', '--port', '9001', '--log-level', 'warn'], env);
    expect(seen?.values).toMatchObject({ id: 'flag', port: 9001, 'log-level': 'warn' });
    expectUsageError(await run(serve, ['--id', 'a'], { RAFT2PC_LOG_LEVEL: 'nope' }), 'raft2pc serve: --log-level: RAFT2PC_LOG_LEVEL="nope" is not one of debug, info, warn, error');
    expectUsageError(await run(serve, ['--id', 'a'], { RAFT2PC_PORT: 'eighty' }), 'raft2pc serve: --port: RAFT2PC_PORT="eighty" is not an integer');
    // A bad variable is not read when the flag is given.
    expect((await run(serve, ['--id', 'a', '--port', '7001'], { RAFT2PC_PORT: 'eighty' })).code).toBe(5);
    // An older variable still counts, after the RAFT2PC_ one.
    await run(serve, ['--id', 'a'], { LEGACY_OLD_NAME: 'old' });
    expect(seen?.values['old-name']).toBe('old');
    await run(serve, ['--id', 'a'], { LEGACY_OLD_NAME: 'old', RAFT2PC_OLD_NAME: 'new' });
    expect(seen?.values['old-name']).toBe('new');
  });

  it('a UsageError thrown by run() is a usage failure; any other error is one line and exit 1', async () => {
    const refused = await run(serve, ['--id', 'a', '--host', 'refuse']);
    expect(refused.code).toBe(2);
    expect(refused.err[0]).toBe('raft2pc serve: --host: refused by run');
    const crashed = await run(serve, ['--id', 'a', '--host', 'crash']);
    expect(crashed.code).toBe(1);
    expect(crashed.err).toEqual(['raft2pc serve: it broke']);
  });

  describe('groups', () => {
    const calls: string[] = [];
    const get = defineCommand({
      name: 'get',
      summary: 'read a key',
      args: 'KEY',
      flags: { json: { type: 'boolean', description: 'json output' }, serializable: { type: 'boolean', description: 'local read' } },
      run(values, positionals, ctx) {
        calls.push(`get ${positionals.join(' ')} json=${values.json} serializable=${values.serializable}`);
        ctx.out(`${ctx.prog} ran`);
        return 0;
      },
    });
    const put = defineCommand({ name: 'put', summary: 'write a key', args: 'KEY VALUE', flags: {}, run: () => 3 });
    const kv = defineGroup({ name: 'kv', summary: 'a store client', flags: { json: { type: 'boolean', description: 'json output' }, endpoints: { type: 'string', description: 'where' } }, subcommands: [get, put] });

    it('dispatches on the first argument, with the group flags before or after it', async () => {
      let r = await run(kv, ['get', 'k']);
      expect(r.code).toBe(0);
      expect(r.out).toEqual(['raft2pc kv get ran']);
      r = await run(kv, ['--endpoints', 'http://x', '--json', 'get', 'k', '--serializable']);
      expect(r.code).toBe(0);
      r = await run(kv, ['get', '--json', 'k']);
      expect(calls).toEqual(['get k json=false serializable=false', 'get k json=true serializable=true', 'get k json=true serializable=false']);
      expect((await run(kv, ['put', 'a', 'b'])).code).toBe(3);
      // The group's flags come from the environment for every subcommand too.
      calls.length = 0;
      await run(kv, ['get', 'k'], { RAFT2PC_JSON: 'true' });
      expect(calls).toEqual(['get k json=true serializable=false']);
    });

    it('help lists the subcommands; a subcommand has its own help', async () => {
      const r = await run(kv, ['--help']);
      expect(r.code).toBe(0);
      expect(r.out).toContain('usage: raft2pc kv <command> [flags]');
      expect(r.out).toContain('  get  read a key');
      const sub = await run(kv, ['get', '--help']);
      expect(sub.code).toBe(0);
      expect(sub.out[0]).toBe('raft2pc kv get: read a key');
      expect(sub.out).toContain('usage: raft2pc kv get [flags] KEY');
    });

    it("a subcommand's flag may come before its name; a flag nobody knows is refused there", async () => {
      calls.length = 0;
      expect((await run(kv, ['--serializable', 'get', 'k'])).code).toBe(0);
      expect(calls).toEqual(['get k json=false serializable=true']);
      for (const argv of [['--bogus', 'get', 'k'], ['--log-level', 'nope', 'get', 'k']]) {
        const r = await run(kv, argv);
        expect(r.code).toBe(2);
        expect(r.err[0]).toBe(`raft2pc kv: ${argv[0]}: unknown flag`);
      }
      expect((await run(kv, ['--bogus', '--help'])).code).toBe(0);
    });

    it('a missing or unknown subcommand, or a flag the subcommand lacks, is a usage error', async () => {
      let r = await run(kv, []);
      expect(r.code).toBe(2);
      expect(r.err[0]).toBe('raft2pc kv: which command? one of get, put');
      r = await run(kv, ['nope']);
      expect(r.code).toBe(2);
      expect(r.err[0]).toBe('raft2pc kv: nope: unknown command');
      r = await run(kv, ['put', 'a', 'b', '--serializable']);
      expect(r.code).toBe(2);
      expect(r.err[0]).toBe('raft2pc kv put: --serializable: unknown flag');
      expect(r.err).toContain('usage: raft2pc kv put [flags] KEY VALUE');
    });
  });

  it('isEntryPoint matches the module node was asked to run, with or without its extension', () => {
    expect(isEntryPoint('file:///a/b/main.ts', '/a/b/main.ts')).toBe(true);
    expect(isEntryPoint('file:///a/b/main.js', '/a/b/main')).toBe(true);
    expect(isEntryPoint('file:///a/b/main.ts', '/a/b/other.ts')).toBe(false);
    expect(isEntryPoint('file:///a/b/main.ts', undefined)).toBe(false);
  });
});
