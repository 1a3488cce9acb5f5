/**
 * Taking a turn in a line, with the waiting or without: what the mutex, the
 * read-write lock, the semaphore and the election share. The contender's
 * key is `{prefix}{leaseId}_{nonce}`; what blocks it is the recipe's
 * `Blocker`. A failed or abandoned wait removes the key, so it never
 * blocks anyone after its owner gave up.
 */
import { Hold } from './hold.js';
import { createOwnKey, dropOwnKey, readLine, waitTurn, type Blocker, type OwnKey } from './ordered.js';
import { RecipeError } from './errors.js';
import type { Session } from './session.js';
import { withWait, type WaitOptions } from './wait.js';

/** Queues a new key in the line under `prefix`. */
export function enqueue(session: Session, prefix: string, value: string): Promise<OwnKey> {
  session.check();
  return createOwnKey(session, `${prefix}${session.leaseId}_${session.nonce()}`, value);
}

/** Waits for the turn of `own`; on any failure its key is removed and the failure thrown. */
export async function awaitTurn(session: Session, prefix: string, own: OwnKey, blocker: Blocker, opts: WaitOptions): Promise<void> {
  try {
    await withWait(session.timers, opts, session.signal, (scope) => waitTurn(session.store, session.timers, prefix, own, blocker, scope));
  } catch (e) {
    await dropOwnKey(session, own);
    throw e;
  }
}

/** Queues and waits: the turn, as a Hold. */
export async function takeTurn(session: Session, prefix: string, value: string, blocker: Blocker, opts: WaitOptions): Promise<Hold> {
  const own = await enqueue(session, prefix, value);
  await awaitTurn(session, prefix, own, blocker, opts);
  return new Hold(session, own);
}

/** The turn if nothing blocks it now, else null with nothing left queued. */
export async function tryTurn(session: Session, prefix: string, value: string, blocker: Blocker): Promise<Hold | null> {
  const own = await enqueue(session, prefix, value);
  const line = await readLine(session.store, prefix);
  const mine = line.kvs.find((kv) => kv.key === own.key);
  if (mine?.createRevision !== own.createRevision) throw new RecipeError('session_lost', `${own.key} vanished: the session's lease expired`, { key: own.key });
  if (blocker(line.kvs.filter((kv) => kv.createRevision < own.createRevision)) !== null) {
    await dropOwnKey(session, own);
    return null;
  }
  session.check();
  return new Hold(session, own);
}
