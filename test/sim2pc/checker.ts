/**
 * The 2PC invariants (docs/SIM2PC.md, "Checks"), judged on the store: every
 * committed entry once, in log order, into a mirror of the 2PC keys, with
 * every decision a bank applies and every outcome a client is told.
 */
import { decisionOfDone, decodeDoneRecord, decodeTxRecord, decodeVote, DONE_PREFIX, parseKey, txKey, verdictOf, voteKey, type Decision, type TxRecord, type Verdict, type Vote } from '../../coordinator/protocol/index.js';
import { decodeLine } from '../../participant/log-file.js';
import type { LogRecord } from '../../participant/log.js';
import type { KvApplied } from '../../store/kv/index.js';
import type { Entry } from '../../store/raft/index.js';
import { SafetyViolation } from '../sim/invariants.js';

interface TxFacts {
  /** The first decision ever written (the key, or a compacted record). */
  decision?: Decision;
  created: boolean;
  collected: boolean;
  /** The participant list once frozen (kept after collection). */
  frozen?: readonly string[];
  /** Participant name to the decision its bank applied. */
  readonly applied: Map<string, Decision>;
  /** Outcomes told to clients. */
  readonly told: Decision[];
}

export class Checker {
  constructor(
    private readonly counters: { inc(name: string): void },
    /** The vote on a participant's disk right now (what a crash would leave); undefined: check off. */
    private readonly durableVote: ((participant: string, txId: string) => LogRecord['vote']) | undefined,
    private readonly trace?: (line: string) => void,
  ) {}

  /** The 2PC keys as the store holds them, from the committed events. */
  readonly mirror = new Map<string, string>();
  readonly txs = new Map<string, TxFacts>();
  private readonly dataAt = new Map<number, string>();
  private maxApplied = 0;

  facts(id: string): TxFacts {
    let f = this.txs.get(id);
    if (f === undefined) this.txs.set(id, (f = { created: false, collected: false, applied: new Map(), told: [] }));
    return f;
  }

  onStoreApply(node: string, e: Entry, applied: KvApplied | undefined): void {
    const data = e.type === 'normal' ? e.data : `conf:${e.data}`;
    const seen = this.dataAt.get(e.index);
    if (seen !== undefined && seen !== data) throw new SafetyViolation('raft agreement', `${node} applied other data at index ${e.index}`);
    if (seen === undefined) this.dataAt.set(e.index, data);
    if (e.index <= this.maxApplied) return;
    this.maxApplied = e.index;
    for (const ev of applied?.events ?? []) {
      this.trace?.(`store r${ev.revision} i${e.index} ${ev.type} ${ev.key}${ev.value === null ? '' : ` = ${ev.value}`}`);
      if (ev.type === 'delete') this.onDelete(ev.key);
      else this.onPut(ev.key, ev.value as string, ev.revision);
    }
  }

  private onDelete(key: string): void {
    this.mirror.delete(key);
    const p = parseKey(key);
    if (p?.kind === 'tx') this.facts(p.id).collected = true;
  }

  private onPut(key: string, value: string, revision: number): void {
    if (key.startsWith(DONE_PREFIX)) {
      const done = decodeDoneRecord(value);
      this.recordDecision(done.id, decisionOfDone(done), `compacted record at revision ${revision}`);
      this.facts(done.id).frozen ??= done.participants.map((x) => x.name);
      this.mirror.set(key, value);
      return;
    }
    const p = parseKey(key);
    if (p === null) return;
    const f = this.facts(p.id);
    const before = this.mirror.get(key);
    this.mirror.set(key, value);
    if (f.collected && p.kind !== 'tx') this.counters.inc(`orphan ${p.kind} keys written after GC`);
    switch (p.kind) {
      case 'tx':
        if (f.collected) throw new SafetyViolation('stable decisions', `tx ${p.id} was begun again after it was collected`);
        f.created = true;
        if (before !== undefined && decodeTxRecord(before).state === 'preparing' && before !== value) {
          throw new SafetyViolation('stable votes', `tx ${p.id}: the frozen record changed`);
        }
        if (before === undefined || before !== value) {
          const record = decodeTxRecord(value);
          if (record.state === 'preparing') f.frozen = record.participants.map((x) => x.name);
        }
        return;
      case 'vote': {
        const v = decodeVote(value);
        // A vote recreated after collection can never count (and its record may be compacted since).
        if (this.durableVote !== undefined && !f.collected && v.vote === 'yes' && v.by === p.participant && this.durableVote(p.participant, p.id)?.vote !== 'yes') {
          throw new SafetyViolation('durable votes', `${p.participant}'s "yes" for ${p.id} reached the store before it was on its disk`);
        }
        if (before !== undefined && !f.collected) {
          const a = decodeVote(before);
          const b = decodeVote(value);
          if (a.vote !== b.vote || a.by !== b.by) throw new SafetyViolation('stable votes', `tx ${p.id}: the vote of ${p.participant} changed from ${before} to ${value}`);
        }
        return;
      }
      case 'decision':
        this.recordDecision(p.id, value as Decision, `decision key at revision ${revision}${f.collected ? ', after the transaction was collected' : ''}`);
        if (!f.collected) this.checkCommitRule(p.id, value as Decision);
        return;
      case 'ack':
        return;
    }
  }

  private recordDecision(id: string, d: Decision, where: string): void {
    const f = this.facts(id);
    if (f.decision !== undefined && f.decision !== d) throw new SafetyViolation('stable decisions', `tx ${id}: decided ${f.decision}, then ${d} (${where})`);
    f.decision = d;
    for (const [p, applied] of f.applied) if (applied !== d) throw new SafetyViolation('atomicity', `tx ${id}: ${p} applied ${applied}, the decision is ${d}`);
    for (const told of f.told) if (told !== d) throw new SafetyViolation('client outcomes', `tx ${id}: a client was told ${told}, the decision is ${d}`);
  }

  /** The decision only records the commit rule's answer over the frozen list's votes. */
  private checkCommitRule(id: string, d: Decision): void {
    const raw = this.mirror.get(txKey(id));
    if (raw === undefined) throw new SafetyViolation('commit rule', `tx ${id}: decision ${d} written with no transaction record`);
    const record = decodeTxRecord(raw);
    if (record.state !== 'preparing') throw new SafetyViolation('commit rule', `tx ${id}: decision ${d} written before the participant list was frozen`);
    if (record.participants.length === 0) return; // nothing votes: the first decision written is the outcome
    const verdict = this.verdict(id, record);
    if (verdict !== d) throw new SafetyViolation('commit rule', `tx ${id}: decision ${d}, but the votes say ${verdict}`);
  }

  /** The commit rule over the votes the store holds now; pending while the record is not frozen. */
  private verdict(id: string, record: TxRecord): Verdict {
    const votes = new Map<string, Vote>();
    for (const { name } of record.participants) {
      const raw = this.mirror.get(voteKey(id, name));
      if (raw !== undefined) votes.set(name, decodeVote(raw));
    }
    return verdictOf(record, votes, undefined);
  }

  /** A bank applied a decision (durably). */
  onApplied(participant: string, id: string, d: Decision): void {
    const f = this.facts(id);
    const before = f.applied.get(participant);
    if (before !== undefined && before !== d) throw new SafetyViolation('atomicity', `tx ${id}: ${participant} applied ${before}, then ${d}`);
    f.applied.set(participant, d);
    if (f.decision !== undefined && f.decision !== d) throw new SafetyViolation('atomicity', `tx ${id}: ${participant} applied ${d}, the decision is ${f.decision}`);
    // An abort may come first (a "no" aborts at once); a commit only over a recorded decision.
    if (d === 'commit' && f.decision === undefined) throw new SafetyViolation('atomicity', `tx ${id}: ${participant} applied commit before any decision was recorded`);
  }

  /** A coordinator told a client an outcome (`already_committed` counts as commit). */
  onOutcome(coordinator: string, id: string, told: Decision): void {
    const f = this.facts(id);
    f.told.push(told);
    if (f.decision !== undefined && f.decision !== told) throw new SafetyViolation('client outcomes', `tx ${id}: ${coordinator} told a client ${told}, the decision is ${f.decision}`);
    // The commit point is the votes: what the client hears must already follow from the store.
    const raw = this.mirror.get(txKey(id));
    if (f.decision === undefined && raw !== undefined) {
      const verdict = this.verdict(id, decodeTxRecord(raw));
      if (verdict !== told) throw new SafetyViolation('client outcomes', `tx ${id}: ${coordinator} told a client ${told} while the store says ${verdict}`);
    }
  }

  /** Keys still under `tx/` (a quiescent run has collected everything). */
  liveTxKeys(): string[] {
    return [...this.mirror.keys()].filter((k) => k.startsWith('tx/'));
  }

  /**
   * The end-of-run atomicity check: for every transaction, every frozen
   * participant applied the decision, except one that has no record of the
   * transaction at all under an abort (frozen in without work, its unsynced
   * "no" lost in a crash: it has nothing to apply); a participant outside
   * the list applied at most an abort (work it was given, never enlisted for).
   */
  checkFinal(hasRecord: (participant: string, id: string) => boolean): void {
    for (const [id, f] of this.txs) {
      if (!f.created) continue;
      if (f.decision === undefined) throw new SafetyViolation('liveness', `tx ${id} was never decided`);
      const frozen = f.frozen ?? [];
      for (const name of frozen) {
        const a = f.applied.get(name);
        if (a === undefined && f.decision === 'abort' && !hasRecord(name, id)) continue;
        if (a !== f.decision) throw new SafetyViolation('atomicity', `tx ${id}: decision ${f.decision}, ${name} applied ${a ?? 'nothing'}`);
      }
      for (const [name, a] of f.applied) {
        if (!frozen.includes(name) && a === 'commit') throw new SafetyViolation('atomicity', `tx ${id}: ${name} committed but is not in the frozen list`);
      }
    }
  }
}

/**
 * The vote of `txId` in the durable text of a participant log: what a crash
 * now would leave of it (participant/log-file.ts's lines, header first, the
 * newest line of a transaction winning).
 */
export function durableVote(text: string | undefined, txId: string): LogRecord['vote'] {
  let vote: LogRecord['vote'];
  // The last element is the unterminated tail (or ''), never a complete line: the real loader drops it too.
  for (const line of text?.split('\n').slice(1, -1) ?? []) {
    if (!line.includes(`"txId":"${txId}"`)) continue;
    const rec = JSON.parse(decodeLine(line) ?? 'null') as LogRecord | null;
    if (rec?.txId === txId) vote = rec.vote;
  }
  return vote;
}
