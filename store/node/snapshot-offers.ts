/**
 * Snapshot streams, the leader's side (issue 15): a follower that fell
 * behind the leader's compaction is not sent the state as one document.
 * The leader captures, in one synchronous step between two applied batches,
 * the state besides the keys (a small header: revision, clock, leases,
 * sessions, watch history, members) and a read view of its on-disk keys
 * (an LMDB read transaction), and puts an offer id in the Raft snapshot
 * message. The follower pulls the offer in bounded pages over HTTP
 * (store/api/snapshots.ts), at its own pace: flow control is the pull.
 *
 * The stream is the state at the leader's applied index A, which is at or
 * after the Raft snapshot index S the message names; the follower installs
 * S and skips the entries S+1..A it receives again (node.ts applyEach), as a
 * restarted node does. Limits: one offer per follower (repeated snapshot
 * messages reuse it while it is in use), an offer unused for `idleMs` is
 * closed, at most `maxOffers` at once.
 */
import { randomBytes } from 'node:crypto';
import type { Cancel, Timers } from '../../lib/timers.js';
import type { StateImage } from '../kv/durable-state.js';
import type { KeyStoreView, StoredKey } from '../kv/keystore.js';
import { eventBytes } from '../kv/history.js';
import type { KvEvent } from '../kv/types.js';
import type { NodeId } from '../raft/index.js';

export interface OfferLimits {
  /** An offer nobody read for this long is closed (its read transaction released). */
  readonly idleMs: number;
  /** Most offers open at once (one per lagging follower). */
  readonly maxOffers: number;
  /** Most keys in one page. */
  readonly pageMaxKeys: number;
  /** About the most key and value bytes in one page. */
  readonly pageMaxBytes: number;
}

export const DEFAULT_OFFER_LIMITS: OfferLimits = { idleMs: 30_000, maxOffers: 8, pageMaxKeys: 20_000, pageMaxBytes: 2 << 20 };

/** What the snapshot message carries: where to pull the stream from. */
export interface StreamDescriptor {
  readonly id: string;
  /** The leader's client URL; the follower pulls `${url}/internal/v1/snapshots/${id}/...`. */
  readonly url: string;
  /** The applied index of the streamed state (>= the Raft snapshot's index). */
  readonly appliedIndex: number;
  /**
   * A random key the puller sends as `x-snapshot-key`: with auth on, the pages need it (or a root
   * token). Only the Raft message carries it, so only the offered follower can read the state.
   */
  readonly key?: string;
}

/**
 * The stream's first part: the state besides the keys, without the watch
 * history's events (up to watchHistoryBytes, 64 MiB: encoding them in one
 * answer held the leader's event loop for seconds, and elections followed);
 * those come in pages like the keys. `historyEvents` says how many.
 */
export interface StreamHeader {
  readonly appliedIndex: number;
  readonly state: StateImage;
  readonly historyEvents: number;
}

/** A page of keys: [key, value, createRevision, modRevision, version, lease or 0]. */
export type StreamRow = [string, string, number, number, number, number];

interface Offer {
  readonly descriptor: StreamDescriptor;
  readonly follower: NodeId;
  readonly header: StreamHeader;
  /** The history at the offer's applied index (the events are immutable: kept by reference). */
  readonly history: readonly KvEvent[];
  readonly view: KeyStoreView;
  lastUsedMs: number;
}

export class SnapshotOffers {
  private readonly offers = new Map<string, Offer>();
  private seq = 0;
  private cancelSweep: Cancel | undefined;

  constructor(
    private readonly timers: Timers,
    private readonly limits: OfferLimits = DEFAULT_OFFER_LIMITS,
    /** Makes offer keys: 128 random bits as hex. */
    private readonly newKey: () => string = () => randomBytes(16).toString('hex'),
  ) {}

  /**
   * The offer for `follower`: the one in use, or a new one from `capture()`
   * (called synchronously, so the header and the view are the same state).
   * Undefined when `maxOffers` are open.
   */
  offer(follower: NodeId, url: string, capture: () => { appliedIndex: number; state: StateImage; view: KeyStoreView }): StreamDescriptor | undefined {
    this.sweep();
    for (const o of this.offers.values()) if (o.follower === follower) return o.descriptor;
    if (this.offers.size >= this.limits.maxOffers) return undefined;
    const { appliedIndex, state, view } = capture();
    const history = state.history.events;
    const header = { appliedIndex, state: { ...state, history: { droppedThrough: state.history.droppedThrough, events: [] } }, historyEvents: history.length };
    const descriptor = { id: `${follower}-${this.timers.monotonicMs().toFixed(0)}-${++this.seq}`, url, appliedIndex, key: this.newKey() };
    this.offers.set(descriptor.id, { descriptor, follower, header, history, view, lastUsedMs: this.timers.monotonicMs() });
    this.cancelSweep ??= this.timers.every(this.limits.idleMs / 2, () => this.sweep());
    return descriptor;
  }

  /** The offer's key (what a puller must show with auth on); undefined when there is no such offer. */
  keyOf(id: string): string | undefined {
    return this.offers.get(id)?.descriptor.key;
  }

  header(id: string): StreamHeader | undefined {
    return this.use(id)?.header;
  }

  /** The keys after `after`, one bounded page; undefined when the offer is gone (expired or never made). */
  page(id: string, after: string | undefined): { rows: StreamRow[]; more: boolean } | undefined {
    const o = this.use(id);
    if (o === undefined) return undefined;
    const { keys, more } = o.view.page(after, this.limits.pageMaxKeys, this.limits.pageMaxBytes);
    return { rows: keys.map(rowOf), more };
  }

  /** The history's events from position `from`, one page of about pageMaxBytes; undefined when the offer is gone. */
  historyPage(id: string, from: number): { events: KvEvent[]; more: boolean } | undefined {
    const o = this.use(id);
    if (o === undefined) return undefined;
    const events: KvEvent[] = [];
    let bytes = 0;
    for (let i = from; i < o.history.length; i++) {
      if (events.length > 0 && (bytes >= this.limits.pageMaxBytes || events.length >= this.limits.pageMaxKeys)) break;
      const e = o.history[i] as KvEvent;
      bytes += eventBytes(e);
      events.push(e);
    }
    return { events, more: from + events.length < o.history.length };
  }

  get size(): number {
    return this.offers.size;
  }

  closeAll(): void {
    for (const id of [...this.offers.keys()]) this.close(id);
    this.cancelSweep?.();
    this.cancelSweep = undefined;
  }

  private use(id: string): Offer | undefined {
    const o = this.offers.get(id);
    if (o !== undefined) o.lastUsedMs = this.timers.monotonicMs();
    return o;
  }

  private sweep(): void {
    const now = this.timers.monotonicMs();
    for (const [id, o] of this.offers) if (now - o.lastUsedMs > this.limits.idleMs) this.close(id);
  }

  private close(id: string): void {
    const o = this.offers.get(id);
    if (o === undefined) return;
    this.offers.delete(id);
    o.view.close();
  }
}

function rowOf(s: StoredKey): StreamRow {
  const { key, value, createRevision, modRevision, version, lease } = s.kv;
  return [key, value, createRevision, modRevision, version, lease ?? 0];
}
