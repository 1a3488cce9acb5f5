/**
 * Reading transactions for people and for the recovery loop: one
 * transaction's view (live keys, or the compacted record after GC), the
 * paged listing, and the bounded scan of `tx/` both use.
 *
 * Key order and grouping: the keys of transaction X are `tx/X` and
 * `tx/X/...`, but they are not contiguous in key order when another id
 * extends X with '.' or '-' (`tx/X.b` sorts between `tx/X` and `tx/X/vote`,
 * because '.' and '-' sort before '/'). A scan therefore groups keys by the
 * id `parseKey` finds, and a group is complete once the scan has passed
 * `tx/X/~` ('~' sorts after every character an id or name may hold). Groups
 * left incomplete at the end of a bounded scan are read whole by themselves.
 * A scan is not one snapshot: pages are read at their own revisions, which
 * is fine for a listing and for finding recovery candidates (recovery then
 * reads each candidate at one revision).
 */
import { decodeDoneRecord, DONE_PREFIX, doneKey, type DoneRecord } from '../protocol/index.js';
import { listedState, parseKey, snapshotFromKvs, TX_PREFIX, txKey, type Decision, type JsonObject, type ListedState, type Participant, type TxSnapshot, type Vote } from '../protocol/index.js';
import { rangeAll, readTxSnapshot, type TxKeyValue, type TxStore } from '../txstore/index.js';

export interface TxView {
  readonly id: string;
  readonly state: ListedState;
  readonly participants: readonly Participant[];
  readonly votes: Readonly<Record<string, Vote>>;
  readonly decision: Decision | null;
  /** Participant name to applied time (epoch ms). */
  readonly acks: Readonly<Record<string, number>>;
  readonly createdAt: number;
  readonly deadline: number;
  /** True when the keys were garbage-collected and this comes from the compacted record. */
  readonly collected: boolean;
  readonly collectedAt?: number;
  /** The record's own state in the store (active, preparing), for live transactions. */
  readonly recordState?: 'active' | 'preparing';
  readonly metadata?: JsonObject;
}

export function viewOfSnapshot(snap: TxSnapshot, nowMs: number): TxView | null {
  const state = listedState(snap, nowMs);
  if (state === null || snap.tx === null) return null;
  const r = snap.tx.record;
  const view: TxView = {
    id: snap.id,
    state,
    participants: r.participants,
    votes: Object.fromEntries(snap.votes),
    decision: snap.decision ?? null,
    acks: Object.fromEntries(snap.acks),
    createdAt: r.createdAt,
    deadline: r.deadline,
    collected: false,
    recordState: r.state,
  };
  return r.metadata === undefined ? view : { ...view, metadata: r.metadata };
}

export function viewOfDone(d: DoneRecord): TxView {
  const view: TxView = {
    id: d.id,
    state: d.outcome,
    participants: d.participants,
    votes: d.votes,
    decision: d.outcome === 'committed' ? 'commit' : 'abort',
    acks: d.acks,
    createdAt: d.createdAt,
    deadline: d.deadline,
    collected: true,
    collectedAt: d.collectedAt,
  };
  return d.metadata === undefined ? view : { ...view, metadata: d.metadata };
}

export async function readDone(store: TxStore, id: string): Promise<DoneRecord | null> {
  const kv = await store.get(doneKey(id));
  return kv === null ? null : decodeDoneRecord(kv.value);
}

/** The transaction as the store holds it now; null if it never existed or its compacted record expired. */
export async function getTransaction(store: TxStore, id: string, nowMs: number): Promise<TxView | null> {
  const live = viewOfSnapshot(await readTxSnapshot(store, id), nowMs);
  if (live !== null) return live;
  // Collected between the two reads is fine: GC writes the compacted record in the same txn.
  const done = await readDone(store, id);
  return done === null ? null : viewOfDone(done);
}

// ---------------------------------------------------------------------------
// Scanning `tx/`

export interface TxScan {
  /** Complete groups of keys by transaction id, ids ascending, each with `tx/{id}` after the start key. */
  readonly groups: ReadonlyMap<string, readonly TxKeyValue[]>;
  readonly revision: number;
  /** True when the scan reached the end of `tx/`. */
  readonly exhausted: boolean;
  /** The last key read: the next scan starts after it. Undefined when nothing was read. */
  readonly lastKey: string | undefined;
}

/**
 * Reads `tx/` strictly after key `afterKey`, about `maxKeys` keys at most,
 * grouped into complete transactions. A group whose `tx/{id}` key is at or
 * before `afterKey` is the tail of a transaction the previous scan already
 * read whole, and is skipped. Every scan that is not exhausted moves the key
 * cursor forward, so paging always ends.
 */
export async function scanTransactions(store: TxStore, afterKey: string | undefined, maxKeys: number, pageSize = 1_000): Promise<TxScan> {
  const groups = new Map<string, TxKeyValue[]>();
  let after = afterKey;
  let read = 0;
  let more = true;
  let revision = 0;
  while (more && read < maxKeys) {
    const limit = Math.max(1, Math.min(pageSize, maxKeys - read));
    const page = await store.range(TX_PREFIX, after === undefined ? { limit } : { limit, after });
    revision = page.revision;
    more = page.more;
    read += page.kvs.length;
    for (const kv of page.kvs) {
      const parsed = parseKey(kv.key);
      if (parsed === null || (afterKey !== undefined && txKey(parsed.id) <= afterKey)) continue;
      let g = groups.get(parsed.id);
      if (g === undefined) groups.set(parsed.id, (g = []));
      g.push(kv);
    }
    const last = page.kvs[page.kvs.length - 1];
    if (last === undefined) break;
    after = last.key;
  }
  if (more && after !== undefined) {
    const end = after;
    for (const id of groups.keys()) {
      if (end < `${txKey(id)}/~`) {
        const whole = await rangeAll(store, txKey(id));
        groups.set(id, whole.kvs.filter((kv) => parseKey(kv.key)?.id === id));
      }
    }
  }
  const ids = [...groups.keys()].sort();
  return { groups: new Map(ids.map((id) => [id, groups.get(id) as TxKeyValue[]])), revision, exhausted: !more, lastKey: after === afterKey ? undefined : after };
}

// ---------------------------------------------------------------------------
// Listing

export interface TxSummary {
  readonly id: string;
  readonly state: ListedState;
  readonly participants: readonly string[];
  readonly createdAt: number;
  readonly deadline: number;
  readonly collected: boolean;
}

export interface ListOptions {
  readonly state?: ListedState;
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly after?: string;
  readonly scanMaxKeys: number;
}

function summarize(v: TxView): TxSummary {
  return { id: v.id, state: v.state, participants: v.participants.map((p) => p.name), createdAt: v.createdAt, deadline: v.deadline, collected: v.collected };
}

/**
 * Transactions ordered by id, live ones from `tx/` and collected ones from
 * their compacted records, filtered by listed state. `next`, when not null,
 * is the `after` of the following page (a position in the key space, not
 * necessarily an id); a page may hold fewer than `limit` items when the scan
 * bound was reached first.
 */
export async function listTransactions(store: TxStore, opts: ListOptions, nowMs: number): Promise<{ transactions: TxSummary[]; next: string | null }> {
  const afterKey = opts.after === undefined ? undefined : `${TX_PREFIX}${opts.after}`;
  const scan = await scanTransactions(store, afterKey, opts.scanMaxKeys);
  const items: TxSummary[] = [];
  for (const [id, kvs] of scan.groups) {
    let view: TxView | null;
    try {
      view = viewOfSnapshot(snapshotFromKvs(id, kvs, scan.revision), nowMs);
    } catch {
      continue; // corrupt: GET shows the error, the listing skips it
    }
    if (view !== null && (opts.state === undefined || view.state === opts.state)) items.push(summarize(view));
  }
  // Every id whose `tx/{id}` is at or before `bound` has been considered; ids past it are not known yet.
  let bound = scan.exhausted ? undefined : scan.lastKey;
  if (opts.state === undefined || opts.state === 'committed' || opts.state === 'aborted') {
    const doneAfter = opts.after === undefined ? undefined : `${DONE_PREFIX}${opts.after}`;
    const page = await store.range(DONE_PREFIX, doneAfter === undefined ? { limit: opts.limit } : { limit: opts.limit, after: doneAfter });
    for (const kv of page.kvs) {
      try {
        const view = viewOfDone(decodeDoneRecord(kv.value));
        if ((afterKey === undefined || txKey(view.id) > afterKey) && (opts.state === undefined || view.state === opts.state)) items.push(summarize(view));
      } catch {
        // skip corrupt
      }
    }
    const lastDone = page.kvs[page.kvs.length - 1]?.key.slice(DONE_PREFIX.length);
    if (page.more && lastDone !== undefined && (bound === undefined || txKey(lastDone) < bound)) bound = txKey(lastDone);
  }
  const seen = new Set<string>();
  const merged = items
    .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
    .filter((t) => (bound === undefined || txKey(t.id) <= bound) && !seen.has(t.id) && seen.add(t.id) !== undefined);
  if (merged.length > opts.limit) {
    const page = merged.slice(0, opts.limit);
    return { transactions: page, next: page[page.length - 1]?.id ?? null };
  }
  return { transactions: merged, next: bound === undefined ? null : bound.slice(TX_PREFIX.length) };
}
