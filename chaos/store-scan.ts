/**
 * The store's final word on every transaction, read at the end of a run:
 * the live keys under `tx/` and the compacted records under `txdone/` that
 * garbage collection leaves (docs/2PC.md). For each transaction: its
 * outcome, or "open" when nothing decides it yet, and whether the decision
 * it records agrees with its votes (the commit rule: commit exactly when
 * every frozen participant voted yes).
 */
import { decodeDoneRecord, DONE_PREFIX } from '../coordinator/protocol/index.js';
import { decide, decodeDecision, decodeTxRecord, decodeVote, frozenNames, parseKey, TX_PREFIX, verdictOf, type Decision, type TxRecord, type Vote } from '../coordinator/protocol/index.js';
import { rangeAll, type TxStore } from '../coordinator/txstore/index.js';
import type { Violation } from './record.js';

export type StoreOutcome = 'committed' | 'aborted' | 'open';

export interface ScannedTx {
  readonly id: string;
  readonly outcome: StoreOutcome;
  /** live: keys under tx/; collected: the compacted record. */
  readonly source: 'live' | 'collected';
  readonly participants: readonly string[];
  readonly deadline: number;
}

export interface StoreScan {
  readonly txs: ReadonlyMap<string, ScannedTx>;
  readonly liveKeys: number;
  readonly collected: number;
}

interface Group {
  record?: TxRecord;
  readonly votes: Map<string, Vote>;
  decision?: Decision;
}

export async function scanStore(store: TxStore, flag: (v: Violation) => void): Promise<StoreScan> {
  const txs = new Map<string, ScannedTx>();
  // Live keys first, then compacted records: a collection between the two reads then shows the
  // transaction twice (the compacted record wins), never not at all.
  const live = await rangeAll(store, TX_PREFIX);
  const groups = new Map<string, Group>();
  for (const kv of live.kvs) {
    const key = parseKey(kv.key);
    if (key === null) continue;
    let g = groups.get(key.id);
    if (g === undefined) {
      g = { votes: new Map() };
      groups.set(key.id, g);
    }
    try {
      if (key.kind === 'tx') g.record = decodeTxRecord(kv.value);
      else if (key.kind === 'vote') g.votes.set(key.participant, decodeVote(kv.value));
      else if (key.kind === 'decision') g.decision = decodeDecision(kv.value);
    } catch (e) {
      flag({ check: 'stable-decisions', message: `${kv.key} does not decode: ${(e as Error).message}`, txId: key.id });
    }
  }
  for (const [id, g] of groups) {
    if (g.record === undefined) continue; // orphan keys of a collected transaction (late vote or ack)
    const frozen = frozenNames(g.record);
    // The votes' verdict alone, to check the decision against it.
    const verdict = verdictOf(g.record, g.votes, undefined);
    if (g.decision !== undefined && frozen !== null && frozen.length > 0 && verdict !== g.decision) {
      const votes = frozen.map((n) => `${n}=${g.votes.get(n)?.vote ?? 'missing'}`).join(' ');
      flag({ check: 'stable-decisions', message: `${id}: decision ${g.decision} but the votes say ${verdict} (${votes})`, txId: id });
    }
    if (g.decision !== undefined && frozen === null) flag({ check: 'stable-decisions', message: `${id}: decided ${g.decision} but its record is not frozen`, txId: id });
    const outcome = verdictOf(g.record, g.votes, g.decision);
    txs.set(id, {
      id,
      outcome: outcome === 'pending' ? 'open' : outcome === 'commit' ? 'committed' : 'aborted',
      source: 'live',
      participants: g.record.participants.map((p) => p.name),
      deadline: g.record.deadline,
    });
  }
  const done = await rangeAll(store, DONE_PREFIX);
  for (const kv of done.kvs) {
    try {
      const r = decodeDoneRecord(kv.value);
      const names = r.participants.map((p) => p.name);
      const verdict = decide(names, new Map(Object.entries(r.votes)));
      const decision: Decision = r.outcome === 'committed' ? 'commit' : 'abort';
      if (names.length > 0 && verdict !== decision) flag({ check: 'stable-decisions', message: `${r.id}: compacted record says ${r.outcome} but its votes say ${verdict}`, txId: r.id });
      const liveOutcome = txs.get(r.id)?.outcome;
      if (liveOutcome !== undefined && liveOutcome !== 'open' && liveOutcome !== r.outcome) flag({ check: 'stable-decisions', message: `${r.id}: live keys say ${liveOutcome}, compacted record says ${r.outcome}`, txId: r.id });
      txs.set(r.id, { id: r.id, outcome: r.outcome, source: 'collected', participants: names, deadline: r.deadline });
    } catch (e) {
      flag({ check: 'stable-decisions', message: `${kv.key} does not decode: ${(e as Error).message}` });
    }
  }
  return { txs, liveKeys: live.kvs.length, collected: done.kvs.length };
}
