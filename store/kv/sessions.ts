/**
 * Client sessions for exactly-once writes (Raft dissertation 6.3): per client
 * the last applied seq and its result, so a retried write is answered from
 * the cache instead of being applied twice.
 *
 * Time is the commands' `nowMs` as the state machine saw it (a monotone
 * clock, see KvStateMachine), never the local clock, so expiry and eviction
 * are identical on every replica. Limits: a session idle for more than
 * sessionIdleMs expires; past maxSessions sessions, or maxSessionBytes of
 * client ids and cached results (a txn's cached result may hold ranges),
 * the least recently used goes.
 * A write retried after its session expired or was evicted is applied again:
 * clients must stop retrying well within sessionIdleMs.
 */
import { assert } from '../../lib/assert.js';
import { ChangeSet } from './durable-state.js';
import type { KvOkResult } from './types.js';

export interface Session {
  readonly clientId: string;
  /** The last applied seq of this client. */
  readonly seq: number;
  /** Clock of the last command that used this session. */
  readonly lastSeenMs: number;
  /** The result of `seq`, as first returned (without `duplicate`). */
  readonly result: KvOkResult;
}

export type SessionCheck =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly result: KvOkResult }
  | { readonly kind: 'stale'; readonly lastSeq: number };

export class SessionTable {
  /**
   * Least recently used first: every use moves a session to the end. Since
   * the clock never goes back, this is also lastSeenMs order, so expiry
   * only ever looks at the front.
   */
  private readonly byClient = new Map<string, Session>();
  /** The newest lastSeenMs stored; the order invariant above holds while puts never go below it. */
  private latestMs = -Infinity;
  /** The size of each session (sizeOf), and their sum: what maxSessionBytes limits. */
  private readonly sizes = new Map<string, number>();
  private bytes = 0;
  /** Sessions put or dropped since the last takeChanges (for an on-disk store, durable-state.ts). */
  private readonly changes = new ChangeSet<string>();

  constructor(
    private readonly maxSessions: number,
    private readonly sessionIdleMs: number,
    private readonly maxSessionBytes: number = Number.MAX_SAFE_INTEGER,
  ) {}

  get size(): number {
    return this.byClient.size;
  }

  /** Client id and cached result sizes of all sessions (sizeOf). */
  get byteSize(): number {
    return this.bytes;
  }

  /** What a write with this id is, at clock `nowMs` (a session expired by then counts as gone). */
  check(clientId: string, seq: number, nowMs: number): SessionCheck {
    const session = this.byClient.get(clientId);
    if (session === undefined || this.isExpired(session, nowMs)) return { kind: 'new' };
    if (seq > session.seq) return { kind: 'new' };
    if (seq === session.seq) return { kind: 'duplicate', result: session.result };
    return { kind: 'stale', lastSeq: session.seq };
  }

  /** Drops every session idle for more than sessionIdleMs at `nowMs`. */
  expire(nowMs: number): void {
    for (const session of this.byClient.values()) {
      if (!this.isExpired(session, nowMs)) return;
      this.drop(session.clientId);
    }
  }

  /** Marks a session used at `nowMs` (a duplicate answered from the cache). */
  touch(clientId: string, nowMs: number): void {
    const session = this.byClient.get(clientId);
    assert(session !== undefined, `touch of unknown session ${clientId}`);
    this.put({ ...session, lastSeenMs: nowMs });
  }

  /** Stores the result of a newly applied write, evicting the least recently used past maxSessions. */
  record(clientId: string, seq: number, nowMs: number, result: KvOkResult): void {
    this.put({ clientId, seq, lastSeenMs: nowMs, result });
    for (const oldest of this.byClient.keys()) {
      // The newest session always stays, whatever its size.
      if ((this.byClient.size <= this.maxSessions && this.bytes <= this.maxSessionBytes) || oldest === clientId) break;
      this.drop(oldest);
    }
  }

  /** Sessions least recently used first (for snapshots; `load` keeps the order). */
  list(): Session[] {
    return [...this.byClient.values()];
  }

  load(sessions: readonly Session[]): void {
    assert(this.byClient.size === 0, 'load into a used session table');
    assert(sessions.length <= this.maxSessions, 'snapshot has more sessions than maxSessions');
    let lastSeenMs = -Infinity;
    for (const session of sessions) {
      assert(session.lastSeenMs >= lastSeenMs, 'snapshot sessions out of use order');
      assert(!this.byClient.has(session.clientId), `snapshot repeats session ${session.clientId}`);
      lastSeenMs = session.lastSeenMs;
      this.byClient.set(session.clientId, session);
      this.resize(session);
    }
    this.latestMs = lastSeenMs;
  }

  /** What changed since the last call: sessions put (in use order) and client ids dropped. */
  takeChanges(): { put: Session[]; dropped: string[] } {
    const put: Session[] = [];
    const dropped: string[] = [];
    for (const id of this.changes.take()) {
      const session = this.byClient.get(id);
      if (session === undefined) dropped.push(id);
      else put.push(session);
    }
    return { put, dropped };
  }

  /** Counts every session as changed (the next takeChanges returns them all, in use order). */
  markAllChanged(): void {
    for (const id of this.byClient.keys()) this.changes.mark(id);
  }

  private put(session: Session): void {
    assert(session.lastSeenMs >= this.latestMs, 'session clock went back');
    this.latestMs = session.lastSeenMs;
    this.byClient.delete(session.clientId);
    this.byClient.set(session.clientId, session);
    this.resize(session);
    this.changes.mark(session.clientId);
  }

  private drop(clientId: string): void {
    this.byClient.delete(clientId);
    this.bytes -= this.sizes.get(clientId) ?? 0;
    this.sizes.delete(clientId);
    this.changes.mark(clientId);
  }

  private resize(session: Session): void {
    const size = sizeOf(session);
    this.bytes += size - (this.sizes.get(session.clientId) ?? 0);
    this.sizes.set(session.clientId, size);
  }

  private isExpired(session: Session, nowMs: number): boolean {
    return nowMs - session.lastSeenMs > this.sessionIdleMs;
  }
}

/** About the bytes a session holds: its client id and its cached result as JSON (the same on every replica). */
function sizeOf(session: Session): number {
  return session.clientId.length + JSON.stringify(session.result).length;
}
