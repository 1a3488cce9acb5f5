/**
 * What the participant learns from its watch of `tx/` (one per process,
 * coordinator/txstore/watcher.ts), so that the coordinator's calls stay hints:
 *
 * - a `tx/{id}` record frozen with this participant in it is a prepare
 *   request, even if the coordinator's prepare call never comes. Under load
 *   the coordinator sends few prepare calls (maxPrepareHintsPerParticipant)
 *   and this is how most prepares arrive, so by default it counts at once
 *   (`prepareDelayMs` 0). A commit's freeze asks for our vote; an explicit
 *   abort's freeze writes the first participant's "no" in the same txn, so
 *   our "yes" can no longer make it commit (before that txn, preparing at
 *   once turned aborts into commits, hence the old 250 ms default); a
 *   deadline's freeze races the coordinator's "no" fills, as it did with the
 *   delay: the votes that land decide, consistently (the 2PC simulation
 *   runs this knob at 0 too). A delay only saves an abort's useless prepare;
 * - a record frozen WITHOUT this participant excludes work it holds for it
 *   (the application never enlisted it): that work is aborted locally;
 * - a `tx/{id}/decision` is the decision; a commit without our durable "yes"
 *   means the transaction committed without us (excluded, too).
 *
 * Decision hints from the coordinator come through `observeHintedDecision`,
 * once the store confirmed them. A hinted abort of a transaction this
 * participant has no record of (it was down, or crashed before its "no" was
 * durable, when the list froze; a coordinator filled its vote) is applied
 * (nothing to undo) and acknowledged, if the frozen record lists us:
 * otherwise the transaction could never be collected.
 *
 * Prepares are held until start-up recovery has finished (`release`): the
 * service validates against its locks, and those of in-doubt transactions
 * are restored by recovery (docs/SIM2PC.md, `prepare-before-restore`). At
 * most `maxHeldPrepares` are held; past it a prepare is dropped (the
 * deadline fills our vote with "no").
 */
import type { Logger } from '../lib/logger.js';
import type { Cancel, Timers } from '../lib/timers.js';
import { decisionKey, decodeDecision, decodeTxRecord, parseKey, txKey, type Decision } from '../coordinator/protocol/index.js';
import type { TxStore, TxWatchEvent } from '../coordinator/txstore/index.js';
import type { ParticipantLog } from './log.js';
import type { OpenTxTable } from './open-tx.js';

/** Deleted transaction records remembered, so late work for them is refused (about 64 bytes each). */
const MAX_REMEMBERED_COLLECTED = 65_536;

export interface ParticipantWatchDeps {
  readonly name: string;
  readonly log: ParticipantLog;
  readonly store: TxStore;
  readonly logger: Logger;
  readonly timers: Timers;
  readonly prepareDelayMs: number;
  readonly maxHeldPrepares: number;
}

export class ParticipantWatch {
  private readonly name: string;
  private readonly log: ParticipantLog;
  private readonly store: TxStore;
  private readonly logger: Logger;
  /** Prepares waiting out `prepareDelayMs`, by transaction: their cancels. */
  private readonly delayed = new Map<string, Cancel>();
  /** Prepares that came due before recovery finished, by transaction (deadline); undefined once released. */
  private held: Map<string, number> | undefined = new Map();
  /** Transactions whose record the watch saw deleted, oldest first (wasCollected). */
  private readonly collected = new Set<string>();

  constructor(
    private readonly deps: ParticipantWatchDeps,
    private readonly txs: OpenTxTable,
  ) {
    this.name = deps.name;
    this.log = deps.log;
    this.store = deps.store;
    this.logger = deps.logger;
  }

  stop(): void {
    for (const cancel of this.delayed.values()) cancel();
    this.delayed.clear();
    this.held = undefined;
  }

  /** Start-up recovery has finished (locks restored): run the prepares held meanwhile. */
  release(): void {
    const held = this.held;
    this.held = undefined;
    for (const [txId, deadline] of held ?? []) this.prepareNow(txId, deadline);
  }

  /**
   * True when the watch saw `tx/{txId}` deleted: the transaction is finished
   * and collected, so work for it can only wait forever (a slow client's
   * work that lost the race with the deadline). Remembers the newest
   * `MAX_REMEMBERED_COLLECTED` deletions.
   */
  wasCollected(txId: string): boolean {
    return this.collected.has(txId);
  }

  /** The shared watch's callback. */
  onEvent(e: TxWatchEvent): void {
    if (this.txs.stopSignal.aborted) return;
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    if (e.value === null) {
      if (parsed.kind === 'tx') this.onCollected(parsed.id);
      return;
    }
    try {
      if (parsed.kind === 'tx') {
        const record = decodeTxRecord(e.value);
        if (record.state !== 'preparing') return;
        if (!record.participants.some((p) => p.name === this.name)) {
          // Frozen without us: work we hold for it can never count.
          const mine = this.txs.get(parsed.id);
          if (mine !== undefined) this.txs.step(mine, { type: 'excluded' });
          return;
        }
        // A frozen record naming us: prepare, even if the coordinator's hint never comes (after the delay).
        this.prepareLater(parsed.id, record.deadline);
      } else if (parsed.kind === 'decision') {
        this.observeDecision(parsed.id, decodeDecision(e.value));
      }
    } catch (err) {
      this.logger('error', 'corrupt value in the store', { key: e.key, error: err });
    }
  }

  /**
   * `tx/{id}` was deleted: garbage collection, which needs the ack of every
   * frozen participant, so an open transaction here without a logged "yes"
   * was never frozen with us. Its work can never count: aborted locally, as
   * an exclusion is.
   */
  private onCollected(txId: string): void {
    if (this.collected.size >= MAX_REMEMBERED_COLLECTED) this.collected.delete(this.collected.values().next().value as string);
    this.collected.add(txId);
    const tx = this.txs.get(txId);
    if (tx !== undefined && this.log.get(txId)?.vote?.vote !== 'yes') this.txs.step(tx, { type: 'excluded' });
  }

  /** A decision the store holds (watched, read, or a hint the store confirmed). */
  observeDecision(txId: string, decision: Decision): void {
    let tx = this.txs.get(txId);
    const record = this.log.get(txId);
    if (tx === undefined) {
      if (record === undefined || record.ackedAt !== undefined) return; // not ours, or done
      tx = this.txs.tryOpen(txId);
    }
    if (tx === undefined) return;
    // A commit needs our durable "yes" if we were frozen in: without one, it committed without us.
    if (decision === 'commit' && record?.vote?.vote !== 'yes') this.txs.step(tx, { type: 'excluded' });
    else this.txs.step(tx, { type: 'decisionObserved', decision });
  }

  /** A decision hint the store confirmed (see the header for an abort we have no record of). */
  async observeHintedDecision(txId: string, decision: Decision): Promise<void> {
    if (decision === 'abort' && this.log.get(txId) === undefined && this.txs.get(txId) === undefined) {
      const kv = await this.store.get(txKey(txId));
      const record = kv === null ? null : decodeTxRecord(kv.value);
      if (record?.state !== 'preparing' || !record.participants.some((p) => p.name === this.name)) return;
      const tx = this.txs.tryOpen(txId);
      if (tx !== undefined) this.txs.step(tx, { type: 'decisionObserved', decision });
      return;
    }
    this.observeDecision(txId, decision);
  }

  /** The watch lost history: re-read the decision of every open transaction. */
  async resyncAll(): Promise<void> {
    for (const tx of [...this.txs.values()]) {
      try {
        const kv = await this.store.get(decisionKey(tx.id));
        if (kv !== null) this.txs.step(tx, { type: 'decisionObserved', decision: decodeDecision(kv.value) });
      } catch (e) {
        this.logger('warn', 'resync read failed', { txId: tx.id, error: e });
      }
    }
  }

  private prepareLater(txId: string, deadline: number): void {
    if (this.delayed.has(txId)) return;
    const cancel = this.deps.timers.after(this.deps.prepareDelayMs, () => {
      this.delayed.delete(txId);
      if (this.held === undefined) this.prepareNow(txId, deadline);
      else if (this.held.size < this.deps.maxHeldPrepares) this.held.set(txId, deadline);
    });
    this.delayed.set(txId, cancel);
  }

  private prepareNow(txId: string, deadline: number): void {
    // By now the transaction may be decided (then the machine casts no vote) or finished here.
    const open = this.txs.get(txId);
    if (open !== undefined) return this.txs.step(open, { type: 'prepareRequested', deadline });
    if (this.isFinished(txId)) return;
    if (this.log.get(txId) !== undefined) return this.prepareOpened(txId, deadline);
    void this.txs.track(this.prepareUnknown(txId, deadline));
  }

  private prepareOpened(txId: string, deadline: number): void {
    const tx = this.txs.tryOpen(txId);
    if (tx !== undefined) this.txs.step(tx, { type: 'prepareRequested', deadline });
  }

  /**
   * A frozen record naming us, for a transaction we have no record of: our
   * "no" is due, unless the event is old. A watch that lagged (served by a
   * member cut off from the leader, then catching up) delivers records the
   * store has since collected, of transactions this log has compacted since:
   * taking one for a new prepare would write a "no" into a collected
   * transaction and abort, locally, one we committed. So the record must
   * still be in the store (found by the 2PC simulation; docs/SIM2PC.md).
   */
  private async prepareUnknown(txId: string, deadline: number): Promise<void> {
    let kv;
    try {
      kv = await this.store.get(txKey(txId));
    } catch (e) {
      // The deadline fills our vote with "no" if this was not stale; nothing is lost by waiting.
      this.logger('warn', 'could not check a watched frozen record; not preparing it', { txId, error: e });
      return;
    }
    const record = kv === null ? null : decodeTxRecord(kv.value);
    if (record?.state !== 'preparing' || !record.participants.some((p) => p.name === this.name)) return;
    const open = this.txs.get(txId); // opened meanwhile (work, a hint)
    if (open !== undefined) this.txs.step(open, { type: 'prepareRequested', deadline });
    else if (!this.isFinished(txId)) this.prepareOpened(txId, deadline);
  }

  private isFinished(txId: string): boolean {
    return this.log.get(txId)?.ackedAt !== undefined;
  }
}
