/**
 * The multi-request store operations of the 2PC runtimes, in callback form
 * over the simulated store client, each built on the same pure pieces the
 * real ones use (protocol.ts, compacted.ts, the coordinator machine):
 *
 *   readTxSnapshot     coordinator/txstore/txstore.ts: one transaction, one range at one revision
 *   scanTransactions   coordinator/runtime/query.ts: every transaction under `tx/`, grouped by id
 *   createTx           coordinator/runtime/runtime.ts: begin, guarded by the absence of a compacted record
 *   collect            coordinator/runtime/gc.ts: swap a finished transaction's keys for `txdone/{id}`
 *   finishTransaction  coordinator/runtime/finish.ts: decide from the store alone (a participant's help)
 *
 * Differences, on purpose: the compacted record is written without a lease
 * (the simulated store has no lease expiry; it simply outlives the run), and
 * a scan reads all of `tx/` (a simulated run holds tens of transactions).
 */
import type { Random } from '../../lib/random.js';
import { doneKey, doneRecordOf, encodeDoneRecord } from '../../coordinator/protocol/compacted.js';
import { CoordinatorMachine, type CoordinatorEffect } from '../../coordinator/core/machine.js';
import { ackKey, decisionKey, encodeDecision, parseKey, PROTOCOL_LIMITS, snapshotFromKvs, TX_PREFIX, txKey, voteKey, type Decision, type TxSnapshot } from '../../coordinator/protocol/kernel.js';
import type { BackoffPolicy } from '../../lib/retry.js';
import type { TxWrite } from '../../coordinator/txstore/txstore.js';
import type { CasResult, KeyValue } from '../../store/kv/index.js';
import { withRetries, type Outcome, type SimStore } from './store-client.js';
import type { Proc } from './world.js';

const pageSize = 1_000;
/** Pages one rangeAll reads at most (a simulated run never comes close). */
const maxPages = 1_000;

export function rangeAll(store: SimStore, prefix: string, cb: (o: Outcome<{ kvs: KeyValue[]; revision: number }>) => void): void {
  const kvs: KeyValue[] = [];
  const page = (after: string | undefined, n: number): void => {
    if (n >= maxPages) return cb({ ok: false, code: 'unavailable' });
    store.range(prefix, after === undefined ? { limit: pageSize } : { limit: pageSize, after }, (o) => {
      if (!o.ok) return cb(o);
      kvs.push(...o.value.kvs);
      const last = o.value.kvs[o.value.kvs.length - 1];
      if (!o.value.more || last === undefined) return cb({ ok: true, value: { kvs, revision: o.value.revision } });
      page(last.key, n + 1);
    });
  };
  page(undefined, 0);
}

export function readTxSnapshot(store: SimStore, id: string, cb: (o: Outcome<TxSnapshot>) => void): void {
  rangeAll(store, txKey(id), (o) => cb(o.ok ? { ok: true, value: snapshotFromKvs(id, o.value.kvs, o.value.revision) } : o));
}

/** Every transaction under `tx/`, its keys grouped by id (ids ascending), and the last page's revision. */
export function scanTransactions(store: SimStore, cb: (o: Outcome<{ groups: Map<string, KeyValue[]>; revision: number }>) => void): void {
  rangeAll(store, TX_PREFIX, (o) => {
    if (!o.ok) return cb(o);
    const groups = new Map<string, KeyValue[]>();
    for (const kv of o.value.kvs) {
      const parsed = parseKey(kv.key);
      if (parsed === null) continue;
      let g = groups.get(parsed.id);
      if (g === undefined) groups.set(parsed.id, (g = []));
      g.push(kv);
    }
    const ids = [...groups.keys()].sort();
    cb({ ok: true, value: { groups: new Map(ids.map((id) => [id, groups.get(id) as KeyValue[]])), revision: o.value.revision } });
  });
}

/** Answers like a CAS create-if-absent, or `tx_collected` when only the compacted record of the id exists. */
export function createTx(store: SimStore, id: string, value: string, cb: (o: Outcome<CasResult>) => void): void {
  const key = txKey(id);
  const attempt = (n: number): void => {
    if (n >= 3) return cb({ ok: false, code: 'unavailable' });
    store.txn([{ key, value: null }, { key: doneKey(id), value: null }], [{ type: 'put', key, value }], (o) => {
      if (!o.ok) return cb(o);
      if (o.value.succeeded) return cb({ ok: true, value: { type: 'cas', succeeded: true, previous: null, revision: o.value.revision } });
      store.get(key, (g) => {
        if (!g.ok) return cb(g);
        if (g.value.kv !== null) return cb({ ok: true, value: { type: 'cas', succeeded: false, previous: g.value.kv.value, revision: g.value.revision } });
        store.get(doneKey(id), (d) => {
          if (!d.ok) return cb(d);
          if (d.value.kv !== null) return cb({ ok: false, code: 'tx_collected' });
          attempt(n + 1); // both gone between the txn and the reads: try again
        });
      });
    });
  };
  attempt(0);
}

export type GcResult = 'collected' | 'not_finished' | 'gone' | 'raced';

/** gc.ts `collectSnapshot`: one txn guarded by the record text, the decision and no compacted record. */
export function collect(proc: Proc, store: SimStore, random: Random, retry: BackoffPolicy, snapshot: TxSnapshot, nowMs: number, cb: (o: Outcome<GcResult>) => void): void {
  if (snapshot.tx === null) return cb({ ok: true, value: 'gone' });
  const record = doneRecordOf(snapshot, nowMs);
  if (record === null || snapshot.decision === undefined) return cb({ ok: true, value: 'not_finished' });
  const id = snapshot.id;
  const guards = [
    { key: txKey(id), value: snapshot.tx.raw },
    { key: decisionKey(id), value: encodeDecision(snapshot.decision) },
    { key: doneKey(id), value: null },
  ];
  const writes: TxWrite[] = [{ type: 'delete', key: txKey(id) }, { type: 'delete', key: decisionKey(id) }];
  for (const p of snapshot.votes.keys()) writes.push({ type: 'delete', key: voteKey(id, p) });
  for (const p of snapshot.acks.keys()) writes.push({ type: 'delete', key: ackKey(id, p) });
  writes.push({ type: 'put', key: doneKey(id), value: encodeDoneRecord(record) });
  withRetries<{ succeeded: boolean; revision: number }>(proc, random, retry, (c) => store.txn(guards, writes, c), (o) => {
    cb(o.ok ? { ok: true, value: o.value.succeeded ? 'collected' : 'raced' } : o);
  });
}

/**
 * finish.ts: the coordinator's machine from a snapshot, `recover` at `nowMs`,
 * performing only its store writes, one at a time. The decision the store
 * holds afterwards, or undefined (no such transaction, or not decidable yet).
 */
export function finishTransaction(
  proc: Proc,
  store: SimStore,
  random: Random,
  retry: BackoffPolicy,
  txId: string,
  helper: { readonly id: string; readonly guardWrites: boolean },
  nowMs: number,
  cb: (o: Outcome<Decision | undefined>) => void,
): void {
  readTxSnapshot(store, txId, (o) => {
    if (!o.ok) return cb(o);
    const snapshot = o.value;
    if (snapshot.decision !== undefined) return cb({ ok: true, value: snapshot.decision });
    if (snapshot.tx === null) return cb({ ok: true, value: undefined });
    const machine = new CoordinatorMachine(snapshot, { coordinatorId: helper.id, maxParticipants: PROTOCOL_LIMITS.maxParticipants });
    const queue: CoordinatorEffect[] = machine.step({ type: 'recover', nowMs });
    const maxWrites = 4 * PROTOCOL_LIMITS.maxParticipants + 16;
    let writes = 0;
    const next = (): void => {
      let e = queue.shift();
      while (e !== undefined && e.type !== 'writeTx' && e.type !== 'writeVote' && e.type !== 'writeDecision') e = queue.shift();
      if (e === undefined) return cb({ ok: true, value: machine.view().decision });
      if (++writes > maxWrites) throw new Error(`finishTransaction(${txId}): more than ${maxWrites} writes`);
      const w = e;
      withRetries<CasResult & { guardMissing?: boolean }>(
        proc,
        random,
        retry,
        (c) => {
          if (w.type === 'writeTx' && w.expected !== null) store.casValue(w.key, w.expected, w.value, c);
          else if (helper.guardWrites && w.type !== 'writeTx') store.guardedCreate(w.key, w.value, txKey(txId), w.guard, c);
          else store.casCreate(w.key, w.value, c);
        },
        (r) => {
          if (!r.ok) return cb(r);
          if (r.value.guardMissing === true) return cb({ ok: true, value: undefined }); // collected meanwhile
          const { succeeded, previous } = r.value;
          if (w.type === 'writeTx') queue.push(...machine.step({ type: 'txWritten', value: w.value, succeeded, previous }));
          else if (w.type === 'writeVote') queue.push(...machine.step({ type: 'voteWritten', participant: w.participant, succeeded, previous }));
          else queue.push(...machine.step({ type: 'decisionWritten', succeeded, previous }));
          next();
        },
      );
    };
    next();
  });
}
