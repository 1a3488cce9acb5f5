/**
 * A distributed mutex (etcd's concurrency.Mutex, made safe where it is
 * weak): FIFO by create revision, each waiter watching only its predecessor;
 * `tryLock` that never waits (etcd #10493); a timeout and an AbortSignal;
 * the wait fails as soon as the session is lost (etcd #19597); ownership
 * re-checked after the wait (etcd #11408); and a `Hold` with a fencing token,
 * a `lost` signal (etcd #6127) and fenced writes the store refuses once the
 * holder is stale.
 */
import { RecipeError } from './errors.js';
import type { Hold } from './hold.js';
import { recipeKey } from './keys.js';
import { takeTurn, tryTurn } from './line-lock.js';
import { newestOlder, readLine } from './ordered.js';
import type { Session } from './session.js';
import type { WaitOptions } from './wait.js';

export class Mutex {
  /** Every contender's key lives under this prefix; the oldest one holds the lock. */
  readonly prefix: string;
  private current: Hold | undefined;

  constructor(
    readonly session: Session,
    readonly name: string,
  ) {
    this.prefix = recipeKey('lock', name);
  }

  /** Waits for the lock (FIFO). Throws RecipeError `timeout`, `aborted` or `session_lost`; the queued key is removed then. */
  async lock(opts: WaitOptions = {}): Promise<Hold> {
    this.checkFree();
    return this.keep(await takeTurn(this.session, this.prefix, this.session.nonce(), newestOlder, opts));
  }

  /** The lock if it is free now, else null (and nothing left queued). */
  async tryLock(): Promise<Hold | null> {
    this.checkFree();
    const h = await tryTurn(this.session, this.prefix, this.session.nonce(), newestOlder);
    return h === null ? null : this.keep(h);
  }

  /** Releases the lock this object holds, if any. */
  async unlock(): Promise<void> {
    const h = this.current;
    this.current = undefined;
    await h?.release();
  }

  /** The hold this object took last, while it lasts. */
  get hold(): Hold | undefined {
    return this.current?.held === true ? this.current : undefined;
  }

  /** Who holds the lock now (the oldest key), or null. */
  async holder(): Promise<{ key: string; token: number; value: string } | null> {
    const first = (await readLine(this.session.store, this.prefix)).kvs[0];
    return first === undefined ? null : { key: first.key, token: first.createRevision, value: first.value };
  }

  private checkFree(): void {
    if (this.current?.held === true) throw new RecipeError('locked', `this Mutex object already holds ${this.name}; use another for another holder`, { name: this.name });
  }

  private keep(h: Hold): Hold {
    this.current = h;
    return h;
  }
}
