/** Minimal `--flag value` / `--flag` parsing for the project's command-line tools. */
import { parseArgs } from 'node:util';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;

export function parseFlags<T extends FlagSpec>(spec: T, argv = process.argv.slice(2)): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const { values, positionals } = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
  return { values: values as Record<string, string | boolean | undefined>, positionals };
}

export function intFlag(values: Record<string, string | boolean | undefined>, name: string, fallback: number): number {
  const v = values[name];
  if (v === undefined || typeof v === 'boolean') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got ${v}`);
  return n;
}

export function stringFlag(values: Record<string, string | boolean | undefined>, name: string, fallback?: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : fallback;
}
