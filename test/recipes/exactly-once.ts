/**
 * The queue and counter workload of fencing.test.ts, in process over HTTP:
 * producers put numbered items, consumers take them, every worker
 * increments the counter, while the nemesis kills and pauses store nodes.
 * `checkExactlyOnce` is the pure check: every item put was taken exactly
 * once, and the counter equals the acknowledged increments (plus at most
 * the increments whose outcome was reported unknown).
 */
import type { TxStore } from '../../coordinator/txstore/index.js';
import { Counter, isRecipeError, Queue, Session } from '../../recipes/index.js';

export interface QueueRun {
  readonly put: string[];
  /** Items whose put failed: they may or may not be in the queue. */
  readonly maybe: string[];
  readonly taken: string[];
  readonly increments: { acked: number; unknown: number };
  readonly errors: string[];
}

const TAKE_WAIT_MS = 2_000;
const MAX_ERRORS = 1_000;

async function session(store: TxStore, old: Session | undefined): Promise<Session> {
  if (old !== undefined && !old.isLost) return old;
  await old?.close();
  return Session.open({ store, ttlMs: 3_000 });
}

/** Puts `count` items named `{who}-{i}`, each followed by an increment; an item whose put failed is recorded as maybe-put. */
export async function produce(store: TxStore, name: string, who: string, count: number, run: QueueRun, counter: Counter): Promise<void> {
  let s: Session | undefined;
  for (let i = 0; i < count && run.errors.length < MAX_ERRORS; i++) {
    const item = `${who}-${i}`;
    try {
      s = await session(store, s);
      await new Queue(s, name).put(item);
      run.put.push(item);
    } catch (e) {
      run.errors.push(`put ${item}: ${String(e)}`);
      run.maybe.push(item);
    }
    await increment(counter, run);
  }
  await s?.close();
}

async function increment(counter: Counter, run: QueueRun): Promise<void> {
  try {
    await counter.increment();
    run.increments.acked++;
  } catch (e) {
    // Counted as maybe applied: that only widens the range the check accepts.
    run.increments.unknown++;
    run.errors.push(`increment: ${String(e)}`);
  }
}

/** Takes items until `done()` and the queue is empty. */
export async function consume(store: TxStore, name: string, run: QueueRun, done: () => boolean, counter: Counter): Promise<void> {
  let s: Session | undefined;
  for (let round = 0; round < 100_000 && run.errors.length < MAX_ERRORS; round++) {
    try {
      s = await session(store, s);
      const item = await new Queue(s, name).take({ timeoutMs: TAKE_WAIT_MS });
      run.taken.push(item.data);
      await increment(counter, run);
    } catch (e) {
      if (isRecipeError(e, 'timeout') && done()) break;
      if (!isRecipeError(e, 'timeout')) run.errors.push(`take: ${String(e)}`);
    }
  }
  await s?.close();
}

export function checkExactlyOnce(run: QueueRun, counterValue: number): string[] {
  const violations: string[] = [];
  const taken = new Map<string, number>();
  for (const t of run.taken) taken.set(t, (taken.get(t) ?? 0) + 1);
  for (const [item, n] of taken) if (n > 1) violations.push(`${item} taken ${n} times`);
  for (const item of run.put) if (!taken.has(item)) violations.push(`${item} was put but never taken`);
  const known = new Set([...run.put, ...run.maybe]);
  for (const item of taken.keys()) if (!known.has(item)) violations.push(`${item} was taken but never put`);
  const { acked, unknown } = run.increments;
  if (counterValue < acked || counterValue > acked + unknown) violations.push(`counter is ${counterValue}, acknowledged ${acked} (+${unknown} unknown)`);
  return violations;
}
