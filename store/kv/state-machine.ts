/**
 * The KV state machine: what every replica applies, in log order, to reach
 * the same state. Pure computation: no I/O, no timers, no wall clock, no
 * randomness; time enters only as the leader-stamped `nowMs` of a command.
 *
 * Apply order for one entry:
 * 1. check the command (validate.ts); a failure stops here;
 * 2. for a write with a requestId, consult its session: a stale seq fails,
 *    the last seq is answered from the cache (`duplicate: true`);
 * 3. execute (engine.ts); a failure changes nothing;
 * 4. on success: append the events to the watch history, advance the clock
 *    (expiring idle sessions), and record the result in the session.
 */
import { assert } from '../../lib/assert.js';
import type { NoSpaceAlarm } from './alarm.js';
import { AuthTable, checkAuthOp, EMPTY_AUTH } from './auth.js';
import { commandNeeds, deniedBy } from './auth-needs.js';
import { type KvConfig, resolveKvConfig } from './config.js';
import { Changes, KvEngine } from './engine.js';
import { fail, isFailure } from './failure.js';
import { eventBytes, WatchHistory } from './history.js';
import type { PersistedState, StateDelta, StateImage, StateStore } from './durable-state.js';
import type { KeyStore } from './keystore.js';
import { SessionTable } from './sessions.js';
import { decodeSnapshot, encodeSnapshot, type SnapshotImage } from './snapshot.js';
import type {
  EventsResult,
  GetResult,
  KvApplied,
  KvCommand,
  KvEvent,
  KvFailure,
  KvOkResult,
  KvResult,
  LeaseInfo,
  RangeOp,
  RangeResult,
  WatchFilter,
} from './types.js';
import { utf8ByteLength } from './utf8.js';
import { type CheckedCommand, checkCommand, checkReadOp } from './validate.js';

const NO_EVENTS: readonly KvEvent[] = Object.freeze([]);

/** A range query as the read API takes it (a RangeOp without its tag). */
export type RangeQuery = Omit<RangeOp, 'type'>;

export class KvStateMachine {
  readonly config: KvConfig;
  private readonly engine: KvEngine;
  private readonly sessions: SessionTable;
  private readonly history: WatchHistory;
  /**
   * Raft index of the last entry applied. Entries the node does not pass in
   * (leader no-ops, conf changes) leave gaps, which is fine.
   */
  private applied = 0;
  /**
   * The largest nowMs of any successfully applied write: the sessions' clock.
   * Invariant: never decreases (so session LRU order is also time order).
   */
  private clockMs = 0;
  /** Where an on-disk key store keeps the rest of the state (durable-state.ts); undefined in memory. */
  private readonly durable: StateStore | undefined;
  /** The revision of the last history event recorded in `durable`. */
  private historyRecorded = 0;
  /** Batches open around the current call (batch). */
  private batchDepth = 0;
  /** Host entries set since the last record. */
  private readonly auxChanges = new Map<string, string>();
  private auxAtReopen: Readonly<Record<string, string>> = {};
  /** Users, roles and permissions (auth.ts): read by the API to check every request. */
  private readonly authTable = new AuthTable();

  /**
   * An empty state machine. `keys` (empty) holds its live keys: a new
   * in-memory Keyspace unless an on-disk KeyStore is injected.
   */
  constructor(config: Partial<KvConfig> = {}, keys?: KeyStore) {
    this.config = resolveKvConfig(config);
    assert(keys === undefined || keys.size === 0 || keys.state !== undefined, 'a new state machine needs an empty key store');
    this.engine = new KvEngine(this.config, keys);
    this.sessions = new SessionTable(this.config.maxSessions, this.config.sessionIdleMs, this.config.maxSessionBytes);
    this.history = new WatchHistory(this.config.watchHistoryEvents, this.config.watchHistoryBytes);
    this.durable = keys?.state;
  }

  /**
   * The state machine an on-disk key store holds, at its applied index, or
   * undefined when the store never recorded a state (new, or cleared).
   */
  static reopen(config: Partial<KvConfig>, keys: KeyStore): KvStateMachine | undefined {
    const state = keys.state?.load();
    if (state === undefined || keys.appliedIndex === 0) return undefined;
    const kv = new KvStateMachine(config, keys);
    kv.loadPersisted(state, keys.appliedIndex);
    return kv;
  }

  /** The store revision: 1 when empty, +1 for each command that changed a key. */
  get revision(): number {
    return this.engine.revision;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /** Number of live keys. */
  get keyCount(): number {
    return this.engine.keyspace.size;
  }

  /** Key and value UTF-8 bytes of all live keys (what maxStoreBytes limits). */
  get storeBytes(): number {
    return this.engine.keyspace.totalBytes;
  }

  /** What the bounded in-memory parts hold: watch history events and bytes, client sessions and their bytes. */
  get memoryUse(): { historyEvents: number; historyBytes: number; sessions: number; sessionBytes: number } {
    return { historyEvents: this.history.length, historyBytes: this.history.byteSize, sessions: this.sessions.size, sessionBytes: this.sessions.byteSize };
  }

  /** The auth table, read-only for callers (it changes only through `auth` commands). */
  get auth(): Pick<AuthTable, 'enabled' | 'secret' | 'revision' | 'user' | 'role' | 'userList' | 'roleList' | 'isRoot' | 'allowsKey' | 'allowsPrefix'> {
    return this.authTable;
  }

  /** The keys attached to a live lease (empty for an unknown one): what revoking it deletes. */
  leaseKeys(id: number): string[] {
    return this.engine.leaseTable.has(id) ? this.engine.leaseTable.keysOf(id) : [];
  }

  /** The raised alarms (NOSPACE at most): replicated state, the same on every member. */
  get alarms(): NoSpaceAlarm[] {
    return this.engine.alarm.list();
  }

  /**
   * Applies one committed command. `raftIndex` must be above every index
   * applied before. The command is checked at run time too (it came through
   * the log as JSON), so any input gives a result and none throws.
   */
  apply(command: KvCommand, raftIndex: number): KvApplied {
    return this.batch(() => this.applyNow(command, raftIndex));
  }

  /**
   * Runs `applyAll` (calls of apply and applyData) as one write batch of the
   * key store, committed with the applied index it reaches (keystore.ts):
   * the node applies each Ready's committed entries in one batch.
   */
  batch<T>(applyAll: () => T): T {
    // A batch inside a batch joins it: the state is recorded once, when the outermost ends.
    if (this.batchDepth > 0) return applyAll();
    this.batchDepth++;
    try {
      return this.engine.keyspace.batch(() => {
        const result = applyAll();
        this.recordState();
        return result;
      }, () => this.applied);
    } finally {
      this.batchDepth--;
    }
  }

  /** An opaque entry the host keeps with the state (the node's members), recorded with the current batch. */
  setAux(name: string, value: string): void {
    if (this.durable !== undefined) this.auxChanges.set(name, value);
  }

  /** The host entries a reopened store held (empty for any other state machine). */
  get reopenedAux(): Readonly<Record<string, string>> {
    return this.auxAtReopen;
  }

  private applyNow(command: KvCommand, raftIndex: number): KvApplied {
    this.advanceIndex(raftIndex);
    if (isObject(command) && command.type === 'alarmDisarm') return { result: this.engine.disarmAlarm(), events: NO_EVENTS };
    if (isObject(command) && command.type === 'auth') return { result: this.applyAuth((command as { auth?: unknown }).auth), events: NO_EVENTS };
    const checked = checkCommand(command, this.config);
    if (isFailure(checked)) return { result: checked, events: NO_EVENTS };
    if (checked.kind === 'read') {
      const op = checked.op;
      return { result: op.type === 'get' ? this.engine.get(op) : this.engine.range(op), events: NO_EVENTS };
    }
    return this.applyWrite(checked, command);
  }

  /**
   * Marks a log index applied that carries no command (a leader's no-op, a
   * membership change), so `appliedIndex` is the log's and an on-disk store
   * reopened later holds at least the node's last snapshot index.
   */
  markApplied(raftIndex: number): void {
    this.batch(() => this.advanceIndex(raftIndex));
  }

  /** Applies a committed entry's data (a command as JSON); data that is not JSON is invalid_command. */
  applyData(data: string, raftIndex: number): KvApplied {
    let command: unknown;
    try {
      command = JSON.parse(data);
    } catch {
      return this.batch(() => {
        this.advanceIndex(raftIndex);
        return { result: fail('invalid_command', 'entry data is not JSON'), events: NO_EVENTS };
      });
    }
    return this.apply(command as KvCommand, raftIndex);
  }

  /** Reads one key from the local state (no mutation). */
  get(key: string): KvOkResult<GetResult> | KvFailure {
    const op = checkReadOp({ type: 'get', key }, this.config);
    if (isFailure(op)) return op;
    assert(op.type === 'get', 'get checked as get');
    return this.engine.get(op);
  }

  /** Scans keys under a prefix from the local state (no mutation). */
  range(query: RangeQuery): KvOkResult<RangeResult> | KvFailure {
    const op = checkReadOp({ ...query, type: 'range' }, this.config);
    if (isFailure(op)) return op;
    assert(op.type === 'range', 'range checked as range');
    return this.engine.range(op);
  }

  /** Live leases in grant order, for the leader to time their expiry. */
  leases(): LeaseInfo[] {
    return this.engine.leaseTable.list();
  }

  /**
   * Events with revision >= fromRevision for a key or prefix, at most
   * `limit` (whole revisions), or a `compacted` failure with
   * `oldestRevision` when the history no longer reaches back that far.
   */
  eventsSince(fromRevision: number, filter: WatchFilter, limit: number): EventsResult | KvFailure {
    return this.history.since(fromRevision, filter, limit, this.engine.revision);
  }

  /** The whole replicated state as a JSON string; `KvStateMachine.restore` rebuilds it exactly. */
  snapshot(): string {
    return encodeSnapshot({
      appliedIndex: this.applied,
      revision: this.engine.revision,
      clockMs: this.clockMs,
      keys: [...this.engine.keyspace.inOrder()].map((s) => s.kv),
      leases: this.engine.leaseTable.list().map(({ id, ttlMs }) => ({ id, ttlMs })),
      sessions: this.sessions.list(),
      history: this.history.save(),
      // Only when raised, so a snapshot without alarms is what it was before alarms existed.
      ...(this.engine.alarm.raised === undefined ? {} : { alarms: this.engine.alarm.list() }),
      ...(this.authTable.isEmpty ? {} : { auth: this.authTable.image() }),
    });
  }

  /** The state besides the keys, now, with the host's `aux` entries (a snapshot stream's header). */
  stateImage(aux: Readonly<Record<string, string>>): StateImage {
    return {
      revision: this.engine.revision,
      clockMs: this.clockMs,
      alarms: this.engine.alarm.list(),
      leases: this.engine.leaseTable.list().map(({ id, ttlMs }) => ({ id, ttlMs })),
      sessions: this.sessions.list(),
      history: this.history.save(),
      aux,
      auth: this.authTable.image(),
    };
  }

  /**
   * Builds a state machine from `snapshot()` output. Use the same config as
   * the replica that wrote it (see config.ts). Throws an AssertionError on
   * a malformed snapshot: that is corruption, not user input. `keys` is
   * cleared and refilled from the snapshot in one batch (default: a new
   * in-memory Keyspace).
   */
  static restore(data: string, config: Partial<KvConfig> = {}, keys?: KeyStore): KvStateMachine {
    const image = decodeSnapshot(data);
    const build = (): KvStateMachine => {
      keys?.clear();
      const kv = new KvStateMachine(config, keys);
      kv.load(image);
      // The store was cleared: everything is new to it.
      kv.sessions.markAllChanged();
      kv.engine.leaseTable.markAllChanged();
      kv.authTable.changed = true;
      kv.historyRecorded = image.history.droppedThrough;
      kv.recordState();
      return kv;
    };
    // One batch: an on-disk store holds either its old state or the snapshot's, never a mix.
    return keys === undefined ? build() : keys.batch(build, () => image.appliedIndex);
  }

  /** Fills a new state machine with a snapshot's state. */
  private load(image: SnapshotImage): void {
    this.applied = image.appliedIndex;
    this.clockMs = image.clockMs;
    this.engine.revision = image.revision;
    for (const { id, ttlMs } of image.leases) this.engine.leaseTable.grant(id, ttlMs);
    for (const stored of image.keys) {
      const keyBytes = utf8ByteLength(stored.key);
      const valueBytes = utf8ByteLength(stored.value);
      assert(keyBytes > 0 && valueBytes >= 0, `snapshot key ${stored.key} is not valid UTF-8`);
      this.engine.keyspace.set({ kv: stored, keyBytes, valueBytes });
      if (stored.lease !== undefined) this.engine.leaseTable.attach(stored.lease, stored.key);
    }
    const sizes = image.history.events.map(eventBytes);
    this.history.load(image.history.droppedThrough, image.history.events, sizes);
    this.sessions.load(image.sessions);
    this.engine.alarm.load(image.alarms ?? []);
    this.authTable.load(image.auth ?? EMPTY_AUTH);
  }

  /** Fills a state machine on a reopened store with the rest of its state. */
  private loadPersisted(state: PersistedState, appliedIndex: number): void {
    this.applied = appliedIndex;
    this.clockMs = state.clockMs;
    this.engine.revision = state.revision;
    for (const { id, ttlMs } of state.leases) this.engine.leaseTable.grant(id, ttlMs);
    for (const [id, key] of state.leaseKeys) this.engine.leaseTable.attach(id, key);
    this.engine.leaseTable.takeChanges();
    this.history.load(state.history.droppedThrough, state.history.events, state.history.events.map(eventBytes));
    this.historyRecorded = state.history.events.at(-1)?.revision ?? state.history.droppedThrough;
    this.sessions.load(state.sessions);
    this.engine.alarm.load(state.alarms);
    this.authTable.load(state.auth ?? EMPTY_AUTH);
    this.auxAtReopen = state.aux;
  }

  /** Records what the batch changed besides the keys in an on-disk store (durable-state.ts). */
  private recordState(): void {
    if (this.durable === undefined) return;
    const sessions = this.sessions.takeChanges();
    const leases = this.engine.leaseTable.takeChanges();
    const appended = this.history.eventsAfter(this.historyRecorded);
    this.historyRecorded = appended.at(-1)?.revision ?? this.historyRecorded;
    const delta: StateDelta = {
      revision: this.engine.revision,
      clockMs: this.clockMs,
      alarms: this.engine.alarm.list(),
      leasesGranted: leases.granted,
      leasesRevoked: leases.revoked,
      sessionsPut: sessions.put,
      sessionsDropped: sessions.dropped,
      historyAppended: appended,
      historyDroppedThrough: this.history.dropped,
      aux: Object.fromEntries(this.auxChanges),
      // The whole table, only in a batch that changed it (it is small and rarely changes).
      ...(this.authTable.changed ? { auth: this.authTable.image() } : {}),
    };
    this.authTable.changed = false;
    this.auxChanges.clear();
    this.durable.record(delta);
  }

  private applyWrite(checked: Extract<CheckedCommand, { kind: 'write' }>, raw: KvCommand): KvApplied {
    const refused = this.refusedAtApply(raw);
    if (refused !== undefined) return { result: refused, events: NO_EVENTS };
    const nowMs = checked.nowMs === undefined ? this.clockMs : Math.max(this.clockMs, checked.nowMs);
    const id = checked.requestId;
    if (id !== undefined) {
      const seen = this.sessions.check(id.clientId, id.seq, nowMs);
      if (seen.kind === 'stale') {
        const message = `request ${id.clientId}:${id.seq} is older than the last applied seq ${seen.lastSeq}`;
        return {
          result: fail('request_id_stale', message, {
            clientId: id.clientId,
            seq: id.seq,
            lastSeq: seen.lastSeq,
          }),
          events: NO_EVENTS,
        };
      }
      if (seen.kind === 'duplicate') {
        this.advanceClock(nowMs);
        this.sessions.touch(id.clientId, nowMs);
        return { result: { ...seen.result, duplicate: true }, events: NO_EVENTS };
      }
    }
    const changes = new Changes();
    const result: KvResult = this.engine.write(checked.op, changes);
    if (!result.ok) {
      assert(changes.events.length === 0, 'a failed write produced events');
      return { result, events: NO_EVENTS };
    }
    this.history.append(changes.events, changes.sizes);
    this.advanceClock(nowMs);
    if (id !== undefined) this.sessions.record(id.clientId, id.seq, nowMs, result);
    return { result, events: changes.events };
  }

  /**
   * A write the leader checked for `caller` at an auth revision that is no
   * longer the table's: checked again against the table now (a user deleted,
   * a role or permission revoked in between). Before sessions, so a refused
   * write is not cached as a result.
   */
  private refusedAtApply(raw: KvCommand): KvFailure | undefined {
    const caller = (raw as { caller?: unknown }).caller;
    if (caller === undefined) return undefined;
    const c = caller as { user?: unknown; authRevision?: unknown } | null;
    if (!isObject(c) || typeof c.user !== 'string' || !Number.isSafeInteger(c.authRevision)) return fail('invalid_command', 'caller must be {user, authRevision}');
    const auth = this.authTable;
    if (!auth.enabled || c.authRevision === auth.revision) return undefined;
    const why = auth.user(c.user) === undefined ? 'write (the user was deleted)' : deniedBy(auth, c.user, commandNeeds(raw, (id) => this.leaseKeys(id)));
    return why === undefined ? undefined : fail('permission_denied', `user ${c.user} may not ${why}: the auth table changed before the write applied`, { user: c.user });
  }

  /** An auth table change: checked like any command (it came through the log), no revision, no session. */
  private applyAuth(raw: unknown): KvResult {
    const op = checkAuthOp(raw);
    return 'ok' in op ? op : this.authTable.apply(op);
  }

  private advanceIndex(raftIndex: number): void {
    assert(
      Number.isSafeInteger(raftIndex) && raftIndex > this.applied,
      `apply at index ${raftIndex} after ${this.applied}`,
    );
    this.applied = raftIndex;
  }

  private advanceClock(nowMs: number): void {
    assert(nowMs >= this.clockMs, 'the state machine clock went back');
    this.clockMs = nowMs;
    this.sessions.expire(nowMs);
  }
}

function isObject(v: unknown): v is { readonly type?: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
