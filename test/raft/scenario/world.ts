/**
 * The world a scenario runs in: the harness Cluster plus a scripted network.
 *
 * Nodes are eager: after every command each live node handles its Ready at
 * once (persist, queue messages, apply, advance), and the trace says what it
 * did. The network is lazy: queued messages move only on `deliver` or
 * `stabilize`, so a script controls every hop. A message across a partition
 * or to a crashed node is dropped, when sent if the cut is already there,
 * else when it would be delivered, and the trace says so.
 */
import { assert } from '../../../lib/assert.js';
import type { Message, NodeId, RaftConfig, Ready } from '../../../store/raft/index.js';
import { Cluster, type Peer } from '../harness.js';
import { fmtEntry, fmtId, fmtMessage, fmtSnapshot } from './format.js';

/** A mistake in the script (unknown node, bad argument): printed as `error: ...`, not a crash. */
export class ScenarioError extends Error {}

/** Bound on Ready rounds in one `stabilize`, so a livelock fails instead of hanging. */
const MAX_STABILIZE_ROUNDS = 1_000;
/** Bound on Readies one node may produce back to back after one command. */
const MAX_READIES_PER_NODE = 100;

export class World {
  readonly cluster: Cluster;
  /** Partition: node to side. Empty when the network is whole. */
  private sides = new Map<NodeId, number>();
  private lastReady: Ready | undefined;
  /** Nodes that sent vote or pre-vote requests since the last `takeCampaigners()`. */
  private campaigners = new Set<NodeId>();

  constructor(ids: readonly NodeId[], cfg: Partial<RaftConfig>, seed: number) {
    this.cluster = new Cluster(ids, cfg, seed, {
      onReady: (_peer: Peer, rd: Ready) => {
        this.lastReady = rd;
      },
    });
  }

  get electionTicks(): number {
    return this.cluster.cfg.electionTicks ?? 10;
  }

  peer(id: NodeId): Peer {
    const p = this.cluster.peers.get(id);
    if (p === undefined) throw new ScenarioError(`no node ${id}`);
    return p;
  }

  /** A node that must be up for the command to make sense. */
  live(id: NodeId): NonNullable<Peer['node']> {
    const n = this.peer(id).node;
    if (n === undefined) throw new ScenarioError(`node ${id} is down`);
    return n;
  }

  ids(): NodeId[] {
    return [...this.cluster.peers.keys()];
  }

  // ---- network -------------------------------------------------------------

  partition(groups: readonly (readonly NodeId[])[]): string {
    const sides = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const id of g) {
        this.peer(id);
        if (sides.has(id)) throw new ScenarioError(`node ${id} is on two sides`);
        sides.set(id, i);
      }
    });
    // Nodes not named form one more side of their own.
    const rest = this.ids().filter((id) => !sides.has(id));
    for (const id of rest) sides.set(id, groups.length);
    this.sides = sides;
    const shown = rest.length > 0 ? [...groups, rest] : groups;
    return shown.map((g) => g.join(' ')).join(' | ');
  }

  heal(): void {
    this.sides = new Map();
  }

  /** Why `m` cannot arrive now, or undefined if it can. */
  dropReason(m: Message): string | undefined {
    if (this.cluster.peers.get(m.to)?.node === undefined) return `${m.to} down`;
    if (this.sides.size > 0 && this.sides.get(m.from) !== this.sides.get(m.to)) return 'partition';
    return undefined;
  }

  /** Deliver (or drop) one message; returns its trace line. */
  deliver(m: Message): string {
    const reason = this.dropReason(m);
    if (reason !== undefined) return `drop ${fmtMessage(m)} (${reason})`;
    this.cluster.deliver(m);
    return fmtMessage(m);
  }

  // ---- readies -------------------------------------------------------------

  /** Every live node handles its Ready until it has none; the trace of what each did. */
  processAll(): string[] {
    const out: string[] = [];
    for (const id of this.ids()) {
      for (let i = 0; this.processOne(id, out); i++) {
        assert(i < MAX_READIES_PER_NODE, `node ${id} keeps producing Readies`);
      }
    }
    return out;
  }

  private processOne(id: NodeId, out: string[]): boolean {
    const node = this.peer(id).node;
    if (node === undefined || !node.hasReady()) return false;
    const before = this.cluster.inflight.length;
    this.lastReady = undefined;
    this.cluster.processReady(id);
    const rd = this.lastReady as Ready | undefined;
    assert(rd !== undefined, 'the harness reports every Ready');
    const sent = this.cluster.inflight.splice(before);
    out.push(`> ${id} ready`);
    if (rd.softState) out.push(`  role=${rd.softState.role} lead=${fmtId(rd.softState.leaderId)}`);
    // In the contract's order: persist (snapshot, entries, hard state), send, apply.
    if (rd.snapshot) out.push(`  snapshot ${fmtSnapshot(rd.snapshot)}`);
    for (const e of rd.entries) out.push(`  append ${fmtEntry(e)}`);
    if (rd.hardState) out.push(`  hardstate term=${rd.hardState.term} vote=${fmtId(rd.hardState.vote)} commit=${rd.hardState.commit}`);
    for (const m of sent) {
      if (m.type === 'vote' || m.type === 'preVote') this.campaigners.add(m.from);
      const reason = this.dropReason(m);
      if (reason === undefined) {
        this.cluster.inflight.push(m);
        out.push(`  send ${fmtMessage(m)}`);
      } else {
        out.push(`  send ${fmtMessage(m)} (dropped: ${reason})`);
      }
    }
    for (const e of rd.committedEntries) out.push(`  apply ${fmtEntry(e)}`);
    for (const rs of rd.readStates) out.push(`  read ${rs.requestId} index=${rs.index}`);
    return true;
  }

  /** Which nodes started an election (or pre-election) since the last call. */
  takeCampaigners(): Set<NodeId> {
    const c = this.campaigners;
    this.campaigners = new Set();
    return c;
  }

  /**
   * Handle readies and deliver every queued message, round after round,
   * until nothing moves. Delivered messages are not listed again (their
   * `send` line is in the trace); dropped ones are.
   */
  stabilize(): string[] {
    const out: string[] = [];
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      const ready = this.processAll();
      out.push(...ready);
      const batch = this.cluster.inflight;
      this.cluster.inflight = [];
      for (const m of batch) {
        const line = this.deliver(m);
        if (line.startsWith('drop ')) out.push(line);
      }
      if (ready.length === 0 && batch.length === 0) return out;
    }
    throw new Error(`no quiet state after ${MAX_STABILIZE_ROUNDS} rounds`);
  }
}
