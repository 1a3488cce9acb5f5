/**
 * Command lines, declared once: a command names its flags (type, default,
 * limits, description) and gets them back validated and typed. node:util
 * parseArgs only splits the argument list into tokens; the checks are ours,
 * so every mistake gets the same answer: one line `raft2pc <cmd>: --flag: why`
 * and the usage on stderr, exit 2, never a stack trace. `--help` prints the
 * usage on stdout and exits 0.
 *
 * Every flag can also come from the environment, RAFT2PC_<FLAG_IN_UPPER_SNAKE>
 * (--log-level: RAFT2PC_LOG_LEVEL); a flag on the command line wins. An empty
 * variable counts as unset.
 *
 * A group (kvctl, tx) dispatches on its first positional argument to a
 * subcommand; the group's flags are accepted by every subcommand.
 *
 * `runCommand` takes the arguments, the environment and an output sink and
 * resolves to the exit code (undefined: a service that keeps running), so
 * tests run commands in-process; `runMain` wires it to the process.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type Logger } from './logger.js';

/** The program name every message and usage starts with. */
export const PROGRAM = 'raft2pc';

interface FlagCommon {
  /** One line: what the flag means, with its unit. */
  readonly description: string;
  /** Missing from both the command line and the environment: a usage error. */
  readonly required?: boolean;
  /** A one-letter alias (`-x`). */
  readonly short?: string;
  /** What the value looks like in the usage (`--data-dir DIR`); default: the type. */
  readonly placeholder?: string;
  /** Older environment variables still honoured, after RAFT2PC_...: e.g. KVCTL_ENDPOINTS. */
  readonly envAliases?: readonly string[];
}

export type FlagSpec =
  /** `parse` turns the text into the value run() gets; what it throws is the flag's usage error. */
  | (FlagCommon & { readonly type: 'string'; readonly default?: string; readonly parse?: (text: string) => unknown })
  | (FlagCommon & { readonly type: 'boolean'; readonly default?: boolean })
  | (FlagCommon & { readonly type: 'int'; readonly default?: number; readonly min?: number; readonly max?: number })
  | (FlagCommon & { readonly type: 'enum'; readonly values: readonly string[]; readonly default?: string })
  /** Comma-separated; repeating the flag appends. */
  | (FlagCommon & { readonly type: 'list'; readonly default?: readonly string[] });

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

type FlagValue<S> = S extends { type: 'string'; parse: (text: string) => infer T }
  ? T
  : S extends { type: 'int' }
  ? number
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { type: 'list' }
      ? readonly string[]
      : S extends { type: 'enum'; values: readonly (infer V)[] }
        ? V
        : string;
/** Booleans, flags with a default and required flags always have a value. */
type AlwaysSet<S> = S extends { type: 'boolean' } ? true : S extends { default: unknown } ? true : S extends { required: true } ? true : false;

/** The validated values `run` receives, keyed by flag name (`values['log-level']`). */
export type FlagValues<F extends FlagSpecs> = {
  readonly [K in keyof F]: AlwaysSet<F[K]> extends true ? FlagValue<F[K]> : FlagValue<F[K]> | undefined;
};

/** Where a command writes, and the environment it reads flags from. */
export interface CommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** One line to stdout (the newline is added). */
  out(line: string): void;
  /** One line to stderr. */
  err(line: string): void;
}

export interface CommandContext extends CommandIo {
  /** The command as invoked, for messages: `raft2pc kvctl get`. */
  readonly prog: string;
}

/** What `run` returns: an exit code, or nothing for a service that keeps running. */
export type RunResult = number | undefined | void;

export interface CommandDef<F extends FlagSpecs> {
  readonly name: string;
  /** One line, shown in `raft2pc --help` and atop the usage. */
  readonly summary: string;
  /** The positional arguments' synopsis (`KEY [VALUE]`); without it, none is accepted. */
  readonly args?: string;
  /** More usage text, after the flags. */
  readonly details?: string;
  readonly flags: F;
  readonly run: (values: FlagValues<F>, positionals: readonly string[], ctx: CommandContext) => RunResult | Promise<RunResult>;
}

/** A command with its types erased: what groups, the bin and `runCommand` hold. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly args?: string;
  readonly details?: string;
  readonly flags: FlagSpecs;
  readonly run?: (values: Readonly<Record<string, unknown>>, positionals: readonly string[], ctx: CommandContext) => RunResult | Promise<RunResult>;
  readonly subcommands?: readonly Command[];
}

export interface GroupDef {
  readonly name: string;
  readonly summary: string;
  readonly details?: string;
  /** Accepted before or after the subcommand's name, by every subcommand. */
  readonly flags?: FlagSpecs;
  readonly subcommands: readonly Command[];
}

/** A mistake on the command line: exit 2 with `prog: --flag: message` and the usage. Throw it from `run` too. */
export class UsageError extends Error {
  constructor(
    /** The flag or argument at fault, as written (`--tick-ms`, `KEY`), if there is one. */
    readonly subject: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export function defineCommand<const F extends FlagSpecs>(def: CommandDef<F>): Command {
  for (const name of Object.keys(def.flags)) assertFlagName(def.name, name);
  return def as unknown as Command;
}

export function defineGroup(def: GroupDef): Command {
  for (const name of Object.keys(def.flags ?? {})) assertFlagName(def.name, name);
  return { name: def.name, summary: def.summary, flags: def.flags ?? {}, subcommands: def.subcommands, ...(def.details === undefined ? {} : { details: def.details }) };
}

function assertFlagName(command: string, name: string): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || name === 'help') throw new Error(`command ${command}: flag name "${name}" is reserved or not kebab-case`);
}

/** The environment variable a flag reads: --log-level -> RAFT2PC_LOG_LEVEL. */
export function envName(flag: string): string {
  return `RAFT2PC_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Every variable a flag reads, in order of precedence. */
function envNames(flag: string, spec: FlagSpec): string[] {
  return [envName(flag), ...(spec.envAliases ?? [])];
}

/**
 * Runs `command` on `argv` (the arguments after the command's name). Resolves
 * to the exit code: 0 after --help, 2 after a usage error, 1 when `run`
 * threw, else what `run` returned (undefined: a service, still running).
 */
export async function runCommand(command: Command, argv: readonly string[], io: CommandIo, prog = `${PROGRAM} ${command.name}`): Promise<number | undefined> {
  const ctx: CommandContext = { ...io, prog };
  if (command.subcommands !== undefined) return runGroup(command, argv, ctx);
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(command.flags, argv, io.env, command.args !== undefined);
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(command, ctx, e);
    throw e;
  }
  if (parsed.help) return printHelp(command, ctx);
  if (command.run === undefined) throw new Error(`command ${command.name} has neither run nor subcommands`);
  try {
    const code = await command.run(parsed.values, parsed.positionals, ctx);
    return code ?? undefined;
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(command, ctx, e);
    io.err(`${prog}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

async function runGroup(group: Command, argv: readonly string[], ctx: CommandContext): Promise<number | undefined> {
  const subs = group.subcommands ?? [];
  // Any subcommand's flag may come before its name (`kvctl --prefix p range`): tokenize with all of them.
  const known: FlagSpecs = Object.assign({}, ...subs.map((s) => s.flags), group.flags) as FlagSpecs;
  const tokens = tokenize(known, argv);
  const first = tokens.find((t) => t.kind === 'positional');
  const before = tokens.filter((t) => first === undefined || t.index < first.index);
  if (before.some((t) => t.kind === 'option' && t.name === 'help')) return printHelp(group, ctx);
  const unknown = before.find((t) => t.kind === 'option' && known[t.name] === undefined);
  if (unknown?.kind === 'option') return usageFailure(group, ctx, new UsageError(unknown.rawName, 'unknown flag'));
  if (first?.kind !== 'positional') return usageFailure(group, ctx, new UsageError(undefined, `which command? one of ${subs.map((s) => s.name).join(', ')}`));
  const sub = subs.find((s) => s.name === first.value);
  if (sub === undefined) return usageFailure(group, ctx, new UsageError(first.value, 'unknown command'));
  const rest = argv.filter((_a, i) => i !== first.index);
  // The group's flags are the subcommand's too; a subcommand's own declaration wins.
  return runCommand({ ...sub, flags: { ...group.flags, ...sub.flags } }, rest, ctx, `${ctx.prog} ${sub.name}`);
}

function printHelp(command: Command, ctx: CommandContext): number {
  for (const line of usageLines(command, ctx.prog)) ctx.out(line);
  return 0;
}

function usageFailure(command: Command, ctx: CommandContext, e: UsageError): number {
  ctx.err(`${ctx.prog}: ${e.subject === undefined ? '' : `${e.subject}: `}${e.message}`);
  for (const line of usageLines(command, ctx.prog)) ctx.err(line);
  return 2;
}

interface Parsed {
  readonly help: boolean;
  readonly values: Readonly<Record<string, unknown>>;
  readonly positionals: readonly string[];
}

type Token = ReturnType<typeof parseArgs>['tokens'] extends (infer T)[] | undefined ? T : never;

/** parseArgs as a tokenizer only (strict off): the checks below give one kind of message. */
function tokenize(flags: FlagSpecs, argv: readonly string[]): Token[] {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string', ...(spec.short === undefined ? {} : { short: spec.short }) };
  }
  return parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true }).tokens ?? [];
}

/** Validates the command line against `flags`, then fills the rest from the environment and the defaults. */
function parseCommandLine(flags: FlagSpecs, argv: readonly string[], env: CommandIo['env'], allowPositionals: boolean): Parsed {
  const tokens = tokenize(flags, argv);
  // --help anywhere wins: whoever asks for help gets it, mistakes and all.
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { help: true, values: {}, positionals: [] };
  const given = new Map<string, unknown>();
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      if (!allowPositionals) throw new UsageError(t.value, 'unexpected argument');
      positionals.push(t.value);
      continue;
    }
    const spec = flags[t.name];
    if (spec === undefined) throw new UsageError(t.rawName, 'unknown flag');
    const label = `--${t.name}`;
    if (spec.type !== 'boolean' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('--')))) throw new UsageError(label, `needs a value (${placeholderOf(spec)})`);
    const value = spec.type === 'boolean' && t.value === undefined ? true : convert(spec, t.value as string, label);
    given.set(t.name, spec.type === 'list' && given.has(t.name) ? [...(given.get(t.name) as string[]), ...(value as string[])] : value);
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(flags)) {
    const value = given.has(name) ? given.get(name) : fromEnv(name, spec, env);
    if (spec.type === 'list' && spec.required === true && Array.isArray(value) && value.length === 0) throw new UsageError(`--${name}`, 'names nothing (it is required)');
    if (value !== undefined) values[name] = value;
    else if (spec.default !== undefined) values[name] = spec.type === 'string' ? convert(spec, spec.default, `--${name}`) : spec.default;
    else if (spec.type === 'boolean') values[name] = false;
    else if (spec.required === true) throw new UsageError(`--${name}`, `required (or set ${envNames(name, spec).join(' or ')})`);
  }
  return { help: false, values, positionals };
}

function fromEnv(name: string, spec: FlagSpec, env: CommandIo['env']): unknown {
  for (const variable of envNames(name, spec)) {
    const text = env[variable];
    if (text !== undefined && text !== '') return convert(spec, text, `--${name}`, variable);
  }
  return undefined;
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

/** One value, as text, to its flag's type; `variable` names the environment variable it came from. */
function convert(spec: FlagSpec, text: string, label: string, variable?: string): unknown {
  const bad = (why: string): never => {
    throw new UsageError(label, `${variable === undefined ? '' : `${variable}=`}${JSON.stringify(text)} ${why}`);
  };
  switch (spec.type) {
    case 'string':
      if (spec.parse === undefined) return text;
      try {
        return spec.parse(text);
      } catch (e) {
        throw new UsageError(label, `${variable === undefined ? '' : `${variable}: `}${e instanceof Error ? e.message : String(e)}`);
      }
    case 'boolean': {
      const word = text.toLowerCase();
      if (TRUE_WORDS.includes(word)) return true;
      if (FALSE_WORDS.includes(word)) return false;
      return bad('is not true or false');
    }
    case 'int': {
      const n = Number(text);
      if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) return bad('is not an integer');
      if (spec.min !== undefined && n < spec.min) return bad(`is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) return bad(`is above the maximum ${spec.max}`);
      return n;
    }
    case 'enum':
      return spec.values.includes(text) ? text : bad(`is not one of ${spec.values.join(', ')}`);
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
  }
}

function placeholderOf(spec: FlagSpec): string {
  if (spec.placeholder !== undefined) return spec.placeholder;
  if (spec.type === 'enum') return spec.values.join('|');
  if (spec.type === 'list') return 'A,B,...';
  return spec.type;
}

function describeDefault(spec: FlagSpec): string | undefined {
  if (spec.default === undefined) return spec.required === true ? 'required' : undefined;
  return `default ${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)}`;
}

function flagLines(name: string, spec: FlagSpec): string[] {
  const head = `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}${spec.type === 'boolean' ? '' : ` <${placeholderOf(spec)}>`}`;
  const limits = spec.type === 'int' && (spec.min !== undefined || spec.max !== undefined) ? `${spec.min ?? ''}..${spec.max ?? ''}` : undefined;
  const facts = [spec.type, describeDefault(spec), limits, `env ${envNames(name, spec).join(', ')}`].filter((f) => f !== undefined);
  return [`  ${head}  (${facts.join('; ')})`, `        ${spec.description}`];
}

/** The usage text, as lines. */
export function usageLines(command: Command, prog = `${PROGRAM} ${command.name}`): string[] {
  const subs = command.subcommands;
  const synopsis = subs !== undefined ? `${prog} <command> [flags]` : `${prog} [flags]${command.args === undefined ? '' : ` ${command.args}`}`;
  const lines = [`${prog}: ${command.summary}`, '', `usage: ${synopsis}`];
  if (subs !== undefined) {
    lines.push('', 'commands:');
    const width = Math.max(...subs.map((s) => s.name.length));
    for (const s of subs) lines.push(`  ${s.name.padEnd(width)}  ${s.summary}`);
  }
  lines.push('', subs !== undefined && Object.keys(command.flags).length > 0 ? 'flags (every command):' : 'flags:');
  for (const [name, spec] of Object.entries(command.flags)) lines.push(...flagLines(name, spec));
  lines.push('  -h, --help  print this help and exit');
  if (subs !== undefined) lines.push('', `${prog} <command> --help says more about one command.`);
  if (command.details !== undefined) lines.push('', ...command.details.split('\n'));
  return lines;
}

/** The process's own environment and streams. */
export function processIo(): CommandIo {
  return {
    env: process.env,
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
  };
}

/**
 * Runs `command` as this process: arguments from process.argv, flags from
 * process.env. A finished command exits with its code (after stdout drains);
 * a service that started keeps the process running.
 */
export function runMain(command: Command, argv: readonly string[] = process.argv.slice(2), prog?: string): void {
  runCommand(command, argv, processIo(), prog).then(
    (code) => {
      if (code !== undefined) process.stdout.write('', () => process.exit(code));
    },
    (e: unknown) => {
      // A bug in the framework itself: keep the stack.
      process.stderr.write(`${PROGRAM}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}

/**
 * True when the module at `moduleUrl` (its import.meta.url) is the one node
 * was asked to run: `node --import tsx store/node/main.ts` or
 * `node dist/store/node/main.js`, not when the bin imported it.
 */
export function isEntryPoint(moduleUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  if (argv1 === undefined) return false;
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const self = real(fileURLToPath(moduleUrl));
  const entry = real(resolve(argv1));
  // node also runs `node dist/bin/raft2pc` (no extension) as raft2pc.js.
  return self === entry || self.replace(/\.[cm]?[jt]s$/, '') === entry;
}

/** The logging flags every service takes. */
export const LOG_FLAGS = {
  'log-level': { type: 'enum', values: LOG_LEVELS, default: 'info', description: 'the least severe level logged' },
  'log-format': { type: 'enum', values: LOG_FORMATS, default: 'json', description: 'json: one object a line, for a collector; pretty: for a terminal' },
} as const satisfies FlagSpecs;

/** The logger a service's flags ask for; `fields` go on every line (node id, participant name). */
export function serviceLogger(values: FlagValues<typeof LOG_FLAGS>, component: string, fields: Readonly<Record<string, unknown>> = {}): Logger {
  return createLogger({ component, level: values['log-level'], format: values['log-format'], fields });
}
