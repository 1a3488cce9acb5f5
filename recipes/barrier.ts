/**
 * Barriers (etcd's recipes.Barrier and DoubleBarrier, ZooKeeper's recipes).
 *
 * Barrier: one key. `hold` puts it up, `release` takes it down, `wait`
 * returns once it is down. Not tied to a session: a holder that dies leaves
 * it up until someone releases it (that is the point of a barrier).
 *
 * DoubleBarrier: `count` participants; `enter` returns once `count` have
 * entered (the one that completes the count puts up the ready key), `leave`
 * returns once all have left (the last ones take the ready key down). Each
 * participant's key is under its session's lease, so one that dies stops
 * counting. A round must end (everyone left) before the next one starts on
 * the same name: an `enter` that sees the old round's ready key passes.
 */
import type { TxStore, TxWatchEvent } from '../coordinator/txstore/index.js';
import { systemTimers, type Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';
import { recipeKey } from './keys.js';
import { createOwnKey, dropOwnKey, readLine, type OwnKey } from './ordered.js';
import type { Session } from './session.js';
import { withWait, type WaitOptions, type WaitScope } from './wait.js';
import { waitForEvent } from './watching.js';

/** Most re-reads in one wait; each follows a change. */
const MAX_ROUNDS = 100_000;

/** Reads `prefix` until `done` says so, waiting for an event `wake` accepts between reads. */
async function waitUntil(store: TxStore, timers: Timers, prefix: string, scope: WaitScope, done: (line: Awaited<ReturnType<typeof readLine>>) => Promise<boolean>, wake: (e: TxWatchEvent) => boolean): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    scope.check();
    const line = await readLine(store, prefix);
    if (await done(line)) return;
    await waitForEvent(store, timers, prefix, line.revision + 1, wake, scope);
  }
  throw new RecipeError('limit_exceeded', `${prefix} changed ${MAX_ROUNDS} times during one wait`);
}

export class Barrier {
  readonly key: string;

  constructor(
    readonly store: TxStore,
    readonly name: string,
    readonly timers: Timers = systemTimers,
  ) {
    this.key = `${recipeKey('barrier', name)}up`;
  }

  /** Puts the barrier up; false if it already was. */
  async hold(): Promise<boolean> {
    return (await this.store.casCreate(this.key, 'up')).succeeded;
  }

  /** Takes it down; every waiter returns. */
  async release(): Promise<void> {
    await this.store.delete(this.key);
  }

  /** Returns once the barrier is down (at once if it is). */
  wait(opts: WaitOptions = {}): Promise<void> {
    return withWait(this.timers, opts, undefined, (scope) =>
      waitUntil(this.store, this.timers, this.key, scope, async (line) => !line.kvs.some((kv) => kv.key === this.key), (e) => e.type === 'delete' && e.key === this.key),
    );
  }
}

export class DoubleBarrier {
  readonly prefix: string;
  private readonly waiters: string;
  private readonly ready: string;
  private own: OwnKey | undefined;

  constructor(
    readonly session: Session,
    readonly name: string,
    readonly count: number,
  ) {
    if (!Number.isSafeInteger(count) || count < 1) throw new RecipeError('invalid_value', `count must be a positive integer, got ${count}`);
    this.prefix = recipeKey('double-barrier', name);
    this.waiters = `${this.prefix}waiters/`;
    this.ready = `${this.prefix}ready`;
  }

  /** Joins, then returns once `count` participants have joined. */
  async enter(opts: WaitOptions = {}): Promise<void> {
    this.session.check();
    const s = this.session;
    const own = await createOwnKey(s, `${this.waiters}${s.leaseId}_${s.nonce()}`, 'in');
    this.own = own;
    const done = async (line: Awaited<ReturnType<typeof readLine>>): Promise<boolean> => {
      if (line.kvs.some((kv) => kv.key === this.ready)) return true;
      if (!line.kvs.some((kv) => kv.key === own.key)) throw new RecipeError('session_lost', `${own.key} vanished: the session's lease expired`);
      if (line.kvs.filter((kv) => kv.key.startsWith(this.waiters)).length < this.count) return false;
      await s.store.casCreate(this.ready, 'ready');
      return true;
    };
    try {
      await withWait(s.timers, opts, s.signal, (scope) => waitUntil(s.store, s.timers, this.prefix, scope, done, (e) => e.type === 'put'));
    } catch (e) {
      await dropOwnKey(s, own);
      this.own = undefined;
      throw e;
    }
  }

  /** Leaves, then returns once every participant has left. */
  async leave(opts: WaitOptions = {}): Promise<void> {
    const s = this.session;
    if (this.own !== undefined) await dropOwnKey(s, this.own);
    this.own = undefined;
    const done = async (line: Awaited<ReturnType<typeof readLine>>): Promise<boolean> => {
      if (line.kvs.some((kv) => kv.key.startsWith(this.waiters))) return false;
      const ready = line.kvs.find((kv) => kv.key === this.ready);
      if (ready !== undefined) await s.store.txn([{ key: this.ready, createRevision: ready.createRevision }], [{ type: 'delete', key: this.ready }]);
      return true;
    };
    await withWait(s.timers, opts, undefined, (scope) => waitUntil(s.store, s.timers, this.prefix, scope, done, (e) => e.type === 'delete' && e.key.startsWith(this.waiters)));
  }
}
