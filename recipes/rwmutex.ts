/**
 * A read-write lock (etcd's recipes.RWMutex): one line by create revision;
 * a reader waits only for the writers queued before it, a writer for every
 * key queued before it. Readers share; a queued writer holds back the
 * readers behind it (no writer starvation). Each hold has its fencing token;
 * only a writer's token orders writes (readers may overlap).
 */
import type { TxKeyValue } from '../coordinator/txstore/index.js';
import type { Hold } from './hold.js';
import { recipeKey } from './keys.js';
import { takeTurn, tryTurn } from './line-lock.js';
import { newestOlder, type Blocker } from './ordered.js';
import type { Session } from './session.js';
import type { WaitOptions } from './wait.js';

const READ = 'read';
const WRITE = 'write';

/** A reader is blocked by the newest writer queued before it. */
const newestOlderWriter: Blocker = (older: readonly TxKeyValue[]) => [...older].reverse().find((kv) => kv.value === WRITE) ?? null;

export class RWMutex {
  readonly prefix: string;

  constructor(
    readonly session: Session,
    readonly name: string,
  ) {
    this.prefix = recipeKey('rwlock', name);
  }

  /** A shared hold: waits for the writers queued before it. */
  rLock(opts: WaitOptions = {}): Promise<Hold> {
    return takeTurn(this.session, this.prefix, READ, newestOlderWriter, opts);
  }

  /** An exclusive hold: waits for everyone queued before it. */
  lock(opts: WaitOptions = {}): Promise<Hold> {
    return takeTurn(this.session, this.prefix, WRITE, newestOlder, opts);
  }

  tryRLock(): Promise<Hold | null> {
    return tryTurn(this.session, this.prefix, READ, newestOlderWriter);
  }

  tryLock(): Promise<Hold | null> {
    return tryTurn(this.session, this.prefix, WRITE, newestOlder);
  }
}
