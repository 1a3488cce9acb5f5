/**
 * One simulated store node: the real pure Raft core (RawNode) and the real
 * pure KV state machine (KvStateMachine), driven through the Ready contract
 * as store/node/node.ts drives them (persist, send, apply, advance), with the
 * request handling of store/api reduced to what the 2PC layers use:
 *
 * - writes (put, CAS, delete, txn) are proposed by the leader, stamped with
 *   its clock and the client's Request-Id; the answer is the KV result once
 *   the entry is applied, `proposal_dropped` if another entry landed at its
 *   index, or nothing at all if the node dies first (the client times out);
 *   a follower answers `not_leader` with its leader hint;
 * - reads (get, range) are linearizable through ReadIndex (§6.4), served once
 *   the applied index reaches the read index;
 * - watch polls are served from the local applied history, as the real SSE
 *   watch is: committed events only, resumable by revision, `compacted` when
 *   the history no longer reaches back.
 *
 * Storage (MemoryStorage from the Raft harness) survives a crash; the KV
 * state machine is rebuilt from the newest snapshot plus the log replay.
 */
import { assert } from '../../lib/assert.js';
import { SeededRandom } from '../../lib/random.js';
import { KvStateMachine, type Compare, type EventsResult, type KvApplied, type KvConfig, type KvOkResult, type RequestId, type TxnOp } from '../../store/kv/index.js';
import { RawNode, type Entry, type RaftConfig, type Ready } from '../../store/raft/index.js';
import { MemoryStorage } from '../raft/harness.js';
import type { Net, Packet } from './net.js';
import { Proc, type World } from './world.js';

export type StoreOp =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'range'; readonly prefix: string; readonly limit?: number; readonly after?: string }
  | { readonly type: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string }
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'txn'; readonly compare: readonly Compare[]; readonly success: readonly TxnOp[]; readonly failure: readonly TxnOp[] }
  | { readonly type: 'events'; readonly prefix: string; readonly fromRevision: number; readonly limit: number };

export interface StoreRequest {
  readonly kind: 'store';
  readonly op: StoreOp;
  readonly requestId?: RequestId;
}

export type StoreAnswer =
  | { readonly ok: true; readonly result: KvOkResult | EventsResult }
  | { readonly ok: false; readonly code: string; readonly leader?: string };

export interface StoreNodeOptions {
  readonly raft: Partial<RaftConfig>;
  readonly kv: Partial<KvConfig>;
  readonly tickMs: number;
  /** Snapshot and compact after this many applied entries, keeping this many (node.ts maybeSnapshot). */
  readonly snapshotEveryEntries: number;
  readonly snapshotKeepEntries: number;
  /** Chance per tick that a node misses it (clock skew). */
  readonly skipTickChance: number;
  /** Chance per Ready that the node dies inside it (torn persist, or after persist before send). */
  readonly crashMidReadyChance: () => number;
  /** Every applied entry (data entries with their KV result), for the checker. */
  readonly onApply: (node: string, entry: Entry, applied: KvApplied | undefined) => void;
}

/** ReadIndex requests waiting at once; past it reads are refused with `busy`. */
const maxPendingReads = 1_000;
/** Readies handled in one drive; the core hands out a bounded amount each time. */
const maxReadiesPerDrive = 10_000;

interface Waiting {
  readonly from: string;
  readonly rid: string;
}

export class SimStoreNode extends Proc {
  readonly storage: MemoryStorage;
  private raw: RawNode | undefined;
  private kv: KvStateMachine | undefined;
  private appliedIndex = 0;
  private lastSnapshotIndex = 0;
  private pendingWrites = new Map<number, Waiting & { readonly data: string }>();
  private pendingReads = new Map<string, Waiting & { readonly op: StoreOp }>();
  private readsAwaitingApply: { requestId: string; index: number }[] = [];
  private readSeq = 0;

  constructor(
    name: string,
    world: World,
    private readonly net: Net,
    storage: MemoryStorage,
    private readonly opts: StoreNodeOptions,
  ) {
    super(name, world);
    this.storage = storage;
    net.register(name, (p) => this.receive(p));
  }

  get isLeader(): boolean {
    return this.raw?.status().role === 'leader';
  }

  /** Live state for the checker and traces; undefined while down. */
  get state(): { readonly kv: KvStateMachine; readonly raw: RawNode } | undefined {
    return this.raw === undefined || this.kv === undefined ? undefined : { kv: this.kv, raw: this.raw };
  }

  protected onStart(): void {
    this.raw = new RawNode({ ...this.opts.raft, id: this.name }, this.storage.state(), new SeededRandom(this.world.random.int(2 ** 31)));
    const snap = this.storage.snapshot;
    this.kv = snap !== undefined && snap.data !== '' ? KvStateMachine.restore(snap.data, this.opts.kv) : new KvStateMachine(this.opts.kv);
    this.appliedIndex = snap?.meta.index ?? 0;
    this.lastSnapshotIndex = this.appliedIndex;
    this.pendingWrites = new Map();
    this.pendingReads = new Map();
    this.readsAwaitingApply = [];
    this.scheduleTick();
    this.drive();
  }

  protected onKill(): void {
    this.raw = undefined;
    this.kv = undefined;
  }

  private scheduleTick(): void {
    this.after(this.opts.tickMs, () => {
      if (!this.world.random.chance(this.opts.skipTickChance)) this.raw?.tick();
      this.drive();
      this.scheduleTick();
    });
  }

  /** The application's snapshot at the applied index; the log before it is dropped. */
  compact(keepEntries: number): boolean {
    if (this.raw === undefined || this.kv === undefined) return false;
    const snap = this.raw.compact(this.kv.snapshot(), keepEntries);
    if (snap === undefined) return false;
    this.storage.compact(snap);
    this.lastSnapshotIndex = snap.meta.index;
    return true;
  }

  transferLeadership(to: string): void {
    this.raw?.transferLeadership(to);
    this.drive();
  }

  private receive(p: Packet): void {
    if (!this.alive || this.raw === undefined) return;
    const pl = p.payload;
    if (pl.kind === 'raft') {
      // A delivered snapshot needs no report: the follower's append response moves the leader on.
      this.raw.step(pl.message);
    } else if (pl.kind === 'req') {
      this.handle(p.from, pl.rid, pl.body as StoreRequest);
    }
    this.drive();
  }

  private reply(w: Waiting, answer: StoreAnswer): void {
    this.net.send(this.name, w.from, { kind: 'resp', rid: w.rid, body: answer });
  }

  private handle(from: string, rid: string, req: StoreRequest): void {
    const raw = this.raw as RawNode;
    const kv = this.kv as KvStateMachine;
    const w: Waiting = { from, rid };
    const op = req.op;
    this.count(`store requests: ${op.type}`);
    switch (op.type) {
      case 'events': {
        const r = kv.eventsSince(op.fromRevision, { prefix: op.prefix }, op.limit);
        this.reply(w, r.ok ? { ok: true, result: r } : { ok: false, code: r.error.code });
        return;
      }
      case 'get':
      case 'range': {
        if (this.pendingReads.size >= maxPendingReads) return this.reply(w, { ok: false, code: 'busy' });
        const requestId = `${this.name}.${this.incarnation}.${++this.readSeq}`;
        const res = raw.readIndex(requestId);
        if (res !== 'ok') return this.reply(w, { ok: false, code: res });
        this.pendingReads.set(requestId, { ...w, op });
        return;
      }
      default: {
        const st = raw.status();
        if (st.role !== 'leader') {
          const answer: StoreAnswer = st.leaderId === '' ? { ok: false, code: 'no_leader' } : { ok: false, code: 'not_leader', leader: st.leaderId };
          return this.reply(w, answer);
        }
        const data = JSON.stringify(toCommand(op, req.requestId, this.nowMs));
        const res = raw.propose(data);
        if (!res.ok) return this.reply(w, { ok: false, code: res.code === 'not_leader' ? 'not_leader' : 'busy' });
        this.pendingWrites.set(res.index, { ...w, data });
      }
    }
  }

  /** Persist, send, apply, advance, for every Ready the core has. */
  private drive(): void {
    for (let i = 0; i < maxReadiesPerDrive; i++) {
      const raw = this.raw;
      if (raw === undefined || !raw.hasReady()) return;
      const rd = raw.ready();
      if (this.world.random.chance(this.opts.crashMidReadyChance())) return this.crashMidReady(rd);
      this.storage.persist(rd);
      for (const m of rd.messages) this.net.send(this.name, m.to, { kind: 'raft', message: m });
      if (rd.snapshot !== undefined) this.installSnapshot(rd);
      for (const e of rd.committedEntries) this.apply(e);
      this.readsAwaitingApply.push(...rd.readStates);
      raw.advance(rd);
      this.serveReads();
      if (this.appliedIndex - this.lastSnapshotIndex >= this.opts.snapshotEveryEntries) this.compact(this.opts.snapshotKeepEntries);
    }
    assert(false, `${this.name}: more than ${maxReadiesPerDrive} readies in one drive`);
  }

  /** A crash inside the Ready cycle: nothing persisted, a torn persist, or persisted but not sent. */
  private crashMidReady(rd: Ready): void {
    const stage = this.world.random.int(4);
    const part = (p: Partial<Pick<Ready, 'snapshot' | 'entries' | 'hardState'>>): Ready => ({ entries: [], committedEntries: [], messages: [], readStates: [], ...p });
    if (stage >= 1) {
      if (rd.snapshot !== undefined) this.storage.persist(part({ snapshot: rd.snapshot }));
      this.storage.persist(part({ entries: rd.entries }));
    }
    if (stage >= 2 && rd.hardState !== undefined) this.storage.persist(part({ hardState: rd.hardState }));
    if (stage >= 3) for (const m of rd.messages) this.net.send(this.name, m.to, { kind: 'raft', message: m });
    this.world.counters.inc('store crash mid-ready');
    this.kill(`mid-Ready at stage ${stage}`);
  }

  private installSnapshot(rd: Ready): void {
    const snap = rd.snapshot;
    assert(snap !== undefined, 'installSnapshot without a snapshot');
    this.kv = snap.data !== '' ? KvStateMachine.restore(snap.data, this.opts.kv) : new KvStateMachine(this.opts.kv);
    this.appliedIndex = snap.meta.index;
    this.lastSnapshotIndex = snap.meta.index;
    // Writes waiting at indexes the snapshot covers get no answer: their outcome is unknown here.
    for (const index of this.pendingWrites.keys()) if (index <= snap.meta.index) this.pendingWrites.delete(index);
    this.world.counters.inc('store snapshots installed');
  }

  private apply(e: Entry): void {
    assert(e.index > this.appliedIndex, `${this.name} applies ${e.index} after ${this.appliedIndex}`);
    this.appliedIndex = e.index;
    const kv = this.kv as KvStateMachine;
    const applied = e.type === 'normal' && e.data !== '' ? kv.applyData(e.data, e.index) : undefined;
    this.opts.onApply(this.name, e, applied);
    const w = this.pendingWrites.get(e.index);
    if (w === undefined) return;
    this.pendingWrites.delete(e.index);
    if (applied === undefined || w.data !== e.data) return this.reply(w, { ok: false, code: 'proposal_dropped' });
    const r = applied.result;
    this.reply(w, r.ok ? { ok: true, result: r } : { ok: false, code: r.error.code });
  }

  private serveReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const kv = this.kv as KvStateMachine;
    const later: { requestId: string; index: number }[] = [];
    for (const rs of this.readsAwaitingApply) {
      if (rs.index > this.appliedIndex) {
        later.push(rs);
        continue;
      }
      const w = this.pendingReads.get(rs.requestId);
      if (w === undefined) continue;
      this.pendingReads.delete(rs.requestId);
      const op = w.op;
      const r = op.type === 'get' ? kv.get(op.key) : op.type === 'range' ? kv.range(rangeQuery(op)) : undefined;
      assert(r !== undefined, 'only get and range wait for a read index');
      this.reply(w, r.ok ? { ok: true, result: r } : { ok: false, code: r.error.code });
    }
    this.readsAwaitingApply = later;
  }
}

function rangeQuery(op: Extract<StoreOp, { type: 'range' }>): { prefix: string; limit?: number; after?: string } {
  const q: { prefix: string; limit?: number; after?: string } = { prefix: op.prefix };
  if (op.limit !== undefined) q.limit = op.limit;
  if (op.after !== undefined) q.after = op.after;
  return q;
}

/** The KV command a leader proposes for a write: the op, stamped with its clock and the Request-Id. */
function toCommand(op: StoreOp, requestId: RequestId | undefined, nowMs: number): Record<string, unknown> {
  const meta = requestId === undefined ? { nowMs } : { requestId, nowMs };
  switch (op.type) {
    case 'cas':
      return { type: 'cas', key: op.key, expected: op.expected, value: op.value, ...meta };
    case 'put':
      return { type: 'put', key: op.key, value: op.value, ...meta };
    case 'delete':
      return { type: 'delete', key: op.key, ...meta };
    case 'txn':
      return { type: 'txn', compare: op.compare, success: op.success, failure: op.failure, ...meta };
    default:
      assert(false, `${op.type} is not a write`);
  }
}
