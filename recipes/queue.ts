/**
 * A distributed queue: FIFO by create revision, or by priority first (a
 * smaller `priority` is taken first; FIFO within one priority). Items are
 * durable keys (no lease: an item outlives its producer); a take is one txn
 * that deletes the item (guarded by its create revision, so two takers can
 * never both get it) and writes a claim under the taker's session lease.
 *
 * Exactly once. A put is a create of a key that holds a nonce: repeating it
 * after an ambiguous failure cannot add a second item. A take that failed
 * ambiguously is settled by the claim: present, the item is ours; item gone
 * and no claim, another taker has it; item still there, the same txn is
 * sent again (whichever of the two copies applies first wins, the other
 * fails its guard). Only when that cannot settle it does `take` throw
 * `outcome_unknown`, naming the item.
 */
import { isRetryableStoreError, type TxKeyValue } from '../coordinator/txstore/index.js';
import { RecipeError } from './errors.js';
import { recipeKey } from './keys.js';
import { readLine } from './ordered.js';
import type { Session } from './session.js';
import { withWait, type WaitOptions, type WaitScope } from './wait.js';
import { waitForEvent } from './watching.js';

/** Attempts of one put or one claim after ambiguous failures. */
const MAX_ATTEMPTS = 5;
/** Most reads of the queue in one take (each after a change or a lost race). */
const MAX_ROUNDS = 100_000;

export interface QueueItem {
  readonly data: string;
  readonly priority: number;
  /** The item key's create revision: its place in the queue. */
  readonly revision: number;
}

interface Stored {
  readonly p: number;
  readonly d: string;
}

function order(a: TxKeyValue, b: TxKeyValue): number {
  return (JSON.parse(a.value) as Stored).p - (JSON.parse(b.value) as Stored).p || a.createRevision - b.createRevision;
}

export class Queue {
  readonly prefix: string;
  private readonly items: string;
  private readonly claims: string;

  constructor(
    readonly session: Session,
    readonly name: string,
  ) {
    this.prefix = recipeKey('queue', name);
    this.items = `${this.prefix}items/`;
    this.claims = `${this.prefix}claims/`;
  }

  /** Adds an item (durably, exactly once). */
  async put(data: string, priority = 0): Promise<void> {
    if (!Number.isSafeInteger(priority)) throw new RecipeError('invalid_value', `priority must be an integer, got ${priority}`);
    const nonce = this.session.nonce();
    const key = `${this.items}${nonce}`;
    const value = JSON.stringify({ p: priority, d: data, n: nonce });
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.session.store.casCreate(key, value);
        if (r.succeeded || r.previous === value) return;
        throw new RecipeError('outcome_unknown', `${key} holds another value`, { key });
      } catch (e) {
        if (!isRetryableStoreError(e) || attempt >= MAX_ATTEMPTS) throw e;
      }
    }
  }

  /** Items waiting, in the order they would be taken. */
  async list(): Promise<QueueItem[]> {
    const line = await readLine(this.session.store, this.items);
    return line.kvs.sort(order).map(toItem);
  }

  /** Takes the first item, waiting for one (timeout, abort, session loss end the wait). */
  take(opts: WaitOptions = {}): Promise<QueueItem> {
    return withWait(this.session.timers, opts, this.session.signal, (scope) => this.takeIn(scope, true)) as Promise<QueueItem>;
  }

  /** Takes the first item if there is one, else null. */
  tryTake(): Promise<QueueItem | null> {
    return withWait(this.session.timers, {}, this.session.signal, (scope) => this.takeIn(scope, false));
  }

  private async takeIn(scope: WaitScope, wait: boolean): Promise<QueueItem | null> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      scope.check();
      const line = await readLine(this.session.store, this.items);
      const sorted = line.kvs.sort(order);
      for (const kv of sorted) if (await this.claim(kv)) return toItem(kv);
      if (sorted.length === 0 && !wait) return null;
      if (sorted.length === 0) await waitForEvent(this.session.store, this.session.timers, this.items, line.revision + 1, (e) => e.type === 'put', scope);
    }
    throw new RecipeError('limit_exceeded', `${this.items}: ${MAX_ROUNDS} rounds in one take`);
  }

  /** Takes `kv` for this session, exactly once: true if it is ours. */
  private async claim(kv: TxKeyValue): Promise<boolean> {
    const store = this.session.store;
    const nonce = this.session.nonce();
    const claimKey = `${this.claims}${nonce}`;
    const writes = [{ type: 'delete' as const, key: kv.key }, { type: 'put' as const, key: claimKey, value: kv.key, lease: this.session.leaseId }];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      let failed = false;
      try {
        if ((await store.txn([{ key: kv.key, createRevision: kv.createRevision }], writes)).succeeded) return this.done(claimKey);
        failed = true;
      } catch (e) {
        if (!isRetryableStoreError(e)) throw e;
      }
      // Read the item first: once it is gone, no copy of our txn can apply any more.
      const item = await store.get(kv.key).catch(() => undefined);
      const claimed = await store.get(claimKey).catch(() => undefined);
      if (claimed?.value === kv.key) return this.done(claimKey);
      if ((failed || item === null) && claimed === null) {
        this.session.check(); // a lost session would have taken our claim with it
        return false;
      }
    }
    throw new RecipeError('outcome_unknown', `could not tell whether ${kv.key} was taken`, { key: kv.key, claim: claimKey });
  }

  /** The claim has served: remove it (best effort; it goes with the session anyway). */
  private async done(claimKey: string): Promise<true> {
    await this.session.store.delete(claimKey).catch(() => undefined);
    return true;
  }
}

function toItem(kv: TxKeyValue): QueueItem {
  const v = JSON.parse(kv.value) as Stored;
  return { data: v.d, priority: v.p, revision: kv.createRevision };
}
