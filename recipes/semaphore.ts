/**
 * A counting semaphore: at most `permits` holders at once, served in the
 * order they queued (by create revision). A contender holds a permit when
 * fewer than `permits` keys were queued before it. Any holder's release can
 * free a permit, so a waiter watches the whole line for deletes (the line
 * is short; a release wakes the waiters, each reads the line once).
 *
 * Every user of one semaphore name must pass the same `permits`: each key
 * holds its count, and a contender that finds another count queued before
 * it fails (`invalid_value`) instead of letting more holders in.
 */
import { RecipeError } from './errors.js';
import type { Hold } from './hold.js';
import { recipeKey } from './keys.js';
import { takeTurn, tryTurn } from './line-lock.js';
import type { Blocker } from './ordered.js';
import type { Session } from './session.js';
import type { WaitOptions } from './wait.js';

/** Most permits: the line of holders is read in one range. */
const MAX_PERMITS = 1_000;

export class Semaphore {
  readonly prefix: string;
  private readonly blocker: Blocker;

  constructor(
    readonly session: Session,
    readonly name: string,
    readonly permits: number,
  ) {
    if (!Number.isSafeInteger(permits) || permits < 1 || permits > MAX_PERMITS) throw new RecipeError('invalid_value', `permits must be 1 to ${MAX_PERMITS}, got ${permits}`);
    this.prefix = recipeKey('semaphore', name);
    const mine = String(permits);
    this.blocker = (older) => {
      // The count is in every key: a contender that disagrees would break the bound for everyone.
      const other = older.find((kv) => kv.value !== mine);
      if (other !== undefined) throw new RecipeError('invalid_value', `${name} is used with ${other.value} permits, not ${permits}`, { name });
      return older.length < permits ? null : 'any';
    };
  }

  /** Waits for a permit (FIFO). The Hold's token orders holders; release gives the permit back. */
  acquire(opts: WaitOptions = {}): Promise<Hold> {
    return takeTurn(this.session, this.prefix, String(this.permits), this.blocker, opts);
  }

  /** A permit if one is free now, else null. */
  tryAcquire(): Promise<Hold | null> {
    return tryTurn(this.session, this.prefix, String(this.permits), this.blocker);
  }
}
