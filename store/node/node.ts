/**
 * One store node: the Raft core driven by real I/O. The driver loop follows
 * the core's contract (docs/RAFT.md): persist (WAL, fsync), then send, then
 * apply to the KV state machine, then advance. Client writes are batched per
 * event-loop turn into one proposal, so one fsync covers many writes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../../lib/assert.js';
import { AppError } from '../../lib/errors.js';
import { systemRandom } from '../../lib/random.js';
import { systemClock } from '../../lib/clock.js';
import { LeaseKeeper } from './leases.js';
import { KvStateMachine, type KvResult, type KvWriteCommand } from '../kv/index.js';
import {
  RawNode,
  bootstrapStorage,
  type ConfChange,
  type Entry,
  type Message,
  type NodeId,
  type RaftStatus,
  type HardState,
  type Ready,
  type Snapshot,
  type StorageState,
} from '../raft/index.js';
import { type MemberAddress, type NodeConfig } from './config.js';
import { BusyError, NoLeaderError, ProposalDroppedError } from './errors.js';
import { decodeImage, encodeImage, kvConfigOf } from './image.js';
import { WaitTable } from './pending.js';
import { loadNewestSnapshot, saveSnapshot } from './snapshot-file.js';
import { Transport } from './transport.js';
import { WriteAheadLog } from './wal.js';

export { BusyError, NoLeaderError, ProposalDroppedError } from './errors.js';

/** What a conf-change proposal resolves with once applied. */
const CONF_APPLIED = { ok: true, type: 'put', revision: 0, previous: null } as const satisfies KvResult;

interface QueuedProposal {
  readonly data: string;
  readonly resolve: (r: KvResult) => void;
  readonly reject: (e: unknown) => void;
}

export interface NodeMetrics {
  proposals: number;
  proposalBatches: number;
  readyLoops: number;
  appliedEntries: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  leaderChanges: number;
}

export class StoreNode {
  private kv: KvStateMachine;
  private readonly members = new Map<NodeId, MemberAddress>();
  private readonly proposals: WaitTable<number, KvResult>;
  private readonly proposalTerms = new Map<number, number>();
  private proposeQueue: QueuedProposal[] = [];
  private proposeFlushScheduled = false;
  private readonly reads: WaitTable<string, void>;
  /** ReadIndex answers waiting for the applied index to reach theirs. */
  private readsAwaitingApply: { requestId: string; index: number }[] = [];
  private readSeq = 0;
  private looping = false;
  private ticker: NodeJS.Timeout | undefined;
  private appliedIndex: number;
  private lastSnapshotIndex: number;
  private stopped = false;
  private leaderId: NodeId = '';
  /** This node's role as of the last Ready that carried a soft state. */
  private role: string = 'follower';
  /** The hard state last made durable by this process (undefined: not known yet). */
  private savedHardState: HardState | undefined;
  /** A commit-only hard state change not yet written; rides along with the next save. */
  private deferredHardState: HardState | undefined;
  /** Set when applied entries produced watch events since the last onApplied call. */
  private hasNewEvents = false;
  /** A snapshot is being written beside the Ready loop; the next waits for it. */
  private snapshotSaving = false;
  readonly metrics: NodeMetrics = {
    proposals: 0,
    proposalBatches: 0,
    readyLoops: 0,
    appliedEntries: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    leaderChanges: 0,
  };
  /** Called after every applied batch (watches and the lease keeper hook in); `events` is false when no key changed. */
  onApplied: ((appliedIndex: number, events: boolean) => void) | undefined;
  /** Called when this node learns of a new leader (possibly itself). */
  onLeaderChange: ((leaderId: NodeId, isSelf: boolean) => void) | undefined;

  readonly leases: LeaseKeeper;

  private constructor(
    readonly cfg: NodeConfig,
    private readonly raw: RawNode,
    private readonly wal: WriteAheadLog,
    readonly transport: Transport,
    snapshot: Snapshot | undefined,
  ) {
    this.proposals = new WaitTable('write');
    this.reads = new WaitTable('linearizable read');
    const image = snapshot && snapshot.data !== '' ? decodeImage(snapshot.data) : undefined;
    this.kv = image ? KvStateMachine.restore(image.kv, kvConfigOf(cfg)) : new KvStateMachine(kvConfigOf(cfg));
    for (const m of image?.members ?? cfg.initialCluster) this.setMember(m);
    this.appliedIndex = snapshot?.meta.index ?? 0;
    this.lastSnapshotIndex = this.appliedIndex;
    this.leases = new LeaseKeeper(this, systemClock, cfg.leaseCheckMs);
  }

  static async start(cfg: NodeConfig): Promise<StoreNode> {
    const snapDir = join(cfg.dataDir, 'snap');
    const walDir = join(cfg.dataDir, 'wal');
    await mkdir(snapDir, { recursive: true });
    const snapshot = await loadNewestSnapshot(snapDir);
    const { wal, state } = await WriteAheadLog.open(walDir, {
      snapshotIndex: snapshot?.meta.index ?? 0,
      segmentSizeBytes: cfg.walSegmentSizeBytes,
    });
    if (state.repairedTail) {
      console.error(`[${cfg.id}] WAL: truncated a torn tail in ${state.repairedTail.path} at ${state.repairedTail.offset} (${state.repairedTail.reason})`);
    }
    let storage: StorageState;
    const fresh = snapshot === undefined && state.entries.length === 0 && state.hardState.term === 0;
    if (fresh && !cfg.join) {
      storage = bootstrapStorage(cfg.initialCluster.map((m) => ({ id: m.id, context: JSON.stringify(m) })));
      await wal.save(storage.entries, storage.hardState);
    } else {
      storage = { hardState: state.hardState, snapshot, entries: state.entries };
    }
    const raw = new RawNode(
      { id: cfg.id, electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks },
      storage,
      systemRandom,
    );
    let node: StoreNode | undefined;
    const transport = new Transport(cfg.id, {
      onMessages: (msgs) => node?.receive(msgs),
      onUnreachable: (peer) => node?.raw.reportUnreachable(peer),
    });
    node = new StoreNode(cfg, raw, wal, transport, snapshot);
    await transport.listen(cfg.host, cfg.peerPort);
    node.ticker = setInterval(() => node?.tick(), cfg.tickMs);
    node.leases.start();
    node.schedule();
    return node;
  }

  // ---- driver loop --------------------------------------------------------

  private tick(): void {
    this.raw.tick();
    this.schedule();
  }

  private receive(msgs: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) {
      if (m.to === this.cfg.id) this.raw.step(m);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.looping || this.stopped) return;
    this.looping = true;
    setImmediate(() => {
      this.loop().catch((e: unknown) => this.fatal(e));
    });
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped && this.raw.hasReady()) {
        const rd = this.raw.ready();
        if (rd.softState) this.role = rd.softState.role;
        // Raft dissertation §10.2.1 (as etcd does): a leader sends its appends
        // before its own fsync, so the leader's and the followers' disk writes
        // overlap. Safe because nothing commits from this Ready before the next
        // loop turn, which starts only after this persist is durable. Never when
        // this Ready changes term or vote: those must be durable before any send.
        const sendFirst = this.role === 'leader' && !this.changesTermOrVote(rd.hardState);
        if (sendFirst) this.transport.send(rd.messages);
        // Committed entries that an earlier Ready already made durable here are
        // applied (and their clients answered) while this Ready's fsync runs,
        // rather than one fsync later, as etcd's apply runs beside its WAL save.
        // Not with a snapshot or a membership change in the batch: those keep
        // the plain order.
        const applyFirst = this.committedAreStable(rd);
        if (applyFirst) this.applyEntries(rd.committedEntries);
        await this.persist(rd);
        if (!sendFirst) this.transport.send(rd.messages);
        if (rd.snapshot) this.installSnapshot(rd.snapshot);
        if (!applyFirst) this.applyEntries(rd.committedEntries);
        for (const rs of rd.readStates) {
          if (rs.rejected) this.reads.reject(rs.requestId, new BusyError('the leader has too many reads pending'));
          else this.readsAwaitingApply.push(rs);
        }
        if (rd.softState) this.onSoftState(rd.softState.leaderId);
        this.raw.advance(rd);
        this.releaseReads();
        this.metrics.readyLoops++;
        if (rd.committedEntries.length > 0 || rd.snapshot) {
          const events = this.hasNewEvents || rd.snapshot !== undefined;
          this.hasNewEvents = false;
          this.onApplied?.(this.appliedIndex, events);
        }
        this.maybeSnapshot();
      }
    } finally {
      this.looping = false;
    }
    // Work that arrived during the last await of the loop.
    if (!this.stopped && this.raw.hasReady()) this.schedule();
  }

  private async persist(rd: Ready): Promise<void> {
    if (rd.snapshot) {
      await saveSnapshot(join(this.cfg.dataDir, 'snap'), rd.snapshot);
      await this.wal.markSnapshot({ index: rd.snapshot.meta.index, term: rd.snapshot.meta.term });
    }
    // A hard state that changes only `commit` needs no fsync of its own (etcd's
    // MustSync): the commit index is volatile in Raft, a restart clamps it to the
    // snapshot (RaftLog), and it is written with the next save. This takes one
    // fsync off every write's path on the leader and on each follower.
    let hs = rd.hardState;
    if (hs && rd.entries.length === 0 && !this.changesTermOrVote(hs)) {
      this.deferredHardState = hs;
      hs = undefined;
    }
    if (rd.entries.length > 0 || hs) {
      const toSave = hs ?? this.deferredHardState;
      await this.wal.save(rd.entries, toSave);
      if (toSave) {
        this.savedHardState = toSave;
        this.deferredHardState = undefined;
      }
    }
  }

  /** Every committed entry of the Ready was persisted by an earlier Ready, and none is a conf change. */
  private committedAreStable(rd: Ready): boolean {
    const committed = rd.committedEntries;
    const last = committed[committed.length - 1];
    if (last === undefined || rd.snapshot) return false;
    const firstNew = rd.entries[0];
    if (firstNew !== undefined && firstNew.index <= last.index) return false;
    return committed.every((e) => e.type !== 'conf');
  }

  private changesTermOrVote(hs: HardState | undefined): boolean {
    if (!hs) return false;
    const saved = this.savedHardState;
    return saved === undefined || saved.term !== hs.term || saved.vote !== hs.vote;
  }

  private fatal(e: unknown): void {
    // A failed fsync or a corrupt state means this replica can no longer be trusted.
    console.error(`[${this.cfg.id}] fatal:`, e);
    process.exit(70);
  }

  private onSoftState(leaderId: NodeId): void {
    if (leaderId === this.leaderId) return;
    this.metrics.leaderChanges++;
    this.leaderId = leaderId;
    // A read forwarded to the old leader may never be answered (the message or
    // the leader is gone): fail every waiting read now with a retryable 503
    // instead of holding it to its timeout. Reads are idempotent; clients retry.
    this.reads.rejectAll(new NoLeaderError('leadership changed while the read waited; retry'));
    this.readsAwaitingApply = [];
    this.leases.onLeaderChange();
    this.onLeaderChange?.(leaderId, leaderId === this.cfg.id);
  }

  // ---- applying -----------------------------------------------------------

  private installSnapshot(s: Snapshot): void {
    const image = decodeImage(s.data);
    this.kv = KvStateMachine.restore(image.kv, kvConfigOf(this.cfg));
    this.members.clear();
    for (const m of image.members) this.setMember(m);
    // Proposals at or before the snapshot may or may not be in it: their outcome is unknown.
    for (const [index] of this.proposalTerms) {
      if (index <= s.meta.index) this.proposals.reject(index, new AppError('outcome_unknown', 504, 'a snapshot replaced the log; the write may or may not have been applied'));
    }
    this.appliedIndex = s.meta.index;
    this.lastSnapshotIndex = s.meta.index;
    this.metrics.snapshotsInstalled++;
  }

  private applyEntries(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.appliedIndex + 1, `apply ${e.index} after ${this.appliedIndex}`);
      let result: KvResult | undefined;
      if (e.type === 'conf') {
        this.applyConfEntry(e);
        result = CONF_APPLIED;
      } else if (e.data !== '') {
        const applied = this.kv.applyData(e.data, e.index);
        result = applied.result;
        if (applied.events.length > 0) this.hasNewEvents = true;
      }
      this.appliedIndex = e.index;
      this.metrics.appliedEntries++;
      const term = this.proposalTerms.get(e.index);
      if (term === undefined) continue;
      this.proposalTerms.delete(e.index);
      if (term === e.term && result !== undefined) this.proposals.resolve(e.index, result);
      else this.proposals.reject(e.index, new ProposalDroppedError());
    }
  }

  private applyConfEntry(e: Entry): void {
    const cc = JSON.parse(e.data) as ConfChange;
    if (cc.op === 'remove') {
      this.members.delete(cc.id);
      this.transport.removePeer(cc.id);
    } else if (cc.context !== undefined) {
      this.setMember(JSON.parse(cc.context) as MemberAddress);
    }
  }

  private setMember(m: MemberAddress): void {
    this.members.set(m.id, m);
    const [host, port] = m.peerAddress.split(':');
    this.transport?.setPeer(m.id, { host: host ?? '127.0.0.1', port: Number(port) });
  }

  private releaseReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: { requestId: string; index: number }[] = [];
    for (const rs of this.readsAwaitingApply) {
      if (rs.index <= this.appliedIndex) this.reads.resolve(rs.requestId, undefined);
      else still.push(rs);
    }
    this.readsAwaitingApply = still;
  }

  /**
   * Takes a snapshot every `snapshotEveryEntries` applied entries. The image is
   * captured synchronously (it must match the applied index), but the file
   * write, fsyncs and WAL release run beside the Ready loop: awaiting them in
   * the loop held back heartbeats long enough to cost the cluster its leader.
   */
  private maybeSnapshot(): void {
    if (this.snapshotSaving || this.appliedIndex - this.lastSnapshotIndex < this.cfg.snapshotEveryEntries) return;
    const snap = this.raw.compact(encodeImage(this.kv.snapshot(), [...this.members.values()]), this.cfg.snapshotKeepEntries);
    if (!snap) return;
    this.lastSnapshotIndex = snap.meta.index;
    this.snapshotSaving = true;
    this.persistSnapshot(snap)
      .catch((e: unknown) => this.fatal(e))
      .finally(() => {
        this.snapshotSaving = false;
      });
  }

  private async persistSnapshot(snap: Snapshot): Promise<void> {
    // Order matters: the snapshot must be durable before the log behind it goes.
    await saveSnapshot(join(this.cfg.dataDir, 'snap'), snap);
    await this.wal.markSnapshot({ index: snap.meta.index, term: snap.meta.term });
    await this.wal.releaseTo(snap.meta.index);
    this.metrics.snapshotsTaken++;
  }

  // ---- the API the HTTP layer uses -----------------------------------------

  isLeader(): boolean {
    return this.raw.status().role === 'leader';
  }

  leader(): MemberAddress | undefined {
    const id = this.raw.status().leaderId;
    return id === '' ? undefined : this.members.get(id);
  }

  /** Propose a write on the leader; resolves with its result once applied here. */
  write(cmd: KvWriteCommand): Promise<KvResult> {
    if (this.proposeQueue.length + this.proposals.size >= this.cfg.maxPendingProposals) {
      return Promise.reject(new BusyError(`more than ${this.cfg.maxPendingProposals} writes are pending`));
    }
    return new Promise<KvResult>((resolve, reject) => {
      this.proposeQueue.push({ data: JSON.stringify(cmd), resolve, reject });
      if (!this.proposeFlushScheduled) {
        this.proposeFlushScheduled = true;
        setImmediate(() => this.flushProposals());
      }
    });
  }

  private flushProposals(): void {
    this.proposeFlushScheduled = false;
    const batch = this.proposeQueue;
    this.proposeQueue = [];
    if (batch.length === 0) return;
    const res = this.raw.proposeBatch(batch.map((p) => p.data));
    if (!res.ok) {
      const err = res.code === 'busy' ? new BusyError('the log has too many uncommitted entries') : new NoLeaderError(`this node cannot propose: ${res.code}`);
      for (const p of batch) p.reject(err);
      return;
    }
    this.metrics.proposals += batch.length;
    this.metrics.proposalBatches++;
    const first = res.index - batch.length + 1;
    batch.forEach((p, i) => {
      const index = first + i;
      this.proposalTerms.set(index, res.term);
      this.proposals.wait(index, this.cfg.requestTimeoutMs).then(p.resolve, (e: unknown) => {
        this.proposalTerms.delete(index);
        p.reject(e);
      });
    });
    this.schedule();
  }

  /** A single-server membership change (§4.1); resolves once applied here. */
  async changeMembership(cc: ConfChange): Promise<void> {
    const res = this.raw.proposeConfChange(cc);
    if (!res.ok) {
      if (res.code === 'conf_change_pending') throw new AppError('conf_change_pending', 409, 'another membership change is still in progress', { retryAfterSeconds: 1 });
      if (res.code === 'conf_change_invalid') throw new AppError('conf_change_invalid', 400, `membership change ${cc.op} ${cc.id} does not fit the current configuration`);
      throw new NoLeaderError(`this node cannot propose: ${res.code}`);
    }
    this.proposalTerms.set(res.index, res.term);
    const done = this.proposals.wait(res.index, this.cfg.requestTimeoutMs);
    this.schedule();
    await done;
  }

  /** Hands leadership to `to` (dissertation §3.10); resolves once this node sees a new leader. */
  async transferLeadership(to: NodeId): Promise<NodeId> {
    const r = this.raw.transferLeadership(to);
    if (r === 'not_leader') throw new NoLeaderError('only the leader can transfer leadership');
    if (r === 'invalid_target') throw new AppError('invalid_target', 400, `${to} is not a voting member`);
    this.schedule();
    const deadline = Date.now() + this.cfg.tickMs * this.cfg.electionTicks * 2;
    while (Date.now() < deadline) {
      const lead = this.raw.status().leaderId;
      if (lead !== this.cfg.id && lead !== '') return lead;
      await new Promise((res) => setTimeout(res, this.cfg.tickMs / 2));
    }
    throw new AppError('transfer_timeout', 504, `leadership did not move to ${to} within two election timeouts`);
  }

  /** Resolves once a read served from local state now is linearizable (ReadIndex, §6.4). */
  async linearizableBarrier(): Promise<void> {
    const requestId = `${this.cfg.id}:${++this.readSeq}`;
    const r = this.raw.readIndex(requestId);
    if (r === 'no_leader') throw new NoLeaderError();
    if (r === 'busy') throw new BusyError('too many reads are pending');
    const done = this.reads.wait(requestId, this.cfg.requestTimeoutMs);
    this.schedule();
    await done;
  }

  get kvState(): KvStateMachine {
    return this.kv;
  }

  raftStatus(): RaftStatus {
    return this.raw.status();
  }

  memberList(): MemberAddress[] {
    return [...this.members.values()];
  }

  get applied(): number {
    return this.appliedIndex;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.leases.stop();
    const err = new NoLeaderError('the node is shutting down');
    this.proposals.rejectAll(err);
    this.reads.rejectAll(err);
    for (const p of this.proposeQueue) p.reject(err);
    this.proposeQueue = [];
    await this.transport.close();
    // Wait for an in-flight loop iteration to finish its fsync before closing the WAL.
    for (let i = 0; i < 400 && (this.looping || this.snapshotSaving); i++) await new Promise((r) => setTimeout(r, 5));
    await this.wal.close();
  }
}
