/**
 * Key patterns: literal keys where a segment may be `*`, matching exactly one
 * path segment (one or more characters, no `/`), and only as a whole segment,
 * so matching is one linear regular expression (`tx/*\/decision`, never
 * `tx/a*`). Watches filter their events by them (`match`, store/api/watch.ts).
 */

/** Why `pattern` is not a key pattern, or undefined when it is one. */
export function keyPatternProblem(pattern: string, maxBytes: number): string | undefined {
  if (pattern === '') return 'a key pattern is not empty';
  if (Buffer.byteLength(pattern) > maxBytes) return `a key pattern is at most ${maxBytes} bytes`;
  return starSegmentsProblem(pattern, 'tx/*/decision');
}

/** The one rule every pattern keeps: `*` only as a whole path segment; `example` shows it in the message. */
export function starSegmentsProblem(pattern: string, example: string): string | undefined {
  return pattern.split('/').some((s) => s.includes('*') && s !== '*') ? `\`*\` must be a whole path segment (like ${example})` : undefined;
}

/** The regular expression source of a pattern: literal text, and `[^/]+` for each `*` segment. */
export function keyPatternSource(pattern: string): string {
  return pattern
    .split('/')
    .map((segment) => (segment === '*' ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
}

/** One anchored expression matching a key that matches any of `patterns`. */
export function keyPatternsRegExp(patterns: readonly string[]): RegExp {
  return new RegExp(`^(?:${patterns.map(keyPatternSource).join('|')})$`, 'u');
}
