// Goal: the real store node driver (store/node/node.ts) runs on injected I/O
// alone: in-memory log and snapshot stores (memory-io.ts), a loopback
// transport and virtual time. Elections, batched writes, snapshots, a crash
// and restart from what the memory disk kept, leases, leadership transfer,
// a failed fsync and a clean stop all happen on that I/O, deterministically.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { defaultNodeConfig, type MemberAddress, type NodeConfig } from '../../store/node/config.js';
import type { NodeIo, PeerTransport } from '../../store/node/io.js';
import { MemoryRaftLog, MemorySnapshotStore, reopenMemoryStorage } from '../../store/node/memory-io.js';
import { StoreNode } from '../../store/node/node.js';
import { WalClosedError } from '../../store/node/wal-errors.js';
import type { Message, NodeId } from '../../store/raft/index.js';
import { VirtualTimers } from '../support/virtual-timers.js';

/** Virtual ms a message takes between two nodes. */
const NET_DELAY_MS = 1;
/** Virtual ms within which a three-node cluster must elect a leader (several election timeouts). */
const ELECTION_LIMIT_MS = 5_000;

interface Member {
  readonly cfg: NodeConfig;
  readonly log: MemoryRaftLog;
  readonly snapshots: MemorySnapshotStore;
  readonly fatal: unknown[];
  node: StoreNode<PeerTransport> | undefined;
}

class LoopbackCluster {
  readonly timers = new VirtualTimers();
  readonly members = new Map<NodeId, Member>();
  private readonly random = new SeededRandom(7);

  constructor(size: number, makeLog: () => MemoryRaftLog = () => new MemoryRaftLog(), overrides: Partial<NodeConfig> = {}) {
    const addresses: MemberAddress[] = Array.from({ length: size }, (_, i) => ({ id: `n${i + 1}`, clientUrl: `http://n${i + 1}`, peerAddress: `n${i + 1}` }));
    for (const a of addresses) {
      const cfg: NodeConfig = {
        ...defaultNodeConfig,
        id: a.id,
        dataDir: '',
        clientPort: 0,
        peerPort: 0,
        initialCluster: addresses,
        tickMs: 10,
        snapshotEveryEntries: 10,
        snapshotKeepEntries: 2,
        leaseCheckMs: 20,
        ...overrides,
      };
      this.members.set(a.id, { cfg, log: makeLog(), snapshots: new MemorySnapshotStore(), fatal: [], node: undefined });
    }
  }

  async startAll(): Promise<void> {
    for (const id of this.members.keys()) await this.start(id);
  }

  /** Starts (or restarts) a member from what its memory disk holds. */
  async start(id: NodeId): Promise<StoreNode<PeerTransport>> {
    const m = this.member(id);
    const io: NodeIo = {
      log: m.log,
      snapshots: m.snapshots,
      transport: this.transport(),
      timers: this.timers,
      random: new SeededRandom(this.random.int(2 ** 31)),
      fatal: (e) => m.fatal.push(e),
    };
    m.node = await StoreNode.create(m.cfg, io, reopenMemoryStorage(m.log, m.snapshots));
    return m.node;
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: NodeId): StoreNode<PeerTransport> {
    const n = this.member(id).node;
    if (n === undefined) throw new Error(`${id} is not running`);
    return n;
  }

  running(): StoreNode<PeerTransport>[] {
    return [...this.members.values()].flatMap((m) => (m.node === undefined ? [] : [m.node]));
  }

  private transport(): PeerTransport {
    return {
      send: (msgs: readonly Message[]) => {
        for (const msg of msgs) this.timers.after(NET_DELAY_MS, () => this.members.get(msg.to)?.node?.receive([msg]));
      },
      setPeer: () => undefined,
      removePeer: () => undefined,
      close: async () => undefined,
    };
  }

  async leader(): Promise<StoreNode<PeerTransport>> {
    let found: StoreNode<PeerTransport> | undefined;
    await this.timers.until(() => (found = this.running().find((n) => n.isLeader())) !== undefined, ELECTION_LIMIT_MS, 'a leader');
    return found as StoreNode<PeerTransport>;
  }

  /** Advances virtual time until `p` settles. */
  async settle<T>(p: Promise<T>, limitMs = 10_000): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    await this.timers.until(() => done, limitMs, 'the promise to settle');
    return p;
  }

  async converged(): Promise<void> {
    const nodes = this.running();
    const target = Math.max(...nodes.map((n) => n.applied));
    await this.timers.until(() => nodes.every((n) => n.applied === target), 5_000, `every node applied ${target}`);
    const states = new Set(nodes.map((n) => n.kvState.snapshot()));
    expect(states.size).toBe(1);
  }
}

function puts(node: StoreNode<PeerTransport>, from: number, to: number, nowMs: number) {
  const writes = [];
  for (let i = from; i <= to; i++) writes.push(node.write({ type: 'put', key: `k${i}`, value: `v${i}`, nowMs }));
  return Promise.all(writes);
}

describe('StoreNode on in-memory I/O and virtual time', () => {
  it('elects a leader, batches a turn of writes into one proposal, snapshots, and replicates the same state', async () => {
    const c = new LoopbackCluster(3);
    await c.startAll();
    const leader = await c.leader();
    const results = await c.settle(puts(leader, 1, 30, c.timers.nowMs()));
    expect(results.every((r) => r.ok)).toBe(true);
    // Every write queued in one event-loop turn went out as one proposal batch.
    expect(leader.metrics.proposalBatches).toBe(1);
    await c.converged();
    expect(leader.metrics.snapshotsTaken).toBeGreaterThan(0);
    expect(c.member(leader.cfg.id).snapshots.newest()?.meta.index).toBeGreaterThan(0);
  });

  it('restarts a crashed follower from its memory disk, which catches up through a snapshot', async () => {
    const c = new LoopbackCluster(3);
    await c.startAll();
    const leader = await c.leader();
    await c.settle(puts(leader, 1, 5, c.timers.nowMs()));
    const followerId = [...c.members.keys()].find((id) => id !== leader.cfg.id) as NodeId;
    const follower = c.node(followerId);
    follower.crash();
    const appliedAtCrash = follower.applied;
    // The leader compacts its log past the follower's, so only a snapshot brings it back (§7).
    for (let i = 0; i < 4; i++) await c.settle(puts(leader, 10 * i + 10, 10 * i + 19, c.timers.nowMs()));
    expect(follower.applied).toBe(appliedAtCrash);
    const restarted = await c.start(followerId);
    await c.converged();
    expect(restarted.metrics.snapshotsInstalled).toBeGreaterThan(0);
    expect(restarted.kvState.get('k49')).toMatchObject({ ok: true, kv: { value: 'v49' } });
  });

  it('expires a lease on the leader and deletes its keys on every replica', async () => {
    const c = new LoopbackCluster(3);
    await c.startAll();
    const leader = await c.leader();
    await c.settle(leader.write({ type: 'leaseGrant', id: 42, ttlMs: 100, nowMs: c.timers.nowMs() }));
    await c.settle(leader.write({ type: 'put', key: 'owned', value: 'x', lease: 42, nowMs: c.timers.nowMs() }));
    await c.converged();
    expect(c.running().every((n) => n.kvState.get('owned').ok && n.kvState.leases().length === 1)).toBe(true);
    await c.timers.until(() => c.running().every((n) => n.kvState.leases().length === 0), 1_000, 'the lease to expire everywhere');
    expect(c.running().map((n) => n.kvState.get('owned'))).toEqual(c.running().map(() => expect.objectContaining({ ok: true, kv: null })));
  });

  it('transfers leadership on the node timers', async () => {
    const c = new LoopbackCluster(3);
    await c.startAll();
    const leader = await c.leader();
    const target = [...c.members.keys()].find((id) => id !== leader.cfg.id) as NodeId;
    expect(await c.settle(leader.transferLeadership(target))).toBe(target);
    expect(c.node(target).isLeader()).toBe(true);
  });

  it('hands a failed fsync to io.fatal once and then does nothing more', async () => {
    let failing = false;
    const c = new LoopbackCluster(1, () => new MemoryRaftLog({ sync: () => (failing ? Promise.reject(new Error('EIO')) : Promise.resolve()) }));
    const m = c.member('n1');
    await c.startAll();
    const leader = await c.leader();
    await c.settle(leader.write({ type: 'put', key: 'a', value: '1', nowMs: c.timers.nowMs() }));
    failing = true;
    let settled = false;
    leader.write({ type: 'put', key: 'b', value: '2', nowMs: c.timers.nowMs() }).then(
      () => (settled = true),
      () => (settled = true),
    );
    await c.timers.until(() => m.fatal.length > 0, 1_000, 'io.fatal');
    await c.timers.advance(1_000);
    expect(m.fatal).toHaveLength(1);
    expect(m.fatal[0]).toMatchObject({ code: 'wal_failed' });
    // A crashed node answers no one: the write's outcome is unknown to its client.
    expect(settled).toBe(false);
    expect(leader.kvState.get('b')).toMatchObject({ ok: true, kv: null });
  });

  it('stops cleanly: waiting writes get a retryable 503 and the log is closed', async () => {
    const c = new LoopbackCluster(3);
    await c.startAll();
    const leader = await c.leader();
    const follower = c.running().find((n) => n !== leader) as StoreNode<PeerTransport>;
    // A follower cannot propose: its write fails fast; the leader's waits until the stop.
    const pending = leader.write({ type: 'put', key: 'late', value: 'x', nowMs: c.timers.nowMs() });
    const stopped = leader.stop();
    await expect(c.settle(pending)).rejects.toMatchObject({ status: 503 });
    await c.settle(stopped);
    await expect(c.member(leader.cfg.id).log.save([], { term: 99, vote: '', commit: 0 })).rejects.toBeInstanceOf(WalClosedError);
    await expect(c.settle(follower.write({ type: 'put', key: 'f', value: 'y', nowMs: c.timers.nowMs() }))).rejects.toMatchObject({ status: 503 });
  });
});
