/**
 * Structured logs on pino: one JSON object per line on stderr with `level`
 * (a label), `time` (ISO 8601), `component`, the logger's base fields (node
 * id, participant name) and the call's fields (`txId` where there is one);
 * an Error anywhere in the fields keeps its message and stack. `pretty`
 * renders the same records for a terminal, in-process.
 *
 * Call sites see only `Logger`, a plain function, so a test or an embedding
 * service can pass its own (or `silentLogger`) without knowing pino.
 */
import pino from 'pino';
import PinoPretty from 'pino-pretty';

type DestinationStream = pino.DestinationStream;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type Logger = (level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>) => void;

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

export function isLogFormat(value: unknown): value is LogFormat {
  return typeof value === 'string' && (LOG_FORMATS as readonly string[]).includes(value);
}

export interface LoggerOptions {
  /** What is logging: `store`, `coordinator`, `participant`, `bank`, `app`. */
  readonly component: string;
  /** The lowest level written; default `info`. */
  readonly level?: LogLevel;
  /** Default `json`. */
  readonly format?: LogFormat;
  /** Fields on every line, e.g. `{ node: 'n1' }` or `{ participant: 'bank-a' }`. */
  readonly fields?: Readonly<Record<string, unknown>>;
  /** A stream or a file descriptor; default stderr (fd 2), written synchronously. */
  readonly destination?: NodeJS.WritableStream | number;
}

export function createLogger(opts: LoggerOptions): Logger {
  const pretty = (opts.format ?? 'json') === 'pretty';
  const target = opts.destination ?? 2;
  const base = { component: opts.component, pid: process.pid, ...serializeErrors(opts.fields ?? {}) };
  const stream: DestinationStream = pretty ? prettyStream(target) : jsonStream(target);
  const logger: pino.Logger = pino(
    {
      level: opts.level ?? 'info',
      base,
      // pino-pretty reads the numeric level and epoch time; JSON readers want the label and a date.
      ...(pretty ? {} : { timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label: string) => ({ level: label }) } }),
    },
    stream,
  );
  return (level, message, fields) => {
    if (!logger.isLevelEnabled(level)) return;
    if (fields === undefined) logger[level](message);
    else logger[level](serializeErrors(fields), message);
  };
}

/** `log` with `fields` on every line (the call's own fields win): e.g. a host hands its participant `withFields(log, { participant })`. */
export function withFields(log: Logger, fields: Readonly<Record<string, unknown>>): Logger {
  return (level, message, more) => log(level, message, more === undefined ? fields : { ...fields, ...more });
}

/** A component's logger on stderr, as JSON lines; kept for call sites written before `createLogger`. */
export function stderrLogger(name: string, minLevel: LogLevel = 'info'): Logger {
  return createLogger({ component: name, level: minLevel });
}

export const silentLogger: Logger = () => {};

/** Synchronous, so a line written just before a crash (or `process.exit`) is not lost in a buffer. */
function jsonStream(target: NodeJS.WritableStream | number): DestinationStream {
  if (typeof target !== 'number') return target as DestinationStream;
  if (target === 2) return (sharedStderr ??= pino.destination({ fd: 2, sync: true }));
  return pino.destination({ fd: target, sync: true });
}
let sharedStderr: DestinationStream | undefined;

/** pino-pretty called directly (not as a transport) runs in this thread, and `sync` writes at once. */
function prettyStream(target: NodeJS.WritableStream | number): DestinationStream {
  const common = { sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,component', messageFormat: '{component}: {msg}' };
  if (typeof target === 'number') return PinoPretty({ ...common, destination: target, colorize: target === 2 && process.stderr.isTTY });
  return PinoPretty({ ...common, destination: target, colorize: false });
}

/** How deep the fields are searched for Errors; deeper ones are left to JSON (message and stack lost). */
const MAX_ERROR_DEPTH = 4;

/**
 * Replaces every Error in `fields` (at any key, in arrays and plain objects)
 * by pino's err serializer output (type, message, stack, causes, own
 * fields), because JSON.stringify turns an Error into `{}`. Returns the
 * input itself when it holds no Error, the common case.
 */
export function serializeErrors(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return walk(fields, 0) as Record<string, unknown>;
}

function walk(value: unknown, depth: number): unknown {
  if (value instanceof Error) return pino.stdSerializers.err(value);
  if (depth >= MAX_ERROR_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out = value.map((v) => walk(v, depth + 1));
    return out.some((v, i) => v !== value[i]) ? out : value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const w = walk(v, depth + 1);
    if (w !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = w;
  }
  return out ?? value;
}
