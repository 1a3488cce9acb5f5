/**
 * Watches the 2PC keys (`tx/`) for the whole run and checks, change by
 * change in revision order, what docs/API.md ("The 2PC key layout") promises about them:
 *
 * - a vote key, once written, never changes (CAS create-if-absent);
 * - the decision never changes, and when it is written it is what the
 *   frozen participants' votes say (commit only if every vote is yes; abort
 *   only if some vote is no);
 * - the participant list never changes once frozen (`state: preparing`);
 * - no ack is written before a commit decision (a participant that votes
 *   "no" knows the outcome is abort and may abort and ack at once).
 *
 * Garbage collection deletes a finished transaction's keys; a vote or ack
 * written after that is a documented orphan (a late write, docs/2PC.md
 * "What remains") and is counted, not flagged. If the watch loses history
 * (`compacted`), the transactions open at that moment are marked unchecked.
 */
import { decide, decodeDecision, decodeTxRecord, decodeVote, parseKey, TX_PREFIX, type Decision, type VoteValue } from '../coordinator/protocol/index.js';
import { TxStoreError, type TxStore, type TxWatchEvent } from '../coordinator/txstore/index.js';
import { keepAliveTimers } from '../lib/timers.js';
import type { Violation } from './record.js';

interface WatchedTx {
  /** The tx record was seen (put) while watched. */
  seen: boolean;
  frozen: readonly string[] | null;
  readonly votes: Map<string, { readonly vote: VoteValue }>;
  decision: Decision | undefined;
  collected: boolean;
  /** A gap in the watch covered part of its life: its checks are incomplete. */
  unchecked: boolean;
  /** Participants that acked before the decision key was written. */
  readonly earlyAcks: string[];
}

export interface TxWatchStats {
  events: number;
  decisionsChecked: number;
  orphanWrites: number;
  gaps: number;
  unchecked: number;
  /** The last revision delivered. */
  revision: number;
}

const MAX_RESTARTS = 100_000;

export class TxWatch {
  readonly stats: TxWatchStats = { events: 0, decisionsChecked: 0, orphanWrites: 0, gaps: 0, unchecked: 0, revision: 0 };
  private readonly txs = new Map<string, WatchedTx>();
  private readonly controller = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: TxStore,
    private readonly onViolation: (v: Violation) => void,
    /** Every event as it arrived, for a post-mortem (one JSON line each). */
    private readonly onEvent: (e: TxWatchEvent) => void = () => {},
  ) {}

  /** Starts watching from the store's current revision; resolves once the start revision is known. */
  async start(): Promise<void> {
    const { revision } = await this.store.range(TX_PREFIX, { limit: 1 });
    this.stats.revision = revision;
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
  }

  /** The decision the watch saw for a transaction, if any. */
  decisionOf(txId: string): Decision | undefined {
    return this.txs.get(txId)?.decision;
  }

  private async loop(): Promise<void> {
    const signal = this.controller.signal;
    for (let i = 0; i < MAX_RESTARTS && !signal.aborted; i++) {
      try {
        for await (const e of this.store.watch(TX_PREFIX, { fromRevision: this.stats.revision + 1, signal })) this.apply(e);
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof TxStoreError && e.code === 'compacted') await this.skipGap();
      }
      await keepAliveTimers.sleep(300, signal);
    }
  }

  /** The history to resume from is gone: resume at the current revision, and stop vouching for open transactions. */
  private async skipGap(): Promise<void> {
    try {
      const { revision } = await this.store.range(TX_PREFIX, { limit: 1 });
      this.stats.revision = revision;
      this.stats.gaps++;
      for (const tx of this.txs.values()) {
        if (!tx.collected && !tx.unchecked) {
          tx.unchecked = true;
          this.stats.unchecked++;
        }
      }
    } catch {
      // the store is unreachable; the loop tries again
    }
  }

  private tx(id: string): WatchedTx {
    let tx = this.txs.get(id);
    if (tx === undefined) {
      tx = { seen: false, frozen: null, votes: new Map(), decision: undefined, collected: false, unchecked: false, earlyAcks: [] };
      this.txs.set(id, tx);
    }
    return tx;
  }

  private flag(txId: string, message: string): void {
    this.onViolation({ check: 'stable-decisions', message: `${txId}: ${message}`, txId });
  }

  private apply(e: TxWatchEvent): void {
    this.onEvent(e);
    this.stats.events++;
    this.stats.revision = Math.max(this.stats.revision, e.revision);
    const key = parseKey(e.key);
    if (key === null) return;
    const tx = this.tx(key.id);
    try {
      if (e.type === 'delete') {
        if (key.kind === 'tx') tx.collected = true;
        if (key.kind === 'vote') tx.votes.delete(key.participant);
        return;
      }
      const value = e.value ?? '';
      if (tx.collected && key.kind !== 'tx') {
        this.stats.orphanWrites++;
        return;
      }
      switch (key.kind) {
        case 'tx':
          this.onRecord(key.id, tx, value);
          return;
        case 'vote': {
          const vote = decodeVote(value).vote;
          const old = tx.votes.get(key.participant)?.vote;
          if (old !== undefined && old !== vote) this.flag(key.id, `vote of ${key.participant} changed from ${old} to ${vote} at revision ${e.revision}`);
          if (tx.decision === 'commit' && vote === 'no') this.flag(key.id, `a "no" vote of ${key.participant} appeared after the commit decision`);
          tx.votes.set(key.participant, { vote });
          return;
        }
        case 'decision':
          this.onDecision(key.id, tx, decodeDecision(value), e.revision);
          return;
        case 'ack':
          if (tx.decision === undefined) tx.earlyAcks.push(key.participant); // judged when the decision comes
          return;
      }
    } catch (err) {
      this.onViolation({ check: 'stable-decisions', message: `${e.key} holds a value the protocol never writes: ${(err as Error).message}`, txId: key.id });
    }
  }

  private onRecord(id: string, tx: WatchedTx, raw: string): void {
    const record = decodeTxRecord(raw);
    if (tx.collected) this.flag(id, 'its record was written again after garbage collection');
    tx.seen = true;
    const names = record.participants.map((p) => p.name);
    if (record.state === 'preparing') {
      if (tx.frozen !== null && tx.frozen.join(',') !== names.join(',')) this.flag(id, `frozen participants changed from [${tx.frozen.join(',')}] to [${names.join(',')}]`);
      tx.frozen = names;
    } else if (tx.frozen !== null) {
      this.flag(id, 'its record went back from preparing to active');
    }
  }

  private onDecision(id: string, tx: WatchedTx, decision: Decision, revision: number): void {
    if (tx.decision !== undefined) {
      if (tx.decision !== decision) this.flag(id, `decision changed from ${tx.decision} to ${decision} at revision ${revision}`);
      return;
    }
    tx.decision = decision;
    if (tx.unchecked || !tx.seen) return; // part of its history is not known here
    if (tx.frozen === null) {
      this.flag(id, `decided ${decision} before its participant list was frozen`);
      return;
    }
    this.stats.decisionsChecked++;
    // Nobody can know a commit before it is recorded; an abort, a participant that refuses knows at once
    // (its "no" vote may even land after the decision: the two writes race).
    if (decision === 'commit') for (const p of tx.earlyAcks) this.flag(id, `${p} acked before the commit decision (revision ${revision})`);
    const verdict = decide(tx.frozen, tx.votes);
    if (tx.frozen.length === 0) return; // nothing votes: the first decision written is the outcome
    if (verdict !== decision) {
      const votes = tx.frozen.map((n) => `${n}=${tx.votes.get(n)?.vote ?? 'missing'}`).join(' ');
      this.flag(id, `decision ${decision} at revision ${revision} but the votes say ${verdict} (${votes})`);
    }
  }
}
