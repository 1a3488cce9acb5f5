/**
 * One simulated store node: the real driver (`StoreNode.create`) and request
 * handling (`StoreApi`) over the in-memory WAL and snapshot stores, the lossy
 * network and simulated time. A crash drops both; a restart builds them again
 * from what the memory stores kept.
 */
import { StoreApi } from '../../store/api/api.js';
import type { NodeConfig } from '../../store/node/config.js';
import type { PeerTransport } from '../../store/node/io.js';
import { StoreNode } from '../../store/node/node.js';
import type { Message, NodeId } from '../../store/raft/index.js';
import { MemoryRaftLog, MemorySnapshotStore, reopenMemoryStorage } from '../../store/node/memory-io.js';
import { ServerStream, type SimHttpRequest, type SimStreamOpen } from './http.js';
import type { Net, Packet } from './net.js';
import { NetProc } from './proc-service.js';
import type { World } from './world.js';

/** Chance per periodic timer firing that the node misses it (a slow clock). */
const skipTickChance = 0.02;
/** What a simulated node's /v1/status reports as its pid (the real one would make runs differ). */
const simulatedPid = 1;
/** Simulated ms a follower's forward to the leader waits (store/api's forward timeout, scaled). */
const forwardTimeoutMs = 300;

export class SimStoreNode extends NetProc {
  /** The node's disk: the in-memory WAL and snapshot stores, fsyncs on simulated time. */
  private readonly log: MemoryRaftLog;
  private readonly snapshots: MemorySnapshotStore;
  private node: StoreNode<PeerTransport> | undefined;
  private api: StoreApi | undefined;
  private streams = new Map<string, ServerStream>();

  constructor(
    name: string,
    world: World,
    net: Net,
    private readonly config: NodeConfig,
  ) {
    super(name, world, net, forwardTimeoutMs, skipTickChance);
    const sync = (): Promise<void> => this.fsync();
    this.log = new MemoryRaftLog({ sync });
    this.snapshots = new MemorySnapshotStore({ sync });
  }

  get isLeader(): boolean {
    return this.node?.isLeader() === true;
  }

  /** The live node, for traces and fault injection; undefined while down or starting. */
  get live(): StoreNode<PeerTransport> | undefined {
    return this.node;
  }

  protected onStart(): void {
    this.connect();
    this.streams = new Map();
    const inc = this.incarnation;
    void StoreNode.create(this.config, this.io(), reopenMemoryStorage(this.log, this.snapshots)).then((node) => {
      if (!this.isLive(inc)) return;
      node.onEntryApplied = (e, applied) => this.world.check((c) => c.onStoreApply(this.name, e, applied));
      this.node = node;
      this.api = new StoreApi({ node, forwarder: this.http, random: this.world.random, pid: simulatedPid });
    });
  }

  private io(): Parameters<typeof StoreNode.create<PeerTransport>>[1] {
    return {
      log: this.log,
      snapshots: this.snapshots,
      transport: this.transport(),
      timers: this.timers,
      random: this.world.random,
      // No disk fails here: a fatal error is a broken invariant of the Raft core or the KV state machine.
      fatal: (e) => this.world.fail(e instanceof Error ? e : new Error(`${this.name} fatal: ${String(e)}`)),
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

  /** One fsync on simulated time; now and then the node dies inside it, and the write it was making is lost (the write's promise never settles). */
  private async fsync(): Promise<void> {
    await this.timers.sleep(this.world.random.int(2));
    if (!this.world.random.chance(this.world.chaos ? this.world.knobs.storeCrashMidReady : 0)) return;
    this.world.counters.inc('store crashes inside an fsync');
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

  protected onPacket(p: Packet): void {
    const pl = p.payload;
    if (pl.kind === 'raft') {
      this.node?.receive([pl.message]);
    } else if (pl.kind === 'req') {
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
