/**
 * An in-memory Raft cluster for scenario tests and the simulator: each peer is
 * a RawNode plus a MemoryStorage that follows the Ready contract exactly, and
 * a tiny state machine (a hash chain over applied entries) whose value at
 * every index is recorded, so state machine safety can be checked across peers.
 */
import { SeededRandom } from '../../lib/random.js';
import { assert } from '../../lib/assert.js';
import {
  RawNode,
  bootstrapStorage,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type Ready,
  type ReadState,
  type Snapshot,
  type StorageState,
} from '../../store/raft/index.js';

/** Durable storage as a real node would keep it: what survives a crash. */
export class MemoryStorage {
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  constructor(initial?: StorageState) {
    if (initial) {
      this.hardState = initial.hardState;
      this.snapshot = initial.snapshot;
      this.entries = [...initial.entries];
    }
  }

  /** Step 1 of the contract: snapshot, then entries (overwriting a suffix), then hard state. */
  persist(rd: Ready): void {
    if (rd.snapshot) {
      this.snapshot = rd.snapshot;
      this.entries = [];
    }
    const first = rd.entries[0];
    if (first) {
      this.entries = this.entries.filter((e) => e.index < first.index);
      const last = this.entries[this.entries.length - 1];
      assert(last === undefined || last.index === first.index - 1, `storage gap before ${first.index}`);
      this.entries.push(...rd.entries);
    }
    if (rd.hardState) this.hardState = rd.hardState;
  }

  compact(snapshot: Snapshot): void {
    if (this.snapshot && this.snapshot.meta.index >= snapshot.meta.index) return;
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.meta.index);
  }

  state(): StorageState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }
}

/** The replicated state machine: a running digest over applied normal entries. */
export interface AppState {
  index: number;
  digest: string;
  count: number;
}

function fnv(s: string, seed: string): string {
  let h = 0x811c9dc5;
  const str = seed + '|' + s;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

export class Peer {
  node: RawNode | undefined;
  app: AppState = { index: 0, digest: '0', count: 0 };
  readonly readStates: ReadState[] = [];
  readonly applied: Entry[] = [];

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    private readonly cfg: Partial<RaftConfig>,
    private readonly seed: number,
  ) {}

  get alive(): boolean {
    return this.node !== undefined;
  }

  start(restarts: number): void {
    this.node = new RawNode({ ...this.cfg, id: this.id }, this.storage.state(), new SeededRandom(this.seed * 1000 + restarts));
    const snap = this.storage.snapshot;
    // The state machine is volatile: a restart rebuilds it from the snapshot, then replays.
    this.app = snap && snap.data !== '' ? (JSON.parse(snap.data) as AppState) : { index: snap?.meta.index ?? 0, digest: '0', count: 0 };
    this.applied.length = 0;
  }

  crash(): void {
    this.node = undefined;
  }
}

export type Observer = {
  /** Called for each applied entry with the digest after it; used for state machine safety. */
  onApply?(peer: Peer, entry: Entry, app: AppState): void;
  onSnapshotInstalled?(peer: Peer, snapshot: Snapshot): void;
  /** Called with every Ready a peer handles, before it is persisted; used by the scenario tests' trace. */
  onReady?(peer: Peer, rd: Ready): void;
};

export class Cluster {
  readonly peers = new Map<NodeId, Peer>();
  /** Messages sent and not yet delivered, in send order. */
  inflight: Message[] = [];
  private readonly restarts = new Map<NodeId, number>();

  constructor(
    ids: readonly NodeId[],
    readonly cfg: Partial<RaftConfig> = {},
    readonly seed = 1,
    readonly observer: Observer = {},
  ) {
    const boot = bootstrapStorage(ids.map((id) => ({ id })));
    ids.forEach((id, i) => {
      const peer = new Peer(id, new MemoryStorage(boot), cfg, seed * 100 + i);
      this.peers.set(id, peer);
      peer.start(0);
    });
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    assert(p !== undefined, `no peer ${id}`);
    return p;
  }

  node(id: NodeId): RawNode {
    const n = this.peer(id).node;
    assert(n !== undefined, `peer ${id} is down`);
    return n;
  }

  /** A new, empty peer (a joiner): it learns the configuration from the leader. */
  addPeer(id: NodeId): Peer {
    const peer = new Peer(id, new MemoryStorage(), this.cfg, this.seed * 100 + this.peers.size);
    this.peers.set(id, peer);
    peer.start(0);
    return peer;
  }

  crash(id: NodeId): void {
    this.peer(id).crash();
  }

  restart(id: NodeId): void {
    const n = (this.restarts.get(id) ?? 0) + 1;
    this.restarts.set(id, n);
    this.peer(id).start(n);
  }

  /** Runs one peer's Ready through the contract: persist, send, apply, advance. */
  processReady(id: NodeId): boolean {
    const peer = this.peer(id);
    const node = peer.node;
    if (!node || !node.hasReady()) return false;
    const rd = node.ready();
    this.observer.onReady?.(peer, rd);
    this.completeReady(id, rd);
    return true;
  }

  /**
   * The rest of the Ready cycle for a Ready taken earlier with `ready()`:
   * persist, send, apply, advance. The simulator holds a Ready for a few steps
   * while the node keeps stepping messages, as a node whose fsync is
   * asynchronous does (the contract allows steps between ready and advance).
   */
  completeReady(id: NodeId, rd: Ready): void {
    const peer = this.peer(id);
    const node = peer.node;
    assert(node !== undefined, `peer ${id} is down`);
    peer.storage.persist(rd);
    this.inflight.push(...rd.messages);
    if (rd.snapshot) {
      peer.app = rd.snapshot.data !== '' ? (JSON.parse(rd.snapshot.data) as AppState) : { index: rd.snapshot.meta.index, digest: '0', count: 0 };
      peer.app.index = rd.snapshot.meta.index;
      this.observer.onSnapshotInstalled?.(peer, rd.snapshot);
    }
    for (const e of rd.committedEntries) {
      assert(e.index === peer.app.index + 1, `${id} applies ${e.index} after ${peer.app.index}`);
      const digest = e.type === 'normal' && e.data !== '' ? fnv(e.data, peer.app.digest) : peer.app.digest;
      const count = e.type === 'normal' && e.data !== '' ? peer.app.count + 1 : peer.app.count;
      peer.app = { index: e.index, digest, count };
      peer.applied.push(e);
      this.observer.onApply?.(peer, e, peer.app);
    }
    peer.readStates.push(...rd.readStates);
    node.advance(rd);
  }

  /** Take a snapshot of a peer's state machine and compact its log and storage. */
  compact(id: NodeId, keepEntries = 0): Snapshot | undefined {
    const peer = this.peer(id);
    const node = peer.node;
    if (!node) return undefined;
    const snap = node.compact(JSON.stringify(peer.app), keepEntries);
    if (snap) peer.storage.compact(snap);
    return snap;
  }

  /** Deliver one message; messages to a crashed peer are lost. */
  deliver(m: Message): void {
    const peer = this.peers.get(m.to);
    if (!peer?.node) return;
    peer.node.step(m);
  }

  /** Process readies and deliver every message until nothing moves (within a bound). */
  stabilize(maxRounds = 10_000, filter: (m: Message) => boolean = () => true): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of this.peers.keys()) moved = this.processReady(id) || moved;
      const batch = this.inflight;
      this.inflight = [];
      for (const m of batch) {
        moved = true;
        if (filter(m)) this.deliver(m);
      }
      if (!moved) return;
    }
    throw new Error(`cluster did not stabilize in ${maxRounds} rounds`);
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const p of this.peers.values()) p.node?.tick();
  }

  leader(): NodeId | undefined {
    let found: NodeId | undefined;
    let bestTerm = -1;
    for (const p of this.peers.values()) {
      const st = p.node?.status();
      if (st?.role === 'leader' && st.term > bestTerm) {
        found = p.id;
        bestTerm = st.term;
      }
    }
    return found;
  }
}
