/**
 * `LmdbStateStore`: the rest of the state machine (store/kv/durable-state.ts)
 * in LMDB databases beside the keys, written inside the key store's batch
 * transaction so keys, state and applied index always commit together.
 *
 * Databases:
 * - `state`: one entry, the scalars (revision, clock, alarms, the counters
 *   that order sessions and leases, the history's dropped-through revision,
 *   and the host's aux entries); and a second, `auth`, the auth table
 *   (store/kv/auth.ts), rewritten whole by a batch that changed it;
 * - `sessions`: client id -> [use sequence, session]; loading sorts by the
 *   sequence, which restores least-recently-used order exactly;
 * - `leases`: lease id -> [grant sequence, ttlMs];
 * - `history`: 8-byte revision + 4-byte position -> event, so dropping the
 *   oldest revisions is a range delete from the front;
 * - `leasekeys`: 8-byte lease id + key bytes -> empty, kept by the key store
 *   as it writes each key's lease (lmdb-keyspace.ts).
 */
import type { Database, RootDatabase } from 'lmdb';
import type { NoSpaceAlarm } from '../kv/alarm.js';
import { decodeAuthImage, type AuthImage } from '../kv/auth.js';
import type { PersistedState, StateDelta, StateStore } from '../kv/durable-state.js';
import type { Session } from '../kv/sessions.js';
import type { KvEvent, LeaseId } from '../kv/types.js';

interface Scalars {
  readonly revision: number;
  readonly clockMs: number;
  readonly alarms: readonly NoSpaceAlarm[];
  readonly sessionSeq: number;
  readonly leaseSeq: number;
  readonly droppedThrough: number;
  readonly aux: Readonly<Record<string, string>>;
}

const SCALARS_KEY = 'scalars';
/** The auth table's entry in the `state` database (beside the scalars, so no database is added). */
const AUTH_KEY = 'auth';
/** Revisions and lease ids are safe integers: 8 bytes big-endian, so byte order is number order. */
const ID_BYTES = 8;

export interface StateDatabases {
  readonly state: Database<Scalars | AuthImage, string>;
  readonly sessions: Database<[number, Session], string>;
  readonly leases: Database<[number, number], number>;
  readonly history: Database<KvEvent, Buffer>;
  readonly leaseKeys: Database<true, Buffer>;
}

/** Opens (creating if absent) the state's databases in `env`. */
export function openStateDatabases(env: RootDatabase): StateDatabases {
  return {
    state: env.openDB<Scalars | AuthImage, string>({ name: 'state', encoding: 'msgpack' }),
    sessions: env.openDB<[number, Session], string>({ name: 'sessions', encoding: 'msgpack' }),
    leases: env.openDB<[number, number], number>({ name: 'leases', encoding: 'msgpack' }),
    history: env.openDB<KvEvent, Buffer>({ name: 'history', keyEncoding: 'binary', encoding: 'msgpack' }),
    leaseKeys: env.openDB<true, Buffer>({ name: 'leasekeys', keyEncoding: 'binary', encoding: 'msgpack' }),
  };
}

export class LmdbStateStore implements StateStore {
  constructor(private readonly dbs: StateDatabases) {}

  load(): PersistedState | undefined {
    const s = this.dbs.state.get(SCALARS_KEY) as Scalars | undefined;
    if (s === undefined) return undefined;
    const auth = this.dbs.state.get(AUTH_KEY);
    const sessions = [...this.dbs.sessions.getRange({})].map((e) => e.value).sort((a, b) => a[0] - b[0]);
    const leases = [...this.dbs.leases.getRange({})].map((e) => ({ id: e.key, seq: e.value[0], ttlMs: e.value[1] })).sort((a, b) => a.seq - b.seq);
    const leaseKeys = [...this.dbs.leaseKeys.getKeys({})].map((k): [LeaseId, string] => [Number(k.readBigUInt64BE(0)), k.subarray(ID_BYTES).toString('utf8')]);
    return {
      revision: s.revision,
      clockMs: s.clockMs,
      alarms: s.alarms,
      leases: leases.map(({ id, ttlMs }) => ({ id, ttlMs })),
      leaseKeys,
      sessions: sessions.map(([, session]) => session),
      history: { droppedThrough: s.droppedThrough, events: [...this.dbs.history.getRange({})].map((e) => e.value) },
      aux: s.aux,
      ...(auth === undefined ? {} : { auth: decodeAuthImage(auth) }),
    };
  }

  /** Inside the key store's write transaction. */
  record(delta: StateDelta): void {
    const before = this.dbs.state.get(SCALARS_KEY) as Scalars | undefined;
    if (delta.auth !== undefined) this.dbs.state.putSync(AUTH_KEY, delta.auth);
    let { sessionSeq, leaseSeq } = before ?? { sessionSeq: 0, leaseSeq: 0 };
    for (const id of delta.sessionsDropped) this.dbs.sessions.removeSync(id);
    for (const session of delta.sessionsPut) this.dbs.sessions.putSync(session.clientId, [++sessionSeq, session]);
    for (const id of delta.leasesRevoked) this.dbs.leases.removeSync(id);
    for (const { id, ttlMs } of delta.leasesGranted) this.dbs.leases.putSync(id, [++leaseSeq, ttlMs]);
    this.recordHistory(delta, before?.droppedThrough ?? 0);
    this.dbs.state.putSync(SCALARS_KEY, {
      revision: delta.revision,
      clockMs: delta.clockMs,
      alarms: delta.alarms,
      sessionSeq,
      leaseSeq,
      droppedThrough: delta.historyDroppedThrough,
      aux: { ...before?.aux, ...delta.aux },
    });
  }

  private recordHistory(delta: StateDelta, droppedBefore: number): void {
    // One write's events (one revision) are appended together, so positions restart at 0 per revision.
    let position = 0;
    let last = -1;
    for (const event of delta.historyAppended) {
      position = event.revision === last ? position + 1 : 0;
      last = event.revision;
      this.dbs.history.putSync(historyKey(event.revision, position), event);
    }
    if (delta.historyDroppedThrough <= droppedBefore) return;
    const end = historyKey(delta.historyDroppedThrough + 1, 0);
    for (const key of [...this.dbs.history.getKeys({ end })]) this.dbs.history.removeSync(key);
  }

  clear(): void {
    const { state, sessions, leases, history, leaseKeys } = this.dbs;
    for (const db of [state, sessions, leases, history, leaseKeys]) db.clearSync();
  }
}

function historyKey(revision: number, position: number): Buffer {
  const key = Buffer.alloc(ID_BYTES + 4);
  key.writeBigUInt64BE(BigInt(revision), 0);
  key.writeUInt32BE(position, ID_BYTES);
  return key;
}

/** The `leasekeys` entry of `key` held by lease `id`. */
export function leaseKeyOf(id: LeaseId, key: Buffer): Buffer {
  const out = Buffer.alloc(ID_BYTES + key.length);
  out.writeBigUInt64BE(BigInt(id), 0);
  key.copy(out, ID_BYTES);
  return out;
}
