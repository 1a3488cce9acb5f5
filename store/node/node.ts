/**
 * One store node: the Raft core driven through the I/O seams of io.ts. The
 * driver loop follows the core's contract (docs/RAFT.md): persist (log,
 * fsync), then send, then apply to the KV state machine, then advance. Client
 * writes are batched per event-loop turn into one proposal, so one fsync
 * covers many writes.
 *
 * `startProcessNode` (process-io.ts) runs it on the process's real I/O;
 * `StoreNode.create` runs the same driver on any NodeIo, which is how the
 * deterministic simulation (test/sim2pc) runs it on simulated disks, network
 * and time.
 */
import { assert } from '../../lib/assert.js';
import { AppError } from '../../lib/errors.js';
import type { Cancel, Timers } from '../../lib/timers.js';
import { silentLogger, type Logger } from '../../lib/logger.js';
import { LeaseKeeper, type LeaseHost } from './leases.js';
import { KvStateMachine, type KvApplied, type KvResult, type KvWriteCommand } from '../kv/index.js';
import type { KeyStore } from '../kv/keystore.js';
import {
  RawNode,
  type ConfChange,
  type Entry,
  type Message,
  type NodeId,
  type RaftStatus,
  type Snapshot,
  type StorageState,
} from '../raft/index.js';
import { type MemberAddress, type NodeConfig } from './config.js';
import { BusyError, NoLeaderError } from './errors.js';
import { decodeImage, encodeExternalImage, encodeImage, kvConfigOf } from './image.js';
import { bootstrapIfEmpty, buildKv, startingKv } from './startup.js';
import type { NodeIo, PeerTransport, RaftLogStore } from './io.js';
import { Proposals } from './proposals.js';
import { committedAreStable, ReadyPersister } from './ready-persist.js';
import { Reads } from './reads.js';
import { Members } from './members.js';
import type { SnapshotOffers } from './snapshot-offers.js';
import { SnapshotStreamer } from './snapshot-stream.js';
import { SnapshotTaker, type SnapshotTakerHost } from './snapshot-taker.js';
import type { Transport } from './transport.js';

export { BusyError, NoLeaderError, ProposalDroppedError } from './errors.js';

/** What a conf-change proposal resolves with once applied. */
const CONF_APPLIED = { ok: true, type: 'put', revision: 0, previous: null } as const satisfies KvResult;
/** How long a transfer may take before it is reported failed, in election timeouts (§3.10 abandons it after one). */
const TRANSFER_WAIT_ELECTIONS = 2;
/** How often stop() looks whether the in-flight fsync has finished, in ms. */
const STOP_POLL_MS = 5;
/** Most stop() waits for an in-flight fsync before closing the log anyway, in ms. */
const STOP_DRAIN_LIMIT_MS = 2_000;

export interface NodeMetrics {
  proposals: number;
  proposalBatches: number;
  readyLoops: number;
  appliedEntries: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  leaderChanges: number;
  /** Entries delivered again after a restart that the reopened on-disk state already held. */
  skippedEntries: number;
}

/**
 * `T` is the transport's concrete type. Without a type argument it is the TCP
 * transport a process composes, which store/api reaches through `transport`
 * (its fault filter and drop counter); the simulation's node is
 * `StoreNode<PeerTransport>` or its own transport type.
 */
export class StoreNode<T extends PeerTransport = Transport> {
  private kv: KvStateMachine;
  /** The on-disk key store the KV state machine runs on (NodeIo.keys), replaced when a pulled snapshot is swapped in. */
  private keys: KeyStore | undefined;
  /** Snapshot streams, with an on-disk key store and NodeIo.streams; else whole JSON snapshots. */
  private readonly streamer: SnapshotStreamer | undefined;
  private readonly members: Members;
  private readonly proposals: Proposals;
  private readonly reads: Reads;
  private looping = false;
  private cancelTicker: Cancel | undefined;
  private appliedIndex: number;
  private readonly snapshots: SnapshotTaker;
  /** stop() or crash() was called: no new work starts. */
  private stopped = false;
  /** crash() was called: not even the work in flight may touch storage, peers or clients again. */
  private halted = false;
  private leaderId: NodeId = '';
  /** This node's role as of the last Ready that carried a soft state. */
  private role: string = 'follower';
  private readonly persister: ReadyPersister;
  /** Set when applied entries produced watch events since the last onApplied call. */
  private hasNewEvents = false;
  readonly metrics: NodeMetrics = {
    proposals: 0,
    proposalBatches: 0,
    readyLoops: 0,
    appliedEntries: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    leaderChanges: 0,
    skippedEntries: 0,
  };
  /** Called after every applied batch (watches and the lease keeper hook in); `events` is false when no key changed. */
  onApplied: ((appliedIndex: number, events: boolean) => void) | undefined;
  /** Called when this node learns of a new leader (possibly itself). */
  onLeaderChange: ((leaderId: NodeId, isSelf: boolean) => void) | undefined;
  /** Called for every entry applied, with the KV outcome of a data entry (undefined for a conf change or a no-op): for checkers. */
  onEntryApplied: ((entry: Entry, applied: KvApplied | undefined) => void) | undefined;

  readonly leases: LeaseKeeper;
  /** The node's time: the HTTP layer stamps writes with `timers.nowMs()`. */
  readonly timers: Timers;
  readonly transport: T;
  private readonly log: RaftLogStore;

  private constructor(
    readonly cfg: NodeConfig,
    private readonly raw: RawNode,
    private readonly io: NodeIo<T>,
    snapshot: Snapshot | undefined,
  ) {
    this.timers = io.timers;
    this.transport = io.transport;
    this.log = io.log;
    this.persister = new ReadyPersister(io.log, io.snapshots, () => this.halted);
    this.proposals = new Proposals(io.timers, cfg, {
      proposeBatch: (data) => this.raw.proposeBatch(data),
      proposed: (n) => {
        this.metrics.proposals += n;
        this.metrics.proposalBatches++;
        this.schedule();
      },
      stopped: () => this.stopped,
    });
    this.reads = new Reads(io.timers, cfg.id, cfg.requestTimeoutMs);
    this.keys = io.keys;
    const image = snapshot && snapshot.data !== '' ? decodeImage(snapshot.data) : undefined;
    const start = startingKv(image, snapshot?.meta.index ?? 0, cfg, io.keys);
    this.kv = start.kv;
    this.members = new Members(io.transport);
    this.members.replace(start.members ?? image?.members ?? cfg.initialCluster);
    // Raft's applied index: the log after it is delivered again, and entries the
    // reopened state machine already holds are skipped (applyEach).
    this.appliedIndex = snapshot?.meta.index ?? 0;
    this.leases = new LeaseKeeper(this.leaseHost(), io.timers, cfg.leaseCheckMs);
    this.streamer = io.streams === undefined || io.keys?.openView === undefined ? undefined : this.makeStreamer(io.streams, io.logger ?? silentLogger);
    this.snapshots = new SnapshotTaker(this.snapshotHost(), this.appliedIndex);
  }

  private snapshotHost(): SnapshotTakerHost {
    // With streams the on-disk engine is the snapshot: no copy of the state is made, nothing is built on this thread.
    const external = this.streamer !== undefined;
    return {
      cfg: this.cfg,
      raw: this.raw,
      snapshots: this.io.snapshots,
      log: this.log,
      external,
      image: () => (external ? encodeExternalImage(this.members.list()) : encodeImage(this.kv.snapshot(), this.members.list())),
      flushEngine: async () => this.keys?.flush(),
      halted: () => this.halted,
      fatal: (e) => this.fatal(e),
      taken: () => this.metrics.snapshotsTaken++,
    };
  }

  private makeStreamer(streams: NonNullable<NodeIo['streams']>, log: Logger): SnapshotStreamer {
    const host = { id: this.cfg.id, kv: () => this.kv, keys: () => this.keys as KeyStore, members: () => this.members.list() };
    return new SnapshotStreamer(streams, this.timers, host, log, () => this.schedule());
  }

  /**
   * A node on injected I/O. `stored` is what its storage holds (the newest
   * snapshot, the log after it, the hard state: what a restart reads back).
   * An empty store founds the cluster from `cfg.initialCluster`, unless
   * `cfg.join`. The ticker and the lease checks start on `io.timers`.
   */
  static async create<P extends PeerTransport>(cfg: NodeConfig, io: NodeIo<P>, stored: StorageState): Promise<StoreNode<P>> {
    const storage = await bootstrapIfEmpty(cfg, io.log, stored);
    const raw = new RawNode({ ...cfg.raftTuning, id: cfg.id, electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks }, storage, io.random);
    const node = new StoreNode<P>(cfg, raw, io, storage.snapshot);
    node.cancelTicker = io.timers.every(cfg.tickMs, () => node.tick());
    node.leases.start();
    node.schedule();
    return node;
  }

  private leaseHost(): LeaseHost {
    return {
      isLeader: () => this.isLeader(),
      leases: () => this.kv.leases(),
      revoke: (id, nowMs) => this.write({ type: 'leaseRevoke', id, nowMs }),
    };
  }

  // ---- driver loop --------------------------------------------------------

  private tick(): void {
    if (this.stopped) return;
    this.raw.tick();
    this.schedule();
  }

  /** Peers' messages, from whatever transport carries them in; those for another node are ignored. */
  receive(msgs: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) {
      if (m.to !== this.cfg.id || this.streamer?.incoming(m) === true) continue;
      this.raw.step(m);
    }
    this.schedule();
  }

  /** The transport could not deliver to `peer`: Raft probes it again instead of pipelining into the void. */
  reportUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.raw.reportUnreachable(peer);
  }

  private schedule(): void {
    if (this.looping || this.stopped) return;
    this.looping = true;
    this.timers.soon(() => {
      this.loop().catch((e: unknown) => this.fatal(e));
    });
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped && (this.installPulled() || this.raw.hasReady())) {
        const rd = this.raw.ready();
        const messages = this.outgoing(rd.messages);
        if (rd.softState) this.role = rd.softState.role;
        // Raft dissertation §10.2.1 (as etcd does): a leader sends its appends
        // before its own fsync, so the leader's and the followers' disk writes
        // overlap. Safe because nothing commits from this Ready before the next
        // loop turn, which starts only after this persist is durable. Never when
        // this Ready changes term or vote: those must be durable before any send.
        const sendFirst = this.role === 'leader' && !this.persister.changesTermOrVote(rd.hardState);
        if (sendFirst) this.transport.send(messages);
        // Committed entries that an earlier Ready already made durable here are
        // applied (and their clients answered) while this Ready's fsync runs,
        // rather than one fsync later, as etcd's apply runs beside its WAL save.
        // Not with a snapshot or a membership change in the batch: those keep
        // the plain order.
        const applyFirst = committedAreStable(rd);
        if (applyFirst) this.applyEntries(rd.committedEntries);
        await this.persister.persist(rd);
        // A crashed process does nothing after its fsync returns.
        if (this.halted) return;
        if (!sendFirst) this.transport.send(messages);
        if (rd.snapshot) this.installSnapshot(rd.snapshot);
        if (!applyFirst) this.applyEntries(rd.committedEntries);
        this.reads.confirmed(rd.readStates);
        if (rd.softState) this.onSoftState(rd.softState.leaderId);
        this.raw.advance(rd);
        this.reads.release(this.appliedIndex);
        this.metrics.readyLoops++;
        if (rd.committedEntries.length > 0 || rd.snapshot) {
          const events = this.hasNewEvents || rd.snapshot !== undefined;
          this.hasNewEvents = false;
          this.onApplied?.(this.appliedIndex, events);
        }
        this.snapshots.maybeTake(this.appliedIndex);
      }
    } finally {
      this.looping = false;
    }
    // Work that arrived during the last await of the loop.
    if (!this.stopped && (this.raw.hasReady() || this.streamer?.hasPulled === true)) this.schedule();
  }

  /** Snapshot messages rewritten to name a stream of the on-disk state (snapshot-stream.ts). */
  private outgoing(messages: readonly Message[]): readonly Message[] {
    if (this.streamer === undefined || !messages.some((m) => m.type === 'snap')) return messages;
    return messages.flatMap((m) => this.streamer?.outgoing(m) ?? []);
  }

  /**
   * At a safe point of the loop (no batch half applied): swaps in a state
   * pulled from the leader's stream, then hands Raft the snapshot message
   * that named it. Returns true when Raft has new work from it.
   */
  private installPulled(): boolean {
    const pulled = this.streamer?.take();
    if (pulled === undefined || this.keys === undefined) return false;
    if (pulled.appliedIndex <= this.kv.appliedIndex) {
      void pulled.side.discard(); // the log brought this node as far meanwhile
      return false;
    }
    pulled.side.swapIn(this.keys);
    this.keys = pulled.side.keys;
    const kv = KvStateMachine.reopen(kvConfigOf(this.cfg), this.keys);
    assert(kv !== undefined && kv.appliedIndex === pulled.appliedIndex, 'a pulled snapshot reopens at its applied index');
    this.kv = kv;
    this.proposals.rejectThrough(kv.appliedIndex);
    const members = Members.fromAux(kv);
    if (members !== undefined) this.members.replace(members);
    this.metrics.snapshotsInstalled++;
    this.raw.step(pulled.message);
    return this.raw.hasReady();
  }

  private fatal(e: unknown): void {
    // Leftovers of a crashed node (a continuation after its storage was cut off) report nothing.
    if (this.halted) return;
    // A failed fsync or a corrupt state means this replica can no longer be trusted:
    // stop every activity first, in case io.fatal returns (a simulated process).
    this.crash();
    this.io.fatal(e);
  }

  private onSoftState(leaderId: NodeId): void {
    if (leaderId === this.leaderId) return;
    this.metrics.leaderChanges++;
    this.leaderId = leaderId;
    this.reads.leaderChanged();
    this.leases.onLeaderChange();
    this.onLeaderChange?.(leaderId, leaderId === this.cfg.id);
  }

  // ---- applying -----------------------------------------------------------

  private installSnapshot(s: Snapshot): void {
    const image = decodeImage(s.data);
    if (image.kv === undefined) {
      // A streamed snapshot: installPulled swapped its state in before Raft saw the message.
      assert(this.kv.appliedIndex >= s.meta.index, `snapshot ${s.meta.index} installed without its state (at ${this.kv.appliedIndex})`);
    } else {
      this.kv = buildKv(image.kv, this.cfg, this.keys);
      this.members.replace(image.members);
      this.kv.batch(() => this.members.record(this.kv));
      this.metrics.snapshotsInstalled++;
    }
    this.proposals.rejectThrough(s.meta.index);
    this.appliedIndex = s.meta.index;
    this.snapshots.installed(s.meta.index);
  }

  /** One key-store batch per Ready: an on-disk store commits the entries with their applied index at once. */
  private applyEntries(entries: readonly Entry[]): void {
    if (entries.length > 0) this.kv.batch(() => this.applyEach(entries));
  }

  private applyEach(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.appliedIndex + 1, `apply ${e.index} after ${this.appliedIndex}`);
      let result: KvResult | undefined;
      let applied: KvApplied | undefined;
      if (e.index <= this.kv.appliedIndex) {
        // Already in the reopened on-disk state (a restart, a pulled snapshot): not applied twice.
        if (e.type === 'conf') this.members.apply(e); // idempotent
        this.metrics.skippedEntries++;
      } else if (e.type === 'conf') {
        this.members.apply(e);
        this.members.record(this.kv);
        this.kv.markApplied(e.index);
        result = CONF_APPLIED;
      } else if (e.data !== '') {
        applied = this.kv.applyData(e.data, e.index);
        result = applied.result;
        if (applied.events.length > 0) this.hasNewEvents = true;
      } else {
        this.kv.markApplied(e.index);
      }
      this.appliedIndex = e.index;
      this.snapshots.applied(e);
      this.metrics.appliedEntries++;
      this.onEntryApplied?.(e, applied);
      this.proposals.settle(e.index, e.term, result);
    }
  }

  // ---- the API the HTTP layer uses -----------------------------------------

  isLeader(): boolean {
    return this.raw.role === 'leader';
  }

  leader(): MemberAddress | undefined {
    const id = this.raw.leaderId;
    return id === '' ? undefined : this.members.get(id);
  }

  /** Propose a write on the leader; resolves with its result once applied here. */
  write(cmd: KvWriteCommand): Promise<KvResult> {
    return this.proposals.write(JSON.stringify(cmd));
  }

  /** A single-server membership change (§4.1); resolves once applied here. */
  async changeMembership(cc: ConfChange): Promise<void> {
    const res = this.raw.proposeConfChange(cc);
    if (!res.ok) {
      if (res.code === 'conf_change_pending') throw new AppError('conf_change_pending', 409, 'another membership change is still in progress', { retryAfterSeconds: 1 });
      if (res.code === 'conf_change_invalid') throw new AppError('conf_change_invalid', 400, `membership change ${cc.op} ${cc.id} does not fit the current configuration`);
      throw new NoLeaderError(`this node cannot propose: ${res.code}`);
    }
    const done = this.proposals.wait(res.index, res.term);
    this.schedule();
    await done;
  }

  /** Hands leadership to `to` (dissertation §3.10); resolves once this node sees a new leader. */
  async transferLeadership(to: NodeId): Promise<NodeId> {
    const r = this.raw.transferLeadership(to);
    if (r === 'not_leader') throw new NoLeaderError('only the leader can transfer leadership');
    if (r === 'invalid_target') throw new AppError('invalid_target', 400, `${to} is not a voting member`);
    this.schedule();
    const deadline = this.timers.monotonicMs() + this.cfg.tickMs * this.cfg.electionTicks * TRANSFER_WAIT_ELECTIONS;
    while (this.timers.monotonicMs() < deadline) {
      const lead = this.raw.leaderId;
      if (lead !== this.cfg.id && lead !== '') return lead;
      await this.timers.sleep(this.cfg.tickMs / 2);
    }
    throw new AppError('transfer_timeout', 504, `leadership did not move to ${to} within two election timeouts`);
  }

  /** Resolves once a read served from local state now is linearizable (ReadIndex, §6.4). */
  async linearizableBarrier(): Promise<void> {
    const { requestId, done } = this.reads.start();
    const r = this.raw.readIndex(requestId);
    if (r !== 'ok') {
      this.reads.refuse(requestId, r === 'no_leader' ? new NoLeaderError() : new BusyError('too many reads are pending'));
      return done;
    }
    this.schedule();
    await done;
  }

  /** Snapshot streams pulled by this node as a follower, completed and failed. */
  get snapshotStreamCounts(): { readonly pulled: number; readonly failed: number } {
    return this.streamer?.counts ?? { pulled: 0, failed: 0 };
  }

  /** The snapshot streams this node offers as leader (store/api/snapshots.ts serves them); undefined without streams. */
  get snapshotOffers(): SnapshotOffers | undefined {
    return this.streamer?.offers;
  }

  get kvState(): KvStateMachine {
    return this.kv;
  }

  raftStatus(): RaftStatus {
    return this.raw.status();
  }

  memberList(): MemberAddress[] {
    return this.members.list();
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** A clean shutdown: waiting clients get a retryable 503, the fsync in flight finishes, the log is closed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopTimers();
    const err = new NoLeaderError('the node is shutting down');
    this.proposals.rejectAll(err);
    this.reads.rejectAll(err);
    await this.transport.close();
    // Wait for an in-flight loop iteration to finish its fsync before closing the log.
    const giveUpAt = this.timers.monotonicMs() + STOP_DRAIN_LIMIT_MS;
    while ((this.looping || this.snapshots.saving) && this.timers.monotonicMs() < giveUpAt) await this.timers.sleep(STOP_POLL_MS);
    await this.streamer?.stop();
    await this.log.close();
    await this.keys?.close();
  }

  /**
   * Stops the node dead, as SIGKILL stops a process (the simulation's crash):
   * from now on it makes no storage call, sends nothing, and answers no
   * waiting client; its timers are cancelled. The log and snapshot store are
   * not closed: what they made durable is all that survives, and a restarted
   * node is built from it with `create`.
   */
  crash(): void {
    if (this.halted) return;
    this.halted = true;
    this.stopped = true;
    this.stopTimers();
    this.proposals.abandonAll();
    this.reads.abandonAll();
  }

  private stopTimers(): void {
    this.cancelTicker?.();
    this.cancelTicker = undefined;
    this.leases.stop();
  }
}
