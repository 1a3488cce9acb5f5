/**
 * What a contender holds once its turn came (a lock, a read or write lock, a
 * semaphore slot, leadership): its own key, and that key's create revision
 * as the FENCING TOKEN. Tokens strictly increase in the order holders get
 * their turn, because the line is ordered by create revision and each
 * revision is given once, store-wide.
 *
 * A fenced write (`fencedTxn`, `fencedPut`) is one store txn guarded by
 * `createRevision(key) == token`: the store itself refuses it once the key
 * is gone (released, or its lease expired while the holder was paused), and
 * a key created again has a new revision, so no stale holder's write can
 * land after a newer holder took over (Kleppmann 2016; etcd's
 * `Compare(CreateRevision(key), "=", rev)`).
 */
import type { TxGuard, TxLeaseId, TxWrite } from '../coordinator/txstore/index.js';
import { RecipeError } from './errors.js';
import { dropOwnKey, type OwnKey } from './ordered.js';
import type { Session } from './session.js';

export interface FencedResult {
  /** False: the guard failed, the write was refused (this holder is stale, or another guard failed). */
  readonly succeeded: boolean;
  readonly revision: number;
}

export class Hold {
  private readonly ac = new AbortController();
  private released = false;
  /** Resolves with the reason once this hold ends (session lost, or released); never rejects. */
  readonly lost: Promise<RecipeError>;

  constructor(
    readonly session: Session,
    private own: OwnKey,
  ) {
    this.lost = new Promise((resolve) => this.ac.signal.addEventListener('abort', () => resolve(this.ac.signal.reason as RecipeError), { once: true }));
    const onLost = (): void => this.ac.abort(session.signal.reason);
    if (session.signal.aborted) onLost();
    else session.signal.addEventListener('abort', onLost, { once: true });
    this.ac.signal.addEventListener('abort', () => session.signal.removeEventListener('abort', onLost), { once: true });
  }

  /** The holder's key (under the recipe's prefix). */
  get key(): string {
    return this.own.key;
  }

  /** The fencing token: the create revision of the holder's key. */
  get token(): number {
    return this.own.createRevision;
  }

  /** The value stored in the holder's key. */
  get value(): string {
    return this.own.value;
  }

  get leaseId(): TxLeaseId {
    return this.session.leaseId;
  }

  /** Aborted (with a RecipeError) as soon as this hold is known to be over: session lost, or released. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  get held(): boolean {
    return !this.ac.signal.aborted;
  }

  /** The guard every fenced write carries. */
  get guard(): TxGuard {
    return { key: this.own.key, createRevision: this.own.createRevision };
  }

  /** `writes` applied atomically only while this holder's key exists with its token (and `guards` hold). */
  async fencedTxn(guards: readonly TxGuard[], writes: readonly TxWrite[]): Promise<FencedResult> {
    const r = await this.session.store.txn([this.guard, ...guards], writes);
    return { succeeded: r.succeeded, revision: r.revision };
  }

  /** One fenced put. */
  fencedPut(key: string, value: string): Promise<FencedResult> {
    return this.fencedTxn([], [{ type: 'put', key, value }]);
  }

  /** Gives the hold up: deletes the key (only if it is still this hold's); if the store cannot, closes the session (ordered.ts `dropOwnKey`). Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (!this.ac.signal.aborted) this.ac.abort(new RecipeError('not_held', `${this.own.key} was released`, { key: this.own.key }));
    await dropOwnKey(this.session, this.own);
  }

  /** Throws unless the hold is still believed held (a cheap local check; fenced writes are the real one). */
  check(): void {
    if (this.ac.signal.aborted) throw this.ac.signal.reason as RecipeError;
  }

  /** Replaces the stored value while still the holder (leader proclaim): a guarded put on the own key. */
  async replaceValue(value: string): Promise<boolean> {
    this.check();
    const r = await this.session.store.txn([this.guard], [{ type: 'put', key: this.own.key, value, lease: this.session.leaseId }]);
    if (r.succeeded) this.own = { ...this.own, value };
    return r.succeeded;
  }
}
