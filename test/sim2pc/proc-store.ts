/**
 * One simulated store node: the real driver (store/node/node.ts
 * `StoreNode.create`: Ready loop, proposal batching, ReadIndex, snapshots,
 * leases) and the real request handling (store/api `StoreApi`: routes,
 * follower forwarding, watches), over a simulated disk (disk.ts), the lossy
 * network (Raft messages as packets, HTTP as http.ts carries it) and
 * simulated time. A crash drops the node and its API; a restart builds both
 * again from what the disk kept.
 */
import type { SeededRandom } from '../../lib/random.js';
import type { Cancel, Timers } from '../../lib/timers.js';
import { StoreApi } from '../../store/api/api.js';
import type { KvApplied } from '../../store/kv/index.js';
import type { NodeConfig } from '../../store/node/config.js';
import type { PeerTransport } from '../../store/node/io.js';
import { StoreNode } from '../../store/node/node.js';
import type { Entry, Message, NodeId } from '../../store/raft/index.js';
import { MemoryRaftLog, MemorySnapshotStore, reopenMemoryStorage } from '../../store/node/memory-io.js';
import { ServerStream, SimHttpClient, type SimHttpRequest, type SimStreamOpen } from './http.js';
import { RpcClient, type Net, type Packet } from './net.js';
import { Proc, type World } from './world.js';

export interface StoreProcOptions {
  readonly config: NodeConfig;
  /** Chance per tick that the node misses it (a slow clock). */
  readonly skipTickChance: number;
  readonly fsyncMs: () => number;
  /** Chance that the node dies inside an fsync of its log or snapshots (that write is lost). */
  readonly crashInSaveChance: () => number;
  /** The node stopped itself (it has crashed already): a violation. */
  readonly onFatal: (node: string, error: unknown) => void;
  /** Every applied entry, with its KV result, for the checker. */
  readonly onApply: (node: string, entry: Entry, applied: KvApplied | undefined) => void;
}

/** What a simulated node's /v1/status reports as its pid (the real one would make runs differ). */
const simulatedPid = 1;
/** Simulated ms a follower's forward to the leader waits (store/api's forward timeout, scaled). */
const forwardTimeoutMs = 300;

export class SimStoreNode extends Proc {
  /** The node's disk: the in-memory WAL and snapshot stores, fsyncs on simulated time. */
  private readonly log: MemoryRaftLog;
  private readonly snapshots: MemorySnapshotStore;
  private node: StoreNode<PeerTransport> | undefined;
  private api: StoreApi | undefined;
  private http!: SimHttpClient;
  private streams = new Map<string, ServerStream>();
  private rpcClient: RpcClient | undefined;

  constructor(
    name: string,
    world: World,
    private readonly net: Net,
    private readonly opts: StoreProcOptions,
  ) {
    super(name, world);
    const sync = (): Promise<void> => this.fsync();
    this.log = new MemoryRaftLog({ sync });
    this.snapshots = new MemorySnapshotStore({ sync });
    net.register(name, (p) => this.receive(p));
  }

  get isLeader(): boolean {
    return this.node?.isLeader() === true;
  }

  /** The live node, for traces and fault injection; undefined while down or starting. */
  get live(): StoreNode<PeerTransport> | undefined {
    return this.node;
  }

  protected onStart(): void {
    const rpc = new RpcClient(this, this.net);
    this.rpcClient = rpc;
    this.http = new SimHttpClient(this, this.net, rpc, forwardTimeoutMs);
    this.streams = new Map();
    const inc = this.incarnation;
    void StoreNode.create(this.opts.config, this.io(), reopenMemoryStorage(this.log, this.snapshots)).then((node) => {
      if (!this.isLive(inc)) return;
      node.onEntryApplied = (e, applied) => this.opts.onApply(this.name, e, applied);
      this.node = node;
      this.api = new StoreApi({ node, forwarder: this.http, random: this.world.random, pid: simulatedPid });
    });
  }

  private io(): Parameters<typeof StoreNode.create<PeerTransport>>[1] {
    return {
      log: this.log,
      snapshots: this.snapshots,
      transport: this.transport(),
      timers: skewed(this.timers, this.world.random, this.opts.skipTickChance),
      random: this.world.random,
      // No disk fails here: a fatal error is a broken invariant of the Raft core or the KV state machine.
      fatal: (e) => this.opts.onFatal(this.name, e),
    };
  }

  private transport(): PeerTransport {
    return {
      send: (msgs: readonly Message[]) => {
        if (!this.alive) return;
        for (const m of msgs) this.net.send(this.name, m.to, { kind: 'raft', message: m });
      },
      setPeer: (_id: NodeId, _address: string) => undefined,
      removePeer: (_id: NodeId) => undefined,
      close: () => Promise.resolve(),
    };
  }

  /**
   * One fsync on simulated time; now and then the node dies inside it, and
   * the write it was making is lost (the write's promise never settles).
   */
  private async fsync(): Promise<void> {
    await this.timers.sleep(this.opts.fsyncMs());
    if (!this.world.random.chance(this.opts.crashInSaveChance())) return;
    this.count('store crashes inside an fsync');
    this.kill('crash inside an fsync');
    await new Promise<never>(() => undefined);
  }

  protected onKill(): void {
    this.node?.crash();
    this.node = undefined;
    this.api = undefined;
    // The kernel resets a dead process's connections: every watcher's stream breaks.
    for (const s of this.streams.values()) s.reset();
    this.streams = new Map();
  }

  private receive(p: Packet): void {
    if (!this.alive) return;
    const pl = p.payload;
    if (pl.kind === 'raft') {
      this.node?.receive([pl.message]);
    } else if (pl.kind === 'resp') {
      this.rpcClient?.onReply(pl.rid, pl.body);
    } else {
      const body = pl.body as SimHttpRequest | SimStreamOpen | { kind: 'stream-close'; sid: string };
      if (body.kind === 'http') void this.serve(p.from, pl.rid, body);
      else if (body.kind === 'http-stream') this.openStream(p.from, body);
      else this.streams.get(body.sid)?.close();
    }
  }

  /** One HTTP request through the real API; no answer while the node is still starting (the client times out). */
  private async serve(from: string, rid: string, r: SimHttpRequest): Promise<void> {
    const api = this.api;
    if (api === undefined) return;
    const inc = this.incarnation;
    const reply = await api.serve({ method: r.method, target: r.url, headers: r.headers, ...(r.body === undefined ? {} : { body: r.body }) });
    if (this.isLive(inc)) this.net.send(this.name, from, { kind: 'resp', rid, body: reply });
  }

  private openStream(from: string, o: SimStreamOpen): void {
    const api = this.api;
    if (api === undefined) return;
    const stream = new ServerStream(this, this.net, from, o.sid);
    const url = new URL(o.url);
    try {
      api.openWatch({ query: url.searchParams, headers: o.headers }, stream);
    } catch (e) {
      stream.refuse(e);
      return;
    }
    stream.open();
    if (stream.isClosed) return;
    this.streams.set(o.sid, stream);
    stream.onClose(() => this.streams.delete(o.sid));
  }
}

/** The node's timers, missing a tick now and then (a slow clock): only periodic work is skewed. */
function skewed(timers: Timers, random: SeededRandom, skipChance: number): Timers {
  if (skipChance <= 0) return timers;
  return {
    nowMs: () => timers.nowMs(),
    monotonicMs: () => timers.monotonicMs(),
    after: (ms, fn): Cancel => timers.after(ms, fn),
    every: (ms, fn): Cancel => timers.every(ms, () => (random.chance(skipChance) ? undefined : fn())),
    soon: (fn) => timers.soon(fn),
    sleep: (ms, signal) => timers.sleep(ms, signal),
  };
}
