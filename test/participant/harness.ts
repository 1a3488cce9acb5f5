/**
 * A deterministic driver for the pure participant machine in tests: it
 * performs the effects with a real ParticipantLog on disk, a TxStore
 * (MemoryTxStore) and a scripted service, and feeds the results back.
 *
 * It checks the protocol's central ordering on every vote it sends: before a
 * `writeVote` reaches the store, a fresh instance of the log opened from disk
 * must already hold that vote.
 *
 * `crashBefore(effect)` kills the participant right before an effect: that
 * effect and everything after it are dropped. `restart()` builds a new
 * participant from the log on disk and the store, as a restarted process.
 */
import { CoordinatorMachine } from '../../coordinator/core/machine.js';
import { decisionKey, decodeDecision, decodeTxRecord, decodeVote, txKey, voteKey, type Decision, type JsonValue, type VoteValue } from '../../coordinator/protocol/kernel.js';
import { readTxSnapshot, type TxStore } from '../../coordinator/txstore/txstore.js';
import { ParticipantLog } from '../../participant/log.js';
import { ParticipantTxMachine, type ParticipantEffect, type ParticipantEvent, type ParticipantReply } from '../../participant/machine.js';
import { Driver } from '../coordinator/harness.js';

export const T0 = 1_700_000_000_000;

/** The service a participant wraps: its prepare answer, and a record of every callback. */
export class FakeService {
  readonly calls: string[] = [];
  answer: { vote: VoteValue; reason?: string } = { vote: 'yes' };
}

export class ParticipantDriver {
  readonly replies = new Map<string, ParticipantReply>();
  readonly effects: ParticipantEffect[] = [];
  readonly timers: number[] = [];
  helpRequests = 0;
  crashed = false;
  crashBefore: (e: ParticipantEffect) => boolean = () => false;
  /** How to help decide; by default, run the coordinator's machine from the store as `participant:{name}`. */
  onHelpDecide: () => Promise<void> = () => helpDecide(this.store, this.txId, `participant:${this.name}`, this.nowMs);
  nowMs = T0;
  readonly machine: ParticipantTxMachine;

  constructor(
    readonly name: string,
    readonly txId: string,
    readonly store: TxStore,
    readonly log: ParticipantLog,
    readonly service: FakeService,
  ) {
    this.machine = new ParticipantTxMachine(txId, log.get(txId), { name });
  }

  static async open(name: string, txId: string, store: TxStore, logPath: string, service = new FakeService()): Promise<ParticipantDriver> {
    return new ParticipantDriver(name, txId, store, await ParticipantLog.open({ path: logPath, participant: name }), service);
  }

  /** A restarted process: a new log instance from disk, a new machine, and the recovery event with the store's state. */
  async restart(nowMs = this.nowMs): Promise<ParticipantDriver> {
    const d = await ParticipantDriver.open(this.name, this.txId, this.store, this.log.path, this.service);
    d.nowMs = nowMs;
    await d.step({ type: 'recover', nowMs, stored: await readStored(this.store, this.txId, this.name) });
    return d;
  }

  async step(event: ParticipantEvent): Promise<void> {
    if (this.crashed) return;
    for (const e of this.machine.step(event)) await this.perform(e);
  }

  /** Plays the store watch for the decision key. */
  async observeDecision(): Promise<void> {
    const kv = await this.store.get(decisionKey(this.txId));
    if (kv !== null) await this.step({ type: 'decisionObserved', decision: decodeDecision(kv.value) });
  }

  private async perform(e: ParticipantEffect): Promise<void> {
    if (this.crashed) return;
    if (this.crashBefore(e)) {
      this.crashed = true;
      return;
    }
    this.effects.push(e);
    switch (e.type) {
      case 'logWork':
        return this.step({ type: 'logged', record: await this.log.recordWork(this.txId, e.work, this.nowMs) });
      case 'validate':
        this.service.calls.push('prepare');
        return this.step(this.service.answer.reason === undefined ? { type: 'validated', vote: this.service.answer.vote } : { type: 'validated', ...this.service.answer });
      case 'logVote':
        return this.step({ type: 'logged', record: await this.log.recordVote(this.txId, e.vote, e.reason, this.nowMs) });
      case 'writeVote': {
        const onDisk = (await ParticipantLog.open({ path: this.log.path, participant: this.name })).get(this.txId);
        if (onDisk?.vote?.vote !== decodeVote(e.value).vote) throw new Error(`vote sent before it was durable: ${e.value}`);
        const r = await this.store.casCreate(e.key, e.value);
        return this.step({ type: 'voteWritten', succeeded: r.succeeded, previous: r.previous });
      }
      case 'apply':
        this.service.calls.push(e.decision);
        return this.step({ type: 'applied', decision: e.decision });
      case 'logApplied':
        return this.step({ type: 'logged', record: await this.log.recordApplied(this.txId, e.decision, this.nowMs) });
      case 'writeAck':
        await this.store.casCreate(e.key, e.value);
        return this.step({ type: 'ackWritten' });
      case 'logAcked':
        return this.step({ type: 'logged', record: await this.log.recordAcked(this.txId, this.nowMs) });
      case 'restoreLocks':
        this.service.calls.push('restoreLocks');
        return;
      case 'setTimer':
        this.timers.push(e.atMs);
        return;
      case 'helpDecide':
        this.helpRequests++;
        await this.onHelpDecide();
        return this.observeDecision();
      case 'reply':
        this.replies.set(e.requestId, e.reply);
        return;
    }
  }

  async receiveWork(requestId: string, work: JsonValue): Promise<ParticipantReply | undefined> {
    await this.step({ type: 'workReceived', requestId, work });
    return this.replies.get(requestId);
  }
}

/** What recovery reads from the store for one participant. */
export async function readStored(store: TxStore, txId: string, name: string): Promise<{ vote: ReturnType<typeof decodeVote> | null; decision: Decision | null; deadline: number | null }> {
  const [vote, decision, tx] = await Promise.all([store.get(voteKey(txId, name)), store.get(decisionKey(txId)), store.get(txKey(txId))]);
  return {
    vote: vote === null ? null : decodeVote(vote.value),
    decision: decision === null ? null : decodeDecision(decision.value),
    deadline: tx === null ? null : decodeTxRecord(tx.value).deadline,
  };
}

/**
 * What `helpDecide` means: run the coordinator's own machine from a store
 * snapshot, past the deadline, with hints switched off. It freezes an active
 * record, fills missing votes with "no" by CAS and records the decision by
 * CAS: every step is safe to race with a live coordinator.
 */
export async function helpDecide(store: TxStore, txId: string, helperId: string, nowMs: number): Promise<void> {
  const d = new Driver(store, new CoordinatorMachine(await readTxSnapshot(store, txId), { coordinatorId: helperId }));
  d.onPrepare = async () => {};
  d.onDecision = async () => {};
  await d.step({ type: 'recover', nowMs });
  await d.observe();
}
