/**
 * The two ways recipes wait on the store: for one event (a delete of a
 * predecessor, a put of a ready key, a new queue item), and following a
 * whole prefix as snapshots (group members, a config tree). Both start from
 * a revision read beforehand, so nothing that happens between the read and
 * the watch is missed; after compaction or a broken stream the caller reads
 * again, which is always safe.
 */
import { isRetryableStoreError, TxStoreError, type TxKeyValue, type TxStore, type TxWatchEvent } from '../coordinator/txstore/index.js';
import type { Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';
import type { WaitScope } from './wait.js';

/** Most keys under one prefix: it is read in one range (one revision) and must fit a page. */
export const MAX_LINE_KEYS = 10_000;
/** Pause before reading again after a watch failed on a transient store error. */
const RETRY_PAUSE_MS = 100;
/** Most restarts of one follow (each after a failure or a compaction). */
const MAX_RESTARTS = 100_000;

/**
 * Returns after the first event under `prefix` from `fromRevision` on that
 * `match` accepts, or when the watch ends or fails (the caller re-reads, then
 * calls again), or when the scope ends (the caller checks it).
 */
export async function waitForEvent(store: TxStore, timers: Timers, prefix: string, fromRevision: number, match: (e: TxWatchEvent) => boolean, scope: WaitScope): Promise<void> {
  try {
    for await (const e of store.watch(prefix, { fromRevision, signal: scope.signal })) if (match(e)) return;
  } catch (e) {
    if (scope.signal.aborted) return;
    if (e instanceof TxStoreError && e.code === 'compacted') return;
    if (!isRetryableStoreError(e)) throw e;
    await timers.sleep(RETRY_PAUSE_MS, scope.signal);
  }
}

/** The line under `prefix` at one revision, oldest first. */
export async function readLine(store: TxStore, prefix: string): Promise<{ kvs: TxKeyValue[]; revision: number }> {
  const r = await store.range(prefix, { limit: MAX_LINE_KEYS });
  if (r.more) throw new RecipeError('limit_exceeded', `more than ${MAX_LINE_KEYS} keys under ${prefix}`, { prefix });
  return { kvs: [...r.kvs].sort((a, b) => a.createRevision - b.createRevision), revision: r.revision };
}

export interface PrefixEntry {
  readonly value: string;
  readonly createRevision: number;
}

/** Every key under a prefix at one revision, by key. */
export interface PrefixSnapshot {
  readonly entries: ReadonlyMap<string, PrefixEntry>;
  readonly revision: number;
}

/**
 * The keys under `prefix` now, then again after every change, until `signal`
 * aborts: one range, one watch from the revision after it, snapshots kept
 * current from the events. A txn's events share a revision: one snapshot is
 * yielded per event, so a txn may show in steps.
 */
export async function* followPrefix(store: TxStore, prefix: string, timers: Timers, signal?: AbortSignal): AsyncGenerator<PrefixSnapshot> {
  const entries = new Map<string, PrefixEntry>();
  const stopped = (): boolean => signal?.aborted === true;
  let from = 0;
  for (let restart = 0; restart < MAX_RESTARTS && !stopped(); restart++) {
    if (from === 0) {
      const line = await readLine(store, prefix);
      entries.clear();
      for (const kv of line.kvs) entries.set(kv.key, { value: kv.value, createRevision: kv.createRevision });
      from = line.revision + 1;
      yield { entries: new Map(entries), revision: line.revision };
    }
    try {
      for await (const e of store.watch(prefix, signal === undefined ? { fromRevision: from } : { fromRevision: from, signal })) {
        if (e.type === 'delete') entries.delete(e.key);
        else entries.set(e.key, { value: e.value ?? '', createRevision: entries.get(e.key)?.createRevision ?? e.revision });
        from = e.revision + 1;
        yield { entries: new Map(entries), revision: e.revision };
      }
      return;
    } catch (e) {
      if (stopped()) return;
      // A resume could split a txn's events: read the whole prefix again instead.
      if ((e instanceof TxStoreError && e.code === 'compacted') || isRetryableStoreError(e)) from = 0;
      else throw e;
      await timers.sleep(RETRY_PAUSE_MS, signal);
    }
  }
}
