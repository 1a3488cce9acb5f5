/**
 * The transactions as they happen, read from the store itself: one watch on
 * `tx/` (the key layout of docs/API.md) shows each record as it is
 * begun and frozen, each vote as it lands, the decision, and each bank's
 * ack. Times are when this app saw each event. Only the most recent
 * transactions are kept (a display, not a history).
 */
import { systemRandom } from '../../lib/random.js';
import type { Logger } from '../../lib/logger.js';
import { systemTimers } from '../../lib/timers.js';
import { decodeAck, decodeDecision, decodeTxRecord, decodeVote, parseKey, TX_PREFIX, type Decision, type VoteValue } from '../../coordinator/protocol/index.js';
import type { TxStore, TxWatchEvent } from '../../coordinator/txstore/index.js';
import { PrefixWatcher } from '../../coordinator/txstore/index.js';

export type FeedStatus = 'active' | 'preparing' | 'committing' | 'aborting' | 'committed' | 'aborted' | 'in-doubt';

export interface FeedVote {
  readonly vote: VoteValue;
  /** Who wrote it: the bank itself, or a coordinator filling a "no" at the deadline. */
  readonly by: string;
  readonly reason?: string;
  readonly atMs: number;
}

export interface FeedTx {
  readonly id: string;
  readonly kind: string;
  /** e.g. "bank-a:alice → bank-b:bob 10" */
  readonly label: string;
  readonly participants: readonly string[];
  readonly createdAt: number;
  readonly deadline: number;
  readonly status: FeedStatus;
  /** Past its deadline and not decided, not even by its votes (the commit point is "every vote yes"). */
  readonly inDoubt: boolean;
  readonly votes: Readonly<Record<string, FeedVote>>;
  readonly decision: Decision | null;
  readonly decidedAtMs: number | null;
  readonly acks: Readonly<Record<string, number>>;
  /** The coordinator removed its keys after every ack (garbage collection). */
  readonly collected: boolean;
}

interface Entry {
  id: string;
  kind: string;
  label: string;
  participants: string[];
  state: 'active' | 'preparing';
  createdAt: number;
  deadline: number;
  votes: Record<string, FeedVote>;
  decision: Decision | null;
  decidedAtMs: number | null;
  acks: Record<string, number>;
  collected: boolean;
}

export interface FeedCounts {
  readonly seen: number;
  readonly committed: number;
  readonly aborted: number;
}

/** Transactions kept for the page. */
const MAX_ENTRIES = 40;

export class TxFeed {
  private readonly entries = new Map<string, Entry>();
  private readonly watcher: PrefixWatcher;
  private counts = { seen: 0, committed: 0, aborted: 0 };

  constructor(store: TxStore, log: Logger) {
    this.watcher = new PrefixWatcher({ store, prefix: TX_PREFIX, onEvent: (e) => this.onEvent(e), onResync: () => {}, random: systemRandom, timers: systemTimers, log });
  }

  async start(): Promise<void> {
    await this.watcher.start();
  }

  stop(): Promise<void> {
    return this.watcher.stop();
  }

  view(nowMs: number): FeedTx[] {
    return [...this.entries.values()].reverse().map((e) => toView(e, nowMs));
  }

  get totals(): FeedCounts {
    return { ...this.counts };
  }

  private onEvent(e: TxWatchEvent): void {
    const k = parseKey(e.key);
    if (k === null) return;
    const now = Date.now();
    if (e.value === null) {
      if (k.kind === 'tx') {
        const entry = this.entries.get(k.id);
        if (entry !== undefined) entry.collected = true;
      }
      return;
    }
    try {
      if (k.kind === 'tx') this.onRecord(k.id, e.value);
      const entry = this.entries.get(k.id);
      if (entry === undefined) return; // older than what we keep
      if (k.kind === 'vote') {
        const v = decodeVote(e.value);
        entry.votes[k.participant] = { vote: v.vote, by: v.by, ...(v.reason === undefined ? {} : { reason: v.reason }), atMs: now };
      } else if (k.kind === 'decision' && entry.decision === null) {
        entry.decision = decodeDecision(e.value);
        entry.decidedAtMs = now;
        if (entry.decision === 'commit') this.counts.committed++;
        else this.counts.aborted++;
      } else if (k.kind === 'ack') {
        decodeAck(e.value);
        entry.acks[k.participant] = now;
      }
    } catch {
      // A value this app cannot read is the coordinators' business (they log it); the display skips it.
    }
  }

  private onRecord(id: string, raw: string): void {
    const r = decodeTxRecord(raw);
    const old = this.entries.get(id);
    if (old !== undefined) {
      old.state = r.state;
      old.participants = r.participants.map((p) => p.name);
      old.deadline = r.deadline;
      return;
    }
    const md = (r.metadata ?? {}) as { kind?: unknown; from?: unknown; to?: unknown; amount?: unknown };
    const kind = typeof md.kind === 'string' ? md.kind : 'other';
    const label = kind === 'transfer' ? `${String(md.from)} → ${String(md.to)} ${String(md.amount)}` : kind === 'audit' ? 'audit: read every account' : id;
    this.entries.set(id, {
      id,
      kind,
      label,
      participants: r.participants.map((p) => p.name),
      state: r.state,
      createdAt: r.createdAt,
      deadline: r.deadline,
      votes: {},
      decision: null,
      decidedAtMs: null,
      acks: {},
      collected: false,
    });
    this.counts.seen++;
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
  }
}

function toView(e: Entry, nowMs: number): FeedTx {
  const votes = Object.values(e.votes);
  let status: FeedStatus;
  if (e.decision !== null) status = e.decision === 'commit' ? 'committed' : 'aborted';
  else if (votes.some((v) => v.vote === 'no')) status = 'aborting';
  else if (e.participants.length > 0 && e.participants.every((p) => e.votes[p]?.vote === 'yes')) status = 'committing';
  else if (nowMs > e.deadline) status = 'in-doubt';
  else status = e.state;
  return {
    id: e.id,
    kind: e.kind,
    label: e.label,
    participants: e.participants,
    createdAt: e.createdAt,
    deadline: e.deadline,
    status,
    inDoubt: status === 'in-doubt',
    votes: { ...e.votes },
    decision: e.decision,
    decidedAtMs: e.decidedAtMs,
    acks: { ...e.acks },
    collected: e.collected,
  };
}
