/**
 * The compacted record a collected transaction leaves behind, so that `GET`
 * (and a repeated commit or abort) can still answer for a retention time
 * after garbage collection removed the `tx/{id}` keys:
 *
 *   txdone/{id}   JSON DoneRecord, attached to a lease that expires after the retention time
 *
 * It lives outside `tx/` so watchers of the 2PC layout never see it, and it
 * is written in the same store txn that deletes the transaction's keys, so a
 * reader finds one or the other, never neither (until retention ends).
 */
import {
  decide,
  isValidParticipantName,
  isValidTxId,
  PROTOCOL_LIMITS,
  ProtocolError,
  txKey,
  type Decision,
  type JsonObject,
  type Participant,
  type TxSnapshot,
  type Vote,
} from './kernel.js';

export const DONE_PREFIX = 'txdone/';

export function doneKey(id: string): string {
  txKey(id); // validates
  return `${DONE_PREFIX}${id}`;
}

export interface DoneRecord {
  readonly id: string;
  readonly outcome: 'committed' | 'aborted';
  readonly participants: readonly Participant[];
  readonly votes: Readonly<Record<string, Vote>>;
  /** Participant name to applied time (epoch ms). */
  readonly acks: Readonly<Record<string, number>>;
  readonly createdAt: number;
  readonly deadline: number;
  /** Epoch ms when the keys were collected. */
  readonly collectedAt: number;
  readonly metadata?: JsonObject;
}

/**
 * The compacted record of a finished snapshot: decided, and acknowledged by
 * every frozen participant. Null when the snapshot is not finished (then it
 * must not be collected: a participant still needs the decision key).
 */
export function doneRecordOf(snapshot: TxSnapshot, collectedAt: number): DoneRecord | null {
  const tx = snapshot.tx;
  if (tx === null || tx.record.state !== 'preparing' || snapshot.decision === undefined) return null;
  const names = tx.record.participants.map((p) => p.name);
  if (!names.every((n) => snapshot.acks.has(n))) return null;
  const verdict = decide(names, snapshot.votes);
  if (verdict !== 'pending' && verdict !== snapshot.decision) return null; // never compact a contradiction
  const votes: Record<string, Vote> = {};
  const acks: Record<string, number> = {};
  for (const n of names) {
    const v = snapshot.votes.get(n);
    if (v !== undefined) votes[n] = v;
    acks[n] = snapshot.acks.get(n) as number;
  }
  const base: DoneRecord = {
    id: snapshot.id,
    outcome: snapshot.decision === 'commit' ? 'committed' : 'aborted',
    participants: tx.record.participants,
    votes,
    acks,
    createdAt: tx.record.createdAt,
    deadline: tx.record.deadline,
    collectedAt,
  };
  return tx.record.metadata === undefined ? base : { ...base, metadata: tx.record.metadata };
}

export function encodeDoneRecord(r: DoneRecord): string {
  return JSON.stringify(r);
}

export function decisionOfDone(r: DoneRecord): Decision {
  return r.outcome === 'committed' ? 'commit' : 'abort';
}

export function decodeDoneRecord(raw: string): DoneRecord {
  const bad = (why: string): never => {
    throw new ProtocolError('corrupt_value', `compacted record: ${why}`, { value: raw.slice(0, 200) });
  };
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not an object');
  const o = v as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || !isValidTxId(o['id'])) bad('bad id');
  if (o['outcome'] !== 'committed' && o['outcome'] !== 'aborted') bad('bad outcome');
  const ps = o['participants'];
  if (!Array.isArray(ps) || ps.length > PROTOCOL_LIMITS.maxParticipants) return bad('bad participants');
  for (const p of ps as unknown[]) {
    const q = p as Record<string, unknown> | null;
    if (typeof q !== 'object' || q === null || typeof q['name'] !== 'string' || !isValidParticipantName(q['name']) || typeof q['url'] !== 'string') bad('bad participant');
  }
  for (const f of ['votes', 'acks'] as const) if (typeof o[f] !== 'object' || o[f] === null || Array.isArray(o[f])) bad(`bad ${f}`);
  for (const f of ['createdAt', 'deadline', 'collectedAt'] as const) if (typeof o[f] !== 'number' || !Number.isSafeInteger(o[f])) bad(`bad ${f}`);
  return o as unknown as DoneRecord;
}
