/**
 * Waiting in line by create revision, the way etcd's concurrency package
 * does it: each contender creates its own key under the session's lease, and
 * the order of create revisions is the order of the line. A contender's turn
 * comes when the keys created before its own no longer block it (`Blocker`);
 * until then it watches only what blocks it (its predecessor, for a mutex),
 * so one release wakes one waiter, not the herd.
 *
 * After every wake-up the line is read again, and the contender's own key
 * must still be there with its create revision: a session that expired while
 * waiting fails the wait instead of granting it (etcd #11408).
 */
import { isRetryableStoreError, type TxKeyValue, type TxStore } from '../coordinator/txstore/index.js';
import type { Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';
import type { Session } from './session.js';
import type { WaitScope } from './wait.js';
import { readLine, waitForEvent } from './watching.js';

export { MAX_LINE_KEYS, readLine } from './watching.js';

/** A key this session created: its create revision is its place in line and its fencing token. */
export interface OwnKey {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
}

/** Most re-reads of the line per wait; each follows a change, so this bounds a wait's work. */
const MAX_ROUNDS = 100_000;

/** What blocks a contender, given the keys created before its own (oldest first): a key, any key, or nothing. */
export type Blocker = (older: readonly TxKeyValue[]) => { readonly key: string } | 'any' | null;

/** The predecessor blocks: a mutex, an election, a writer. */
export const newestOlder: Blocker = (older) => older[older.length - 1] ?? null;

/**
 * Creates `key` holding `value` under the session's lease. An ambiguous
 * failure (a retried create that was applied the first time) is resolved by
 * reading the key back: the value holds a nonce, so a match is ours.
 */
export async function createOwnKey(session: Session, key: string, value: string): Promise<OwnKey> {
  let failure: unknown;
  try {
    const r = await session.store.casCreate(key, value, { lease: session.leaseId });
    if (r.succeeded) return { key, value, createRevision: r.revision };
  } catch (e) {
    if (!isRetryableStoreError(e)) throw e;
    failure = e;
  }
  const kv = await session.store.get(key);
  if (kv !== null && kv.value === value && kv.lease === session.leaseId) return { key, value, createRevision: kv.createRevision };
  if (failure !== undefined) throw failure;
  throw new RecipeError('outcome_unknown', `could not create ${key}: another value is there`, { key });
}

/**
 * Deletes an own key (only if it is still that key). If the store cannot do
 * it (the client's own retries gave up), the session is closed: a key left
 * behind under a live, renewed lease would block the line for good, whereas
 * a closed session stops renewing and its lease, with every key on it,
 * expires within one TTL. Holds on the session then report the loss.
 */
export async function dropOwnKey(session: Session, own: OwnKey): Promise<void> {
  try {
    await session.store.txn([{ key: own.key, createRevision: own.createRevision }], [{ type: 'delete', key: own.key }]);
  } catch {
    await session.close();
  }
}

/** Waits until `blocker` lets `own` through; returns the line as read at that moment. Throws the scope's reason. */
export async function waitTurn(store: TxStore, timers: Timers, prefix: string, own: OwnKey, blocker: Blocker, scope: WaitScope): Promise<TxKeyValue[]> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    scope.check();
    const line = await readLine(store, prefix);
    const mine = line.kvs.find((kv) => kv.key === own.key);
    if (mine?.createRevision !== own.createRevision) throw new RecipeError('session_lost', `${own.key} is gone: the session's lease expired while waiting`, { key: own.key });
    const blocking = blocker(line.kvs.filter((kv) => kv.createRevision < own.createRevision));
    if (blocking === null) {
      scope.check();
      return line.kvs;
    }
    // A key is never a prefix of another key in one line (lease id, "_", 16 hex digits), so watching it alone is exact.
    const watched = blocking === 'any' ? prefix : blocking.key;
    await waitForEvent(store, timers, watched, line.revision + 1, (e) => e.type === 'delete' && (blocking === 'any' || e.key === blocking.key), scope);
  }
  throw new RecipeError('limit_exceeded', `the line under ${prefix} changed ${MAX_ROUNDS} times during one wait`);
}
