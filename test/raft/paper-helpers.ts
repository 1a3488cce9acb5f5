/**
 * Small helpers for the paper-keyed unit tests (paper-*.test.ts, features.test.ts):
 * build a single RawNode from hand-made storage, drive it through Ready the way
 * the contract says, and build messages by hand.
 */
import { SeededRandom } from '../../lib/random.js';
import {
  RawNode,
  emptySnapshot,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type Ready,
  type Snapshot,
} from '../../store/raft/index.js';
import type { AppendRequest, AppendResponse, Heartbeat, VoteRequest, VoteResponse } from '../../store/raft/messages.js';

/** The paper's algorithm: no PreVote, no CheckQuorum (they are tested on their own). */
export const PAPER: Partial<RaftConfig> = { electionTicks: 10, heartbeatTicks: 1, preVote: false, checkQuorum: false };

/** Normal entries at indexes 1..n with the given terms. */
export function ents(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: i + 1, term, type: 'normal' as const, data: `e${i + 1}` }));
}

/** One normal entry. */
export function ent(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data };
}

export interface NodeOptions {
  voters?: readonly NodeId[];
  learners?: readonly NodeId[];
  term?: number;
  vote?: NodeId;
  commit?: number;
  entries?: readonly Entry[];
  snapshot?: Snapshot;
  cfg?: Partial<RaftConfig>;
  seed?: number;
}

/** A node restarted from the given storage; by default a member of {1,2,3} with an empty log at term 0. */
export function newNode(id: NodeId, o: NodeOptions = {}): RawNode {
  const conf = { voters: [...(o.voters ?? ['1', '2', '3'])], learners: [...(o.learners ?? [])] };
  const snapshot = o.snapshot ?? emptySnapshot(conf);
  return new RawNode(
    { ...PAPER, ...o.cfg, id },
    {
      hardState: { term: o.term ?? 0, vote: o.vote ?? '', commit: o.commit ?? 0 },
      snapshot,
      entries: o.entries ?? [],
    },
    new SeededRandom(o.seed ?? 7),
  );
}

/** Handle every pending Ready (pretending to persist and apply it) and return them all. */
export function drainReadies(n: RawNode): Ready[] {
  const out: Ready[] = [];
  for (let i = 0; i < 100 && n.hasReady(); i++) {
    const rd = n.ready();
    out.push(rd);
    n.advance(rd);
  }
  return out;
}

/** Every message the node wants sent now. */
export function takeMsgs(n: RawNode): Message[] {
  return drainReadies(n).flatMap((rd) => [...rd.messages]);
}

/** The message interface(s) whose `type` admits T (VoteRequest for 'vote' and 'preVote'). */
export type MsgOf<T extends Message['type'], M = Message> = M extends { type: infer U } ? (T extends U ? M & { type: T } : never) : never;

export function ofType<T extends Message['type']>(msgs: readonly Message[], type: T): MsgOf<T>[] {
  return msgs.filter((m): m is MsgOf<T> => m.type === type);
}

export function appMsg(
  from: NodeId,
  to: NodeId,
  term: number,
  prevIndex: number,
  prevTerm: number,
  entries: readonly Entry[] = [],
  commit = 0,
): AppendRequest {
  return { type: 'app', from, to, term, prevIndex, prevTerm, entries, commit };
}

export function appResp(from: NodeId, to: NodeId, term: number, index: number, reject = false, hintIndex = 0, hintTerm = 0): AppendResponse {
  return { type: 'appResp', from, to, term, index, reject, hintIndex, hintTerm };
}

export function voteMsg(from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number, type: 'vote' | 'preVote' = 'vote', force = false): VoteRequest {
  return { type, from, to, term, lastLogIndex, lastLogTerm, force };
}

export function voteResp(from: NodeId, to: NodeId, term: number, reject = false, type: 'voteResp' | 'preVoteResp' = 'voteResp'): VoteResponse {
  return { type, from, to, term, reject };
}

export function heartbeat(from: NodeId, to: NodeId, term: number, commit = 0, readSeq = 0): Heartbeat {
  return { type: 'heartbeat', from, to, term, commit, readSeq };
}

/**
 * Make `n` (a member of voters {1,2,3} unless told) leader of the next term:
 * campaign, collect one granted vote per missing majority member, drain.
 * Returns the messages sent on becoming leader (the no-op appends).
 */
export function electLeader(n: RawNode): Message[] {
  n.campaign();
  const st = n.status();
  takeMsgs(n);
  const others = st.conf.voters.filter((v) => v !== n.id);
  for (const v of others) {
    if (n.status().role === 'leader') break;
    n.step(voteResp(v, n.id, st.term));
  }
  if (n.status().role !== 'leader') throw new Error(`${n.id} did not become leader`);
  return takeMsgs(n);
}

/** Entries of a node's in-memory log in [lo, hi]. */
export function logOf(n: RawNode, lo = n.status().firstIndex, hi = n.status().lastIndex): Entry[] {
  return n.entriesBetween(lo - 1, hi);
}

export function termsOf(entries: readonly Entry[]): number[] {
  return entries.map((e) => e.term);
}

/**
 * Deliver messages among `nodes` (starting with `initial`, messages already
 * taken out of a Ready) until none are left, handling every Ready in between;
 * messages to other ids, or refused by `filter`, are lost. Returns the
 * messages delivered, in order.
 */
export function pump(
  nodes: readonly RawNode[],
  o: { initial?: readonly Message[]; filter?: (m: Message) => boolean; maxRounds?: number } = {},
): Message[] {
  const byId = new Map(nodes.map((n) => [n.id, n] as const));
  const delivered: Message[] = [];
  let msgs: Message[] = [...(o.initial ?? [])];
  for (let round = 0; round < (o.maxRounds ?? 1000); round++) {
    msgs.push(...nodes.flatMap((n) => takeMsgs(n)));
    if (msgs.length === 0) return delivered;
    for (const m of msgs) {
      const to = byId.get(m.to);
      if (to === undefined || (o.filter !== undefined && !o.filter(m))) continue;
      to.step(m);
      delivered.push(m);
    }
    msgs = [];
  }
  throw new Error('no quiescence');
}
