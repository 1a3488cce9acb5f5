/**
 * Leader election (etcd's concurrency.Election): candidates line up by
 * create revision under the election's prefix and the oldest key is the
 * leader. The leader's create revision is its term and its fencing token:
 * strictly increasing from one leader to the next, so a deposed leader's
 * fenced writes are refused by the store. `observe` follows the line with
 * one watch and yields every leader in order (and every proclaimed value).
 */
import { isRetryableStoreError, TxStoreError, type TxStore, type TxWatchEvent } from '../coordinator/txstore/index.js';
import { systemTimers, type Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';
import { Hold } from './hold.js';
import { recipeKey } from './keys.js';
import { awaitTurn, enqueue } from './line-lock.js';
import { newestOlder, readLine } from './ordered.js';
import type { Session } from './session.js';
import type { WaitOptions } from './wait.js';

export interface LeaderInfo {
  readonly key: string;
  readonly value: string;
  /** The leader key's create revision: its term and fencing token. */
  readonly revision: number;
}

/** What a campaign wins: a Hold whose value can be proclaimed while it lasts. */
export class Leadership extends Hold {
  /** Publishes a new value as the leader's, only while still leader (a fenced put on the own key). */
  async proclaim(value: string): Promise<void> {
    if (!(await this.replaceValue(value))) throw new RecipeError('not_held', `${this.key} is no longer the leader`, { key: this.key });
  }

  /** Steps down: the next candidate in line becomes leader. */
  resign(): Promise<void> {
    return this.release();
  }
}

/** Pause before re-reading after a watch broke on a transient store error. */
const RETRY_PAUSE_MS = 100;
/** Most watch restarts in one observe call. */
const MAX_RESTARTS = 100_000;

export class Election {
  readonly prefix: string;

  constructor(
    readonly session: Session,
    readonly name: string,
  ) {
    this.prefix = electionPrefix(name);
  }

  /** Waits until this candidate leads; `value` is what observers see. Throws `timeout`, `aborted` or `session_lost`. */
  async campaign(value: string, opts: WaitOptions = {}): Promise<Leadership> {
    const own = await enqueue(this.session, this.prefix, value);
    await awaitTurn(this.session, this.prefix, own, newestOlder, opts);
    return new Leadership(this.session, own);
  }

  leader(): Promise<LeaderInfo | null> {
    return currentLeader(this.session.store, this.name);
  }

  observe(signal?: AbortSignal): AsyncGenerator<LeaderInfo> {
    return observeLeaders(this.session.store, this.name, signal, this.session.timers);
  }
}

export function electionPrefix(name: string): string {
  return recipeKey('election', name);
}

/** The leader now (the oldest candidate), or null; needs no session. */
export async function currentLeader(store: TxStore, name: string): Promise<LeaderInfo | null> {
  const first = (await readLine(store, electionPrefix(name))).kvs[0];
  return first === undefined ? null : { key: first.key, value: first.value, revision: first.createRevision };
}

/** The line as a map of key to create revision and value, kept current from watch events. */
class LineView {
  private readonly keys = new Map<string, { revision: number; value: string }>();
  private last: LeaderInfo | null = null;

  reset(kvs: readonly { key: string; value: string; createRevision: number }[]): void {
    this.keys.clear();
    for (const kv of kvs) this.keys.set(kv.key, { revision: kv.createRevision, value: kv.value });
  }

  apply(e: TxWatchEvent): void {
    if (e.type === 'delete') this.keys.delete(e.key);
    else this.keys.set(e.key, { revision: this.keys.get(e.key)?.revision ?? e.revision, value: e.value ?? '' });
  }

  /** The leader if it changed (another key, or a proclaimed value) since the last call, else undefined. */
  changed(): LeaderInfo | undefined {
    let best: LeaderInfo | null = null;
    for (const [key, v] of this.keys) if (best === null || v.revision < best.revision) best = { key, value: v.value, revision: v.revision };
    if (best === null || (best.key === this.last?.key && best.value === this.last.value)) return undefined;
    this.last = best;
    return best;
  }
}

/**
 * Every leader in order (and each value it proclaims), from the current one
 * on, until `signal` aborts. One range, then one watch from the revision
 * after it, so no change between them is missed; if the watch's history was
 * compacted, the line is read again (leaders that came and went inside the
 * compacted window are then not seen).
 */
export async function* observeLeaders(store: TxStore, name: string, signal?: AbortSignal, timers: Timers = systemTimers): AsyncGenerator<LeaderInfo> {
  const prefix = electionPrefix(name);
  const view = new LineView();
  let from = 0;
  const stopped = (): boolean => signal?.aborted === true;
  for (let restart = 0; restart < MAX_RESTARTS && !stopped(); restart++) {
    if (from === 0) {
      const line = await readLine(store, prefix);
      view.reset(line.kvs);
      from = line.revision + 1;
      const now = view.changed();
      if (now !== undefined) yield now;
    }
    try {
      for await (const e of store.watch(prefix, signal === undefined ? { fromRevision: from } : { fromRevision: from, signal })) {
        view.apply(e);
        // A resume re-delivers this revision's events (harmless: applying them again changes nothing).
        from = e.revision;
        const now = view.changed();
        if (now !== undefined) yield now;
      }
      return;
    } catch (e) {
      if (stopped()) return;
      if (e instanceof TxStoreError && e.code === 'compacted') from = 0;
      else if (isRetryableStoreError(e)) await timers.sleep(RETRY_PAUSE_MS, signal);
      else throw e;
    }
  }
}
