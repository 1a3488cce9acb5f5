/**
 * The 2PC protocol in one module: the key layout, the value codecs with
 * validation, and the commit rule. Coordinators and participants both import
 * it, so they can never disagree about where a vote lives or what it means.
 * The layout is the one in docs/API.md ("The 2PC key layout"), kept
 * exactly so the same transactions run on the built-in store and on etcd:
 *
 *   tx/{id}                        JSON TxRecord; state active -> preparing by CAS
 *   tx/{id}/vote/{participant}     JSON Vote; CAS create-if-absent only
 *   tx/{id}/decision               "commit" | "abort" (plain text); CAS create-if-absent only
 *   tx/{id}/ack/{participant}      applied time, epoch ms as decimal text
 *
 * Pure: no I/O. Decoders validate everything, because a value in the store
 * may have been written by another version, another tool, or a person.
 */
import { AppError } from '../../lib/errors.js';

/** Named limits of the protocol, each with its unit. Encoders and decoders enforce them. */
export const PROTOCOL_LIMITS = Object.freeze({
  maxTxIdChars: 128,
  maxParticipantNameChars: 64,
  maxUrlChars: 2048,
  /** Hard cap on a frozen list; a coordinator may configure a lower one. */
  maxParticipants: 256,
  maxVoteByChars: 128,
  maxReasonChars: 1024,
  /** Serialized size of `metadata`, in UTF-16 code units (JSON.stringify length). */
  maxMetadataChars: 16 * 1024,
});

/** Ids and names become key segments, so they may not contain '/'. First char alphanumeric. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const TX_PREFIX = 'tx/';

export type VoteValue = 'yes' | 'no';
export type Decision = 'commit' | 'abort';
export type TxState = 'active' | 'preparing';
/** The commit rule's answer; 'pending' means the votes do not decide it (yet). */
export type Verdict = Decision | 'pending';

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type JsonObject = { readonly [key: string]: JsonValue };

export interface Participant {
  readonly name: string;
  readonly url: string;
}

export interface TxRecord {
  readonly participants: readonly Participant[];
  readonly state: TxState;
  /** Epoch ms after which missing votes are filled with "no". */
  readonly deadline: number;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly metadata?: JsonObject;
}

export interface Vote {
  readonly vote: VoteValue;
  /** The participant's name, or the id of the coordinator that filled a missing vote. */
  readonly by: string;
  readonly reason?: string;
}

/**
 * A store value that does not decode, or an argument that cannot be encoded.
 * Encoding errors come from callers (bad input: 400); decoding errors mean the
 * store holds something this protocol never writes (corrupt_value: 500).
 */
export class ProtocolError extends AppError {
  constructor(code: 'invalid_tx_id' | 'invalid_participant' | 'invalid_argument' | 'corrupt_value', message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(code, code === 'corrupt_value' ? 500 : 400, message, details);
    this.name = 'ProtocolError';
  }
}

// ---------------------------------------------------------------------------
// Keys

export function isValidTxId(id: string): boolean {
  return id.length <= PROTOCOL_LIMITS.maxTxIdChars && SEGMENT.test(id);
}

export function isValidParticipantName(name: string): boolean {
  return name.length <= PROTOCOL_LIMITS.maxParticipantNameChars && SEGMENT.test(name);
}

export function assertTxId(id: string): void {
  if (!isValidTxId(id)) {
    throw new ProtocolError('invalid_tx_id', `transaction id must match ${SEGMENT.source} and be at most ${PROTOCOL_LIMITS.maxTxIdChars} characters`, { id });
  }
}

function assertName(name: string): void {
  if (!isValidParticipantName(name)) {
    throw new ProtocolError('invalid_participant', `participant name must match ${SEGMENT.source} and be at most ${PROTOCOL_LIMITS.maxParticipantNameChars} characters`, { name });
  }
}

export function txKey(id: string): string {
  assertTxId(id);
  return `${TX_PREFIX}${id}`;
}

/** Every key of one transaction except `tx/{id}` itself starts with this. */
export function txChildPrefix(id: string): string {
  return `${txKey(id)}/`;
}

export function voteKey(id: string, participant: string): string {
  assertName(participant);
  return `${txChildPrefix(id)}vote/${participant}`;
}

export function decisionKey(id: string): string {
  return `${txChildPrefix(id)}decision`;
}

export function ackKey(id: string, participant: string): string {
  assertName(participant);
  return `${txChildPrefix(id)}ack/${participant}`;
}

/**
 * What a participant's watch of `tx/` needs (a key pattern per kind, `*` one
 * segment): the records (a freeze is a prepare request; a deletion, a
 * collection) and the decisions; not every other participant's votes and
 * acks, which are most of the events.
 */
export const PARTICIPANT_WATCH_MATCH: readonly string[] = [`${TX_PREFIX}*`, `${TX_PREFIX}*/decision`];

export type ParsedKey =
  | { readonly kind: 'tx'; readonly id: string }
  | { readonly kind: 'vote'; readonly id: string; readonly participant: string }
  | { readonly kind: 'decision'; readonly id: string }
  | { readonly kind: 'ack'; readonly id: string; readonly participant: string };

/** The inverse of the key functions; null for any key outside the layout (watchers skip those). */
export function parseKey(key: string): ParsedKey | null {
  if (!key.startsWith(TX_PREFIX)) return null;
  const parts = key.slice(TX_PREFIX.length).split('/');
  const id = parts[0];
  if (id === undefined || !isValidTxId(id)) return null;
  if (parts.length === 1) return { kind: 'tx', id };
  if (parts.length === 2 && parts[1] === 'decision') return { kind: 'decision', id };
  const participant = parts[2];
  if (parts.length !== 3 || participant === undefined || !isValidParticipantName(participant)) return null;
  if (parts[1] === 'vote') return { kind: 'vote', id, participant };
  if (parts[1] === 'ack') return { kind: 'ack', id, participant };
  return null;
}

// ---------------------------------------------------------------------------
// Validation helpers

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ProtocolError('corrupt_value', `${what} is not JSON`, { value: raw.slice(0, 200) });
  }
}

function isEpochMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function urlProblem(url: unknown): string | null {
  if (typeof url !== 'string' || url.length === 0 || url.length > PROTOCOL_LIMITS.maxUrlChars) return `url must be a string of 1 to ${PROTOCOL_LIMITS.maxUrlChars} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'url is not a valid URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'url must be http or https';
  return null;
}

/** Why `p` is not a valid participant, or null. */
export function participantProblem(p: unknown): string | null {
  if (!isObject(p)) return 'participant must be an object {name, url}';
  if (typeof p['name'] !== 'string' || !isValidParticipantName(p['name'])) {
    return `participant name must match ${SEGMENT.source} and be at most ${PROTOCOL_LIMITS.maxParticipantNameChars} characters`;
  }
  return urlProblem(p['url']);
}

/** Validates a participant from outside (the enlist request): throws invalid_participant (400). */
export function toParticipant(p: unknown): Participant {
  const problem = participantProblem(p);
  if (problem !== null) throw new ProtocolError('invalid_participant', problem);
  const o = p as Record<string, unknown>;
  return { name: o['name'] as string, url: o['url'] as string };
}

/** Why `record` is not a valid TxRecord, or null. Used by both encoder and decoder. */
function txRecordProblem(v: unknown): string | null {
  if (!isObject(v)) return 'tx record must be an object';
  const { participants, state, deadline, createdAt, metadata } = v;
  if (!Array.isArray(participants)) return 'participants must be an array';
  if (participants.length > PROTOCOL_LIMITS.maxParticipants) return `at most ${PROTOCOL_LIMITS.maxParticipants} participants`;
  const names = new Set<string>();
  for (const p of participants) {
    const problem = participantProblem(p);
    if (problem !== null) return problem;
    const name = (p as Participant).name;
    if (names.has(name)) return `participant ${name} appears twice`;
    names.add(name);
  }
  if (state !== 'active' && state !== 'preparing') return 'state must be "active" or "preparing"';
  if (!isEpochMs(deadline)) return 'deadline must be epoch milliseconds';
  if (!isEpochMs(createdAt)) return 'createdAt must be epoch milliseconds';
  if (metadata !== undefined) {
    if (!isObject(metadata)) return 'metadata must be an object';
    if (JSON.stringify(metadata).length > PROTOCOL_LIMITS.maxMetadataChars) return `metadata is over ${PROTOCOL_LIMITS.maxMetadataChars} characters`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Codecs

/** Serializes with a fixed field order, so equal records encode to equal strings (CAS compares strings). */
export function encodeTxRecord(record: TxRecord): string {
  const problem = txRecordProblem(record);
  if (problem !== null) throw new ProtocolError('invalid_argument', problem);
  const out: Record<string, unknown> = {
    participants: record.participants.map((p) => ({ name: p.name, url: p.url })),
    state: record.state,
    deadline: record.deadline,
    createdAt: record.createdAt,
  };
  if (record.metadata !== undefined) out['metadata'] = record.metadata;
  return JSON.stringify(out);
}

export function decodeTxRecord(raw: string): TxRecord {
  const v = parseJson(raw, 'tx record');
  const problem = txRecordProblem(v);
  if (problem !== null) throw new ProtocolError('corrupt_value', `tx record: ${problem}`, { value: raw.slice(0, 200) });
  const o = v as Record<string, unknown>;
  const record: TxRecord = {
    participants: (o['participants'] as Participant[]).map((p) => ({ name: p.name, url: p.url })),
    state: o['state'] as TxState,
    deadline: o['deadline'] as number,
    createdAt: o['createdAt'] as number,
  };
  return o['metadata'] === undefined ? record : { ...record, metadata: o['metadata'] as JsonObject };
}

function voteProblem(v: unknown): string | null {
  if (!isObject(v)) return 'vote must be an object';
  if (v['vote'] !== 'yes' && v['vote'] !== 'no') return 'vote must be "yes" or "no"';
  const by = v['by'];
  if (typeof by !== 'string' || by.length === 0 || by.length > PROTOCOL_LIMITS.maxVoteByChars) return `by must be a string of 1 to ${PROTOCOL_LIMITS.maxVoteByChars} characters`;
  const reason = v['reason'];
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > PROTOCOL_LIMITS.maxReasonChars)) return `reason must be a string of at most ${PROTOCOL_LIMITS.maxReasonChars} characters`;
  return null;
}

/** A reason longer than the limit is cut, not refused: it is for people, and a vote must not fail over prose. */
export function makeVote(vote: VoteValue, by: string, reason?: string): Vote {
  if (reason === undefined) return { vote, by };
  return { vote, by, reason: reason.slice(0, PROTOCOL_LIMITS.maxReasonChars) };
}

export function encodeVote(vote: Vote): string {
  const problem = voteProblem(vote);
  if (problem !== null) throw new ProtocolError('invalid_argument', problem);
  return JSON.stringify(vote.reason === undefined ? { vote: vote.vote, by: vote.by } : { vote: vote.vote, by: vote.by, reason: vote.reason });
}

export function decodeVote(raw: string): Vote {
  const v = parseJson(raw, 'vote');
  const problem = voteProblem(v);
  if (problem !== null) throw new ProtocolError('corrupt_value', `vote: ${problem}`, { value: raw.slice(0, 200) });
  const o = v as Record<string, unknown>;
  return makeVote(o['vote'] as VoteValue, o['by'] as string, o['reason'] as string | undefined);
}

/** The decision key holds plain text, not JSON: `commit` or `abort` (the same bytes on etcd). */
export function encodeDecision(decision: Decision): string {
  if (decision !== 'commit' && decision !== 'abort') throw new ProtocolError('invalid_argument', 'decision must be "commit" or "abort"');
  return decision;
}

export function decodeDecision(raw: string): Decision {
  if (raw === 'commit' || raw === 'abort') return raw;
  throw new ProtocolError('corrupt_value', 'decision must be "commit" or "abort"', { value: raw.slice(0, 200) });
}

/** The ack records when the participant applied the decision: epoch ms as decimal text. */
export function encodeAck(appliedAtMs: number): string {
  if (!isEpochMs(appliedAtMs)) throw new ProtocolError('invalid_argument', 'ack time must be epoch milliseconds');
  return String(appliedAtMs);
}

export function decodeAck(raw: string): number {
  const n = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!isEpochMs(n)) throw new ProtocolError('corrupt_value', 'ack must be epoch milliseconds', { value: raw.slice(0, 200) });
  return n;
}

// ---------------------------------------------------------------------------
// The commit rule (docs/API.md, "The commit point")

/**
 * The commit rule as a pure function of the frozen participant list and the
 * votes in the store. A transaction is committed exactly when every frozen
 * participant's vote is "yes"; one "no" aborts it even while other votes are
 * missing. Votes of names outside the frozen list are ignored: they cannot
 * change the outcome.
 *
 * With an empty list nothing can vote, so the votes decide nothing and this
 * returns 'pending': the decision key, written by CAS create-if-absent, is
 * then the whole outcome (commit writes "commit", abort and the deadline
 * write "abort", and the first writer wins). Nobody applies anything in such
 * a transaction, so atomicity is not at stake; the alternative, "vacuously
 * committed at the freeze", would make it impossible to abort an empty
 * transaction at all.
 */
export function decide(frozenParticipants: readonly string[], votes: ReadonlyMap<string, { readonly vote: VoteValue }>): Verdict {
  if (frozenParticipants.length === 0) return 'pending';
  let missing = false;
  for (const name of frozenParticipants) {
    const v = votes.get(name);
    if (v === undefined) missing = true;
    else if (v.vote === 'no') return 'abort';
  }
  return missing ? 'pending' : 'commit';
}

/** The participant names a record froze, or null while it is absent or still active (nothing is decided by votes then). */
export function frozenNames(record: TxRecord | null | undefined): string[] | null {
  return record?.state === 'preparing' ? record.participants.map((p) => p.name) : null;
}

/**
 * The verdict of a transaction as the store shows it, the one place it is
 * computed: the decision key when written (it only records the rule's
 * answer), else the commit rule over the frozen record's votes, else
 * pending (no record, or not frozen yet).
 */
export function verdictOf(record: TxRecord | null | undefined, votes: ReadonlyMap<string, { readonly vote: VoteValue }>, decision: Decision | undefined): Verdict {
  if (decision !== undefined) return decision;
  const frozen = frozenNames(record);
  return frozen === null ? 'pending' : decide(frozen, votes);
}

// ---------------------------------------------------------------------------
// A transaction's keys read together

/** Everything the store holds about one transaction, read at one revision. */
export interface TxSnapshot {
  readonly id: string;
  /** The tx record and its exact stored text (CAS compares the text). Null: no such transaction. */
  readonly tx: { readonly raw: string; readonly record: TxRecord } | null;
  readonly votes: ReadonlyMap<string, Vote>;
  readonly decision: Decision | undefined;
  /** Participant name to applied time. */
  readonly acks: ReadonlyMap<string, number>;
  /** The store revision the snapshot was read at; watch from revision + 1. */
  readonly revision: number;
}

/**
 * Builds a snapshot from the key-values under `tx/{id}` (one range at one
 * revision). Keys of other transactions that share the prefix (tx/ab vs
 * tx/abc) are skipped, as are keys outside the layout.
 */
export function snapshotFromKvs(id: string, kvs: Iterable<{ readonly key: string; readonly value: string }>, revision: number): TxSnapshot {
  let tx: TxSnapshot['tx'] = null;
  const votes = new Map<string, Vote>();
  const acks = new Map<string, number>();
  let decision: Decision | undefined;
  for (const { key, value } of kvs) {
    const parsed = parseKey(key);
    if (parsed === null || parsed.id !== id) continue;
    switch (parsed.kind) {
      case 'tx':
        tx = { raw: value, record: decodeTxRecord(value) };
        break;
      case 'vote':
        votes.set(parsed.participant, decodeVote(value));
        break;
      case 'decision':
        decision = decodeDecision(value);
        break;
      case 'ack':
        acks.set(parsed.participant, decodeAck(value));
        break;
    }
  }
  return { id, tx, votes, decision, acks, revision };
}

export type ListedState = 'active' | 'preparing' | 'committed' | 'aborted' | 'in-doubt';

/**
 * The state a listing shows. Committed or aborted once the outcome is known
 * (decision key, or the votes alone); in-doubt when the deadline has passed
 * and nothing decides it yet, which is what the recovery loop looks for.
 */
export function listedState(snapshot: TxSnapshot, nowMs: number): ListedState | null {
  if (snapshot.tx === null) return null;
  const { record } = snapshot.tx;
  const verdict = verdictOf(record, snapshot.votes, snapshot.decision);
  if (verdict === 'commit') return 'committed';
  if (verdict === 'abort') return 'aborted';
  if (nowMs >= record.deadline) return 'in-doubt';
  return record.state;
}
