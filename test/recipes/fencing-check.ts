/**
 * The fencing test's checker, pure: from the register's history in
 * acceptance order (the watch of its key) and what every client said of its
 * writes, it finds every stale write the store accepted.
 *
 * - Append-only: each accepted value extends the one before it. A stale
 *   holder writes a list read before a newer holder appended, so an accepted
 *   stale write drops entries: a lost update.
 * - Tokens never go back in acceptance order (the same holder appends twice
 *   with one token; holders follow each other with larger tokens).
 * - Every write a client saw accepted is in the final list; none it saw
 *   refused is; an unknown outcome may be either.
 */
export interface WriteEvent {
  readonly entry: string;
  readonly token: number;
  readonly ok: boolean | 'unknown';
}

export interface FencingReport {
  readonly violations: string[];
  readonly accepted: number;
  readonly refused: number;
  readonly unknown: number;
}

function tokenOf(entry: string): number {
  return Number(entry.split('.')[0]);
}

function isPrefix(prev: readonly string[], next: readonly string[]): boolean {
  return prev.length < next.length && prev.every((e, i) => next[i] === e);
}

export function checkFencing(history: readonly string[][], writes: readonly WriteEvent[]): FencingReport {
  const violations: string[] = [];
  for (let i = 1; i < history.length; i++) {
    const prev = history[i - 1] as string[];
    const next = history[i] as string[];
    if (!isPrefix(prev, next)) violations.push(`write #${i} is not an append: ${prev.length} entries became ${next.length} (last ${String(next[next.length - 1])})`);
  }
  const final = history[history.length - 1] ?? [];
  for (let i = 1; i < final.length; i++) {
    if (tokenOf(final[i] as string) < tokenOf(final[i - 1] as string)) violations.push(`token went back at entry ${i}: ${final[i - 1]} then ${final[i]}`);
  }
  const present = new Set(final);
  let accepted = 0;
  let refused = 0;
  let unknown = 0;
  for (const w of writes) {
    if (w.ok === true) {
      accepted++;
      if (!present.has(w.entry)) violations.push(`accepted write ${w.entry} is missing`);
    } else if (w.ok === false) {
      refused++;
      if (present.has(w.entry)) violations.push(`refused write ${w.entry} is in the register`);
    } else unknown++;
  }
  return { violations, accepted, refused, unknown };
}
