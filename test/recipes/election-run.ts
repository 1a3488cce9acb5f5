/**
 * The election workload of fencing.test.ts, in process over HTTP: candidates
 * campaign, write their token under the fence, hold briefly and resign,
 * over and over, while observers follow the election. `checkElection` is the
 * pure check: every observer saw leaders in strictly increasing revision
 * order and missed none that won (a campaign returns only once its key was
 * the oldest at some revision, so every observer must have seen it), and no
 * two winners share a revision.
 */
import type { TxStore } from '../../coordinator/txstore/index.js';
import { Election, isRecipeError, observeLeaders, Session } from '../../recipes/index.js';
import { systemTimers } from '../../lib/timers.js';

export interface ElectionRun {
  /** Revisions of every won campaign. */
  readonly won: number[];
  /** Per observer, the leader revisions in the order seen (a proclaim repeats none: values do not change here). */
  readonly observed: number[][];
  refusedFencedWrites: number;
  readonly errors: string[];
}

const MAX_ROUNDS = 10_000;

export async function candidate(store: TxStore, name: string, who: string, deadline: number, run: ElectionRun): Promise<void> {
  let s: Session | undefined;
  for (let round = 0; round < MAX_ROUNDS && Date.now() < deadline; round++) {
    try {
      if (s === undefined || s.isLost) {
        await s?.close();
        s = await Session.open({ store, ttlMs: 2_000 });
      }
      const lead = await new Election(s, name).campaign(who, { timeoutMs: 3_000 });
      run.won.push(lead.token);
      if (!(await lead.fencedPut(`${name}-register`, String(lead.token))).succeeded) run.refusedFencedWrites++;
      await systemTimers.sleep(50);
      await lead.resign();
    } catch (e) {
      if (!isRecipeError(e, 'timeout')) run.errors.push(`${who}: ${String(e)}`);
    }
  }
  await s?.close();
}

export async function observer(store: TxStore, name: string, signal: AbortSignal, into: number[]): Promise<void> {
  for await (const l of observeLeaders(store, name, signal)) into.push(l.revision);
}

export function checkElection(run: ElectionRun): string[] {
  const violations: string[] = [];
  if (new Set(run.won).size !== run.won.length) violations.push('two campaigns won with the same revision');
  run.observed.forEach((seen, i) => {
    for (let j = 1; j < seen.length; j++) if ((seen[j] as number) <= (seen[j - 1] as number)) violations.push(`observer ${i}: leader ${seen[j]} after ${seen[j - 1]}`);
    const set = new Set(seen);
    const first = seen[0] ?? Infinity;
    for (const w of run.won) if (w >= first && !set.has(w)) violations.push(`observer ${i} missed leader ${w}`);
  });
  return violations;
}
