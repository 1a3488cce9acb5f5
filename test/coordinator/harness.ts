/**
 * A deterministic driver for the pure coordinator machine in tests: it
 * performs the machine's effects against a TxStore (MemoryTxStore in the
 * pure tests), feeds the results back, hands prepare/decision hints to
 * scripted participants, and stands in for the watch with `observe()`, which
 * feeds the machine everything the store holds (repeatedly, on purpose:
 * the machine must treat re-observations as no-ops).
 *
 * `crashAfterStoreWrites` makes the driver stop dead after that many store
 * writes, dropping every pending effect: a coordinator killed mid-commit.
 */
import { CoordinatorMachine, type CoordinatorEffect, type CoordinatorEvent, type CoordinatorReply } from '../../coordinator/core/machine.js';
import { casValueWithVote, guardedCreate, readTxSnapshot, type TxStore } from '../../coordinator/txstore/txstore.js';
import { ackKey, decodeVote, encodeAck, encodeVote, makeVote, txKey, voteKey, type Decision, type Participant, type TxRecord } from '../../coordinator/protocol/kernel.js';

export const T0 = 1_700_000_000_000;

export function record(names: readonly string[], overrides: Partial<TxRecord> = {}): TxRecord {
  return {
    participants: names.map((name, i) => ({ name, url: `http://127.0.0.1:${4000 + i}` })),
    state: 'active',
    deadline: T0 + 10_000,
    createdAt: T0,
    ...overrides,
  };
}

/** What a scripted participant does when asked to prepare. */
export type Script = 'yes' | 'no' | 'silent';

export class Driver {
  readonly replies = new Map<string, CoordinatorReply>();
  readonly log: CoordinatorEffect[] = [];
  readonly prepared: string[] = [];
  readonly told: { participant: string; decision: Decision }[] = [];
  readonly timers: number[] = [];
  finished: Decision | undefined;
  storeWrites = 0;
  crashed = false;
  crashAfterStoreWrites = Infinity;
  /** Participants that write their vote when asked, and ack when told. */
  scripts = new Map<string, Script>();
  autoAck = true;
  /** When set, prepare and decision hints go here instead of the scripts (real participant machines). */
  onPrepare: ((p: Participant) => Promise<void>) | undefined;
  onDecision: ((p: Participant, decision: Decision) => Promise<void>) | undefined;

  constructor(
    readonly store: TxStore,
    readonly machine: CoordinatorMachine,
  ) {}

  static async recover(store: TxStore, id: string, coordinatorId: string): Promise<Driver> {
    return new Driver(store, new CoordinatorMachine(await readTxSnapshot(store, id), { coordinatorId }));
  }

  async step(event: CoordinatorEvent): Promise<CoordinatorEffect[]> {
    if (this.crashed) return [];
    const effects = this.machine.step(event);
    for (const e of effects) await this.perform(e);
    return effects;
  }

  /** Plays the watch: every vote, decision and ack in the store, as events. */
  async observe(): Promise<void> {
    const snap = await readTxSnapshot(this.store, this.machine.id);
    for (const [participant, vote] of snap.votes) await this.step({ type: 'voteObserved', participant, vote });
    if (snap.decision !== undefined) await this.step({ type: 'decisionObserved', decision: snap.decision });
    for (const participant of snap.acks.keys()) await this.step({ type: 'ackObserved', participant });
  }

  private async perform(e: CoordinatorEffect): Promise<void> {
    if (this.crashed) return;
    this.log.push(e);
    switch (e.type) {
      case 'writeTx': {
        if (this.beforeWrite()) return;
        const r = e.expected === null ? { ...(await this.store.casCreate(e.key, e.value)), voteCreated: false } : await casValueWithVote(this.store, e.key, e.expected, e.value, e.withVote);
        if (e.withVote !== undefined) await this.step({ type: 'voteWritten', participant: e.withVote.participant, succeeded: r.voteCreated, previous: null });
        await this.step({ type: 'txWritten', value: e.value, succeeded: r.succeeded, previous: r.previous });
        return;
      }
      case 'writeVote': {
        if (this.beforeWrite()) return;
        const r = await guardedCreate(this.store, e.key, e.value, { key: txKey(this.machine.id), value: e.guard });
        await this.step(r.guardFailed ? { type: 'txObserved', raw: null } : { type: 'voteWritten', participant: e.participant, succeeded: r.succeeded, previous: r.previous });
        return;
      }
      case 'writeDecision': {
        if (this.beforeWrite()) return;
        const r = await guardedCreate(this.store, e.key, e.value, { key: txKey(this.machine.id), value: e.guard });
        await this.step(r.guardFailed ? { type: 'txObserved', raw: null } : { type: 'decisionWritten', succeeded: r.succeeded, previous: r.previous });
        return;
      }
      case 'sendPrepare':
        this.prepared.push(e.participant.name);
        if (this.onPrepare) await this.onPrepare(e.participant);
        else await this.participantVotes(e.participant);
        return;
      case 'sendDecision':
        this.told.push({ participant: e.participant.name, decision: e.decision });
        if (this.onDecision) await this.onDecision(e.participant, e.decision);
        else if (this.autoAck) await this.store.casCreate(ackKey(e.txId, e.participant.name), encodeAck(T0 + 1));
        return;
      case 'setTimer':
        this.timers.push(e.atMs);
        return;
      case 'reply':
        if (this.replies.has(e.requestId)) throw new Error(`second reply to ${e.requestId}`);
        this.replies.set(e.requestId, e.reply);
        return;
      case 'finished':
        this.finished = e.decision;
        return;
    }
  }

  /** A scripted participant writes its vote key (first writer wins), as a real one would after its durable prepare. */
  private async participantVotes(p: Participant): Promise<void> {
    const script = this.scripts.get(p.name) ?? 'silent';
    if (script === 'silent') return;
    const key = voteKey(this.machine.id, p.name);
    const r = await this.store.casCreate(key, encodeVote(makeVote(script, p.name, script === 'no' ? 'insufficient funds' : undefined)));
    if (!r.succeeded && r.previous !== null) decodeVote(r.previous); // must still be a valid vote
  }

  private beforeWrite(): boolean {
    if (this.storeWrites >= this.crashAfterStoreWrites) {
      this.crashed = true;
      return true;
    }
    this.storeWrites++;
    return false;
  }
}
