/**
 * raft2pc/recipes: coordination recipes over any TxStore (the built-in store
 * or etcd), in the manner of etcd's client/v3/concurrency and Apache Curator,
 * made safe where those are known to be weak (docs/RECIPES.md).
 *
 *   const session = await Session.open({ store, ttlMs: 10_000 });
 *   const hold = await new Mutex(session, 'jobs').lock({ timeoutMs: 5_000 });
 *   await hold.fencedPut('jobs/state', '...');   // refused by the store once hold is stale
 *   await hold.release();
 *
 * Everything a session holds is under its lease and ends with it: `session.lost`
 * and every hold's `signal` report the loss at once.
 */
export { RecipeError, isRecipeError, type RecipeErrorCode } from './errors.js';
export { Session, DEFAULT_SESSION_TTL_MS, type SessionOptions } from './session.js';
export type { WaitOptions } from './wait.js';
export { Hold, type FencedResult } from './hold.js';
// Locks and elections: a line of keys by create revision (ordered.ts).
export { Mutex } from './mutex.js';
export { RWMutex } from './rwmutex.js';
export { Semaphore } from './semaphore.js';
export { Election, Leadership, currentLeader, electionPrefix, observeLeaders, type LeaderInfo } from './election.js';
// The others.
export { Barrier, DoubleBarrier } from './barrier.js';
export { Counter } from './counter.js';
export { Queue, type QueueItem } from './queue.js';
export { Group, Membership, type Member } from './group.js';
export { ConfigTree, type ConfigView } from './config.js';
export { followPrefix, type PrefixEntry, type PrefixSnapshot } from './watching.js';
export { RECIPES_ROOT, recipeKey } from './keys.js';
