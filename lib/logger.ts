/** A one-line-per-event logger; the service prints to stderr, tests may pass their own. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>) => void;

export function stderrLogger(name: string, minLevel: LogLevel = 'info'): Logger {
  const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  return (level, message, fields) => {
    if (order[level] < order[minLevel]) return;
    const extra = fields === undefined ? '' : ` ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`;
    process.stderr.write(`${new Date().toISOString()} ${level} ${name}: ${message}${extra}\n`);
  };
}

export const silentLogger: Logger = () => {};
