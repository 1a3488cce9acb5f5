/**
 * The faults of the chaos phase, drawn every tick from the seed's knobs:
 * store node crashes (the leader half the time) and leadership transfers,
 * process crashes, the network's weather, and partitions that come and go.
 * (Failpoint crashes are world.ts's; restarts are the simulation's.)
 */
import { randomWeather } from '../sim/chaos.js';
import type { Net } from './net.js';
import type { SimStoreNode } from './proc-store.js';
import type { Proc, World } from './world.js';

/** Simulated ms between two draws of faults. */
const faultTickMs = 10;

export class FaultInjector {
  constructor(
    private readonly world: World,
    private readonly net: Net,
    private readonly nodes: readonly SimStoreNode[],
    private readonly coordinators: readonly Proc[],
    private readonly participants: readonly Proc[],
  ) {}

  private get processes(): Proc[] {
    return [...this.coordinators, ...this.participants];
  }

  start(): void {
    this.scheduleFaults();
    this.scheduleWeather();
  }

  private scheduleWeather(): void {
    this.world.queue.at(this.world.queue.now + 200 + this.world.random.int(1_300), () => {
      if (!this.world.chaos) return;
      this.net.faults = randomWeather(this.world.random);
      this.world.trace(`weather ${JSON.stringify(this.net.faults)}`);
      this.scheduleWeather();
    });
  }

  private scheduleFaults(): void {
    this.world.queue.at(this.world.queue.now + faultTickMs, () => {
      if (!this.world.chaos) return;
      this.injectFaults(faultTickMs / 1_000);
      this.scheduleFaults();
    });
  }

  private injectFaults(dt: number): void {
    const k = this.world.knobs;
    const r = this.world.random;
    const liveNodes = this.nodes.filter((n) => n.alive);
    if (liveNodes.length > 0 && r.chance(k.storeCrashPerSec * dt)) {
      const leader = liveNodes.find((n) => n.isLeader);
      (leader !== undefined && r.chance(0.5) ? leader : r.pick(liveNodes)).kill('injected');
    }
    if (r.chance(k.transferPerSec * dt)) {
      const leader = liveNodes.find((n) => n.isLeader)?.live;
      // Refused (the target is the leader, or gone) or timed out: a transfer is only a nudge.
      if (leader !== undefined) void leader.transferLeadership(r.pick(this.nodes).name).catch(() => undefined);
    }
    if (this.net.links.partitioned) {
      if (r.chance(k.healPerSec * dt)) {
        this.net.links.heal();
        this.world.trace('heal');
      }
    } else if (r.chance(k.partitionPerSec * dt)) {
      this.partition();
    }
    const live = this.processes.filter((p) => p.alive);
    if (live.length > 0 && r.chance(k.procCrashPerSec * dt * live.length)) r.pick(live).kill('injected');
  }

  /** A split of the store, a process cut off from the store or from everyone, or hints lost. */
  private partition(): void {
    const r = this.world.random;
    const stores = this.nodes.map((n) => n.name);
    const kind = r.int(4);
    if (kind === 0) {
      const lone = r.pick(stores);
      this.net.links.partition([[lone], stores.filter((s) => s !== lone)]);
    } else if (kind === 1) {
      const p = r.pick(this.processes).name;
      for (const s of stores) if (r.chance(0.7)) this.net.links.partition([[p], [s]]);
    } else if (kind === 2) {
      const p = r.pick(this.processes).name;
      for (const other of [...stores, ...this.processes.map((x) => x.name), 'client']) if (other !== p) this.net.links.partition([[p], [other]]);
    } else {
      for (const c of this.coordinators) for (const p of this.participants) if (r.chance(0.5)) this.net.links.cutOneWay(c.name, p.name);
    }
    this.world.counters.inc('partitions');
    this.world.trace(`partition ${this.net.links.describe()}`);
  }
}
