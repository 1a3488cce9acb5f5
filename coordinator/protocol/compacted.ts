/**
 * The compacted record a collected transaction leaves behind, so that a
 * repeated commit, abort or keyed begin (and GET) can still answer for a
 * retention time after garbage collection removed the `tx/{id}` keys:
 *
 *   txdone/{id}   compact JSON (below), attached to a retention lease
 *
 * It lives outside `tx/` so watchers of the 2PC layout never see it, and it
 * is written in the same store txn that deletes the transaction's keys, so a
 * reader finds one or the other, never neither (until retention ends).
 *
 * It keeps only what those answers need (docs/2PC.md, "Garbage collection"):
 * the id, the outcome, the frozen participant names (a late participant
 * finds itself and the outcome), the votes that are not implied (a commit
 * means every participant voted yes by itself; an abort keeps who voted yes
 * and the first "no" with its reason, which the outcome's `reason` quotes),
 * the timeout, the deadline and the collection time:
 *
 *   {"v":2,"id":"t…","o":"c","p":["a","b"],"t":10000,"d":1765…,"c":1765…}
 *   {"v":2,"id":"t…","o":"a","p":["a","b"],"y":["a"],"n":{"name":"b","by":"b","reason":"…"},"t":…,"d":…,"c":…}
 *
 * Participant URLs, ack times, other "no" votes' reasons and metadata are not
 * kept: a collected transaction reads back with `url: ''`, every
 * participant's ack at `collectedAt` (each had acked by then, or it would
 * not have been collected; the times are not kept) and no metadata. Typically about 130 bytes with its key, against 370 before;
 * at most COMPACT_RECORD_MAX_BYTES. Records written in the first format
 * (no `v`) still decode.
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

/**
 * An upper bound of one record's UTF-8 bytes with its key, for the
 * coordinator's maximum participants: id, names, yes list, one "no" with
 * its reason, and the numbers.
 */
export function compactRecordMaxBytes(maxParticipants: number): number {
  const L = PROTOCOL_LIMITS;
  const name = L.maxParticipantNameChars + 3;
  return 2 * (L.maxTxIdChars + 8) + 2 * maxParticipants * name + L.maxVoteByChars + 4 * L.maxReasonChars + 200;
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

/** The compact form of a finished record (see the top of this file). */
export function encodeDoneRecord(r: DoneRecord): string {
  const names = r.participants.map((p) => p.name);
  const base = { v: 2, id: r.id, o: r.outcome === 'committed' ? 'c' : 'a', p: names };
  const times = { t: r.deadline - r.createdAt, d: r.deadline, c: r.collectedAt };
  if (r.outcome === 'committed') return JSON.stringify({ ...base, ...times });
  const yes = names.filter((n) => r.votes[n]?.vote === 'yes');
  const firstNo = names.find((n) => r.votes[n]?.vote === 'no');
  const v = firstNo === undefined ? undefined : r.votes[firstNo];
  const no = v === undefined || firstNo === undefined ? undefined : { name: firstNo, by: v.by, ...(v.reason === undefined ? {} : { reason: v.reason }) };
  return JSON.stringify({ ...base, y: yes, ...(no === undefined ? {} : { n: no }), ...times });
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
  if (o['v'] === 2) return decodeCompact(o, bad);
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

/** The compact form back to a DoneRecord: implied votes filled in, dropped fields empty. */
function decodeCompact(o: Record<string, unknown>, bad: (why: string) => never): DoneRecord {
  const outcome = o['o'] === 'c' ? 'committed' : o['o'] === 'a' ? 'aborted' : bad('bad outcome');
  const names = nameList(o['p'], bad);
  for (const f of ['t', 'd', 'c'] as const) if (typeof o[f] !== 'number' || !Number.isSafeInteger(o[f])) bad(`bad ${f}`);
  const votes: Record<string, Vote> = {};
  if (outcome === 'committed') {
    for (const n of names) votes[n] = { vote: 'yes', by: n };
  } else {
    for (const n of nameList(o['y'] ?? [], bad)) votes[n] = { vote: 'yes', by: n };
    const no = o['n'] as Record<string, unknown> | undefined;
    if (no !== undefined) {
      if (typeof no !== 'object' || no === null || typeof no['name'] !== 'string' || typeof no['by'] !== 'string') return bad('bad no vote');
      if (no['reason'] !== undefined && typeof no['reason'] !== 'string') bad('bad no vote reason');
      votes[no['name']] = { vote: 'no', by: no['by'], ...(typeof no['reason'] === 'string' ? { reason: no['reason'] } : {}) };
    }
  }
  const deadline = o['d'] as number;
  const collectedAt = o['c'] as number;
  return {
    id: o['id'] as string,
    outcome,
    participants: names.map((name) => ({ name, url: '' })),
    votes,
    acks: Object.fromEntries(names.map((n) => [n, collectedAt])),
    createdAt: deadline - (o['t'] as number),
    deadline,
    collectedAt,
  };
}

function nameList(raw: unknown, bad: (why: string) => never): string[] {
  if (!Array.isArray(raw) || raw.length > PROTOCOL_LIMITS.maxParticipants) return bad('bad participants');
  for (const n of raw as unknown[]) if (typeof n !== 'string' || !isValidParticipantName(n)) bad('bad participant');
  return raw as string[];
}
