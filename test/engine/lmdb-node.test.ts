// Goal: the store node driver on an LMDB key store (NodeIo.keys), on
// in-memory Raft I/O and virtual time: every replica's LMDB files hold
// exactly the keys its state machine serves, with the applied index of the
// last applied batch; a restart reopens the state machine from the store and
// skips the log entries it already holds (none applied twice); a follower
// that fell behind the leader's compaction installs a snapshot into its
// store, replacing what it held.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import type { LmdbKeyStore } from '../../store/engine/lmdb-keyspace.js';
import { defaultNodeConfig, type MemberAddress, type NodeConfig } from '../../store/node/config.js';
import type { NodeIo, PeerTransport } from '../../store/node/io.js';
import { MemoryRaftLog, MemorySnapshotStore, reopenMemoryStorage } from '../../store/node/memory-io.js';
import { StoreNode } from '../../store/node/node.js';
import type { Message, NodeId } from '../../store/raft/index.js';
import { VirtualTimers } from '../support/virtual-timers.js';
import { closeTempStore, forgetTempStore, openTempStore, tempDir } from './lmdb-temp.js';

interface Member {
  readonly cfg: NodeConfig;
  readonly log: MemoryRaftLog;
  readonly snapshots: MemorySnapshotStore;
  readonly dir: string;
  keys: LmdbKeyStore | undefined;
  node: StoreNode<PeerTransport> | undefined;
}

class LmdbLoopback {
  readonly timers = new VirtualTimers();
  readonly members = new Map<NodeId, Member>();
  private readonly random = new SeededRandom(11);

  constructor(size: number, snapshotEveryEntries = 10) {
    const addresses: MemberAddress[] = Array.from({ length: size }, (_, i) => ({ id: `n${i + 1}`, clientUrl: `http://n${i + 1}`, peerAddress: `n${i + 1}` }));
    for (const a of addresses) {
      const cfg: NodeConfig = { ...defaultNodeConfig, id: a.id, dataDir: '', clientPort: 0, peerPort: 0, initialCluster: addresses, tickMs: 10, snapshotEveryEntries, snapshotKeepEntries: 2, leaseCheckMs: 20, engine: 'lmdb' };
      this.members.set(a.id, { cfg, log: new MemoryRaftLog(), snapshots: new MemorySnapshotStore(), dir: tempDir(), keys: undefined, node: undefined });
    }
  }

  /** Starts (or restarts) a member from its memory disk, on its LMDB directory reopened. */
  async start(id: NodeId): Promise<StoreNode<PeerTransport>> {
    const m = this.members.get(id) as Member;
    if (m.keys !== undefined) await closeTempStore(m.keys);
    m.keys = openTempStore(m.dir);
    const io: NodeIo = { log: m.log, snapshots: m.snapshots, transport: this.transport(), timers: this.timers, random: new SeededRandom(this.random.int(2 ** 31)), keys: m.keys, fatal: (e) => { throw e; } };
    m.node = await StoreNode.create(m.cfg, io, reopenMemoryStorage(m.log, m.snapshots));
    return m.node;
  }

  running(): StoreNode<PeerTransport>[] {
    return [...this.members.values()].flatMap((m) => (m.node === undefined ? [] : [m.node]));
  }

  private transport(): PeerTransport {
    return {
      send: (msgs: readonly Message[]) => {
        for (const msg of msgs) this.timers.after(1, () => this.members.get(msg.to)?.node?.receive([msg]));
      },
      setPeer: () => undefined,
      removePeer: () => undefined,
      close: async () => undefined,
    };
  }

  async leader(): Promise<StoreNode<PeerTransport>> {
    let found: StoreNode<PeerTransport> | undefined;
    await this.timers.until(() => (found = this.running().find((n) => n.isLeader())) !== undefined, 5_000, 'a leader');
    return found as StoreNode<PeerTransport>;
  }

  async settle<T>(p: Promise<T>): Promise<T> {
    let done = false;
    p.then(() => (done = true), () => (done = true));
    await this.timers.until(() => done, 10_000, 'the promise to settle');
    return p;
  }

  /** Every running node applied as far as the furthest; each one's LMDB store holds exactly what it serves. */
  async converged(): Promise<void> {
    const nodes = this.running();
    const target = Math.max(...nodes.map((n) => n.applied));
    await this.timers.until(() => nodes.every((n) => n.applied === target), 5_000, `every node applied ${target}`);
    expect(new Set(nodes.map((n) => n.kvState.snapshot())).size).toBe(1);
    for (const m of this.members.values()) {
      if (m.node === undefined || m.keys === undefined) continue;
      const served = m.node.kvState.range({ prefix: '' });
      expect(served.ok && [...(m.keys.inOrder())].map((s) => s.kv)).toEqual(served.ok && served.kvs);
      expect(m.keys.appliedIndex).toBe(m.node.kvState.appliedIndex);
      expect(m.keys.totalBytes).toBe(m.node.kvState.storeBytes);
    }
  }
}

function puts(node: StoreNode<PeerTransport>, from: number, to: number, nowMs: number) {
  const writes = [];
  for (let i = from; i <= to; i++) writes.push(node.write({ type: 'put', key: `k${i}`, value: `v${i}`, nowMs }));
  return Promise.all(writes);
}

describe('StoreNode on an LMDB key store', () => {
  it('keeps every replica\'s keys in its LMDB store, through a crash and a snapshot install', async () => {
    const c = new LmdbLoopback(3);
    for (const id of c.members.keys()) await c.start(id);
    const leader = await c.leader();
    expect((await c.settle(puts(leader, 1, 5, c.timers.nowMs()))).every((r) => r.ok)).toBe(true);
    await c.converged();

    const followerId = [...c.members.keys()].find((id) => id !== leader.cfg.id) as NodeId;
    const follower = c.members.get(followerId) as Member;
    follower.node?.crash();
    for (let i = 0; i < 4; i++) await c.settle(puts(leader, 10 * i + 10, 10 * i + 19, c.timers.nowMs()));
    await c.settle(leader.write({ type: 'delete', key: 'k1', nowMs: c.timers.nowMs() }));

    const restarted = await c.start(followerId);
    await c.converged();
    expect(restarted.metrics.snapshotsInstalled).toBeGreaterThan(0);
    expect(follower.keys?.get('k1')).toBeUndefined();
    expect(follower.keys?.get('k49')?.kv.value).toBe('v49');

    // A clean stop closes the store (the node's NodeIo.keys).
    await restarted.stop();
    if (follower.keys !== undefined) forgetTempStore(follower.keys);
    follower.node = undefined;
    follower.keys = undefined;
  });

  it('a restarted replica resumes from its store: what it had applied is skipped, never applied twice', async () => {
    const c = new LmdbLoopback(3, 1_000); // no snapshot: the whole log is delivered again
    for (const id of c.members.keys()) await c.start(id);
    const leader = await c.leader();
    await c.settle(puts(leader, 1, 25, c.timers.nowMs()));
    await c.converged();
    const followerId = [...c.members.keys()].find((id) => id !== leader.cfg.id) as NodeId;
    const follower = c.members.get(followerId) as Member;
    const appliedBefore = follower.node?.kvState.appliedIndex ?? 0;
    follower.node?.crash();
    const restarted = await c.start(followerId);
    // Before any message arrives, the reopened machine already serves what it had applied.
    expect(restarted.kvState.appliedIndex).toBe(appliedBefore);
    expect(restarted.kvState.get('k25')).toMatchObject({ ok: true, kv: { value: 'v25' } });
    await c.settle(puts(leader, 26, 30, c.timers.nowMs()));
    await c.converged();
    expect(restarted.metrics.snapshotsInstalled).toBe(0);
    // Every data entry it had applied (25 puts, in however many entries) came again and was skipped.
    expect(restarted.metrics.skippedEntries).toBeGreaterThanOrEqual(25);
    expect(restarted.kvState.get('k30')).toMatchObject({ ok: true, kv: { value: 'v30', version: 1 } });
  });
});
