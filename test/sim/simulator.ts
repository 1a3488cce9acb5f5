/**
 * The deterministic simulator: one seed drives a whole in-memory Raft cluster
 * (test/raft/harness.ts) through a hostile network, crashes at any point of
 * the Ready cycle, restarts, compaction, leadership transfers, proposals and
 * ReadIndex requests, checking every safety property after every step
 * (invariants.ts). At the end it heals everything and checks liveness: a
 * leader is elected and a new proposal commits on every node within a bound.
 *
 * Everything random comes from SeededRandom(seed), and the cluster is driven
 * in a fixed order, so a seed replays exactly: `npm run sim -- --seed S`.
 *
 * Nodes may also persist asynchronously: a Ready is held for a few steps
 * while the node keeps stepping messages, as the contract allows.
 *
 * One step is one round of (faults, client requests, maybe a tick, every
 * node's Ready, the messages due this step). Time is simulated: a tick is
 * one beat of the Raft clock, not a wall-clock interval.
 */
import { SeededRandom } from '../../lib/random.js';
import type { Message, NodeId, RaftConfig, RaftStatus, Ready } from '../../store/raft/index.js';
import { Cluster, type Peer } from '../raft/harness.js';
import { InvariantChecker, SafetyViolation, type SendPromise } from './invariants.js';
import { type Chaos, randomChaos, randomConfig, randomWeather } from './chaos.js';
import { describeMessage, describeNode } from './format.js';
import { CALM, Network } from './network.js';

export interface SimOptions {
  readonly seed: number;
  /** 3 or 5 voters. */
  readonly nodes: number;
  /** Steps of chaos before the liveness phase. */
  readonly steps: number;
  /** Keep a trace of events, printed with a violation. */
  readonly trace?: boolean;
}

export const defaultSteps = 1000;
/** Events kept in the trace ring. */
const maxTraceEvents = 3000;

export interface SimStats {
  ticks: number;
  steps: number;
  leaders: number;
  proposalsAcked: number;
  readsAnswered: number;
  snapshotsInstalled: number;
  compactions: number;
  crashes: number;
  crashesMidReady: number;
  readiesHeld: number;
  transfers: number;
  partitions: number;
  confChanges: number;
  messagesSent: number;
  messagesDropped: number;
  /** Ticks from healing to the final proposal committing on every node. */
  livenessTicks: number;
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  readonly ok: boolean;
  readonly invariant?: string;
  readonly violation?: string;
  readonly atStep?: number;
  readonly stats: SimStats;
  readonly trace: readonly string[];
}

/** The exact command that replays a seed. */
export function replayCommand(seed: number, nodes: number, steps: number): string {
  const parts = ['npm run sim -- --seed', String(seed)];
  if (nodes !== 3) parts.push('--nodes', String(nodes));
  if (steps !== defaultSteps) parts.push('--steps', String(steps));
  return parts.join(' ');
}

export class Simulator {
  private readonly random: SeededRandom;
  private readonly cluster: Cluster;
  private readonly network: Network;
  private readonly checker = new InvariantChecker();
  /** Nodes that exist and may run: the founders, plus joiners, minus retired (removed and shut down) nodes. */
  private readonly ids: NodeId[];
  private readonly founders: number;
  private nextNodeNumber: number;
  /** Membership changes proposed and not yet known applied or lost: node -> the conf entry's index. */
  private readonly confPending = new Map<NodeId, { index: number; data: string; op: string }>();
  /** Removed from the configuration and shut down for good. */
  private readonly retired = new Set<NodeId>();
  private readonly cfg: Partial<RaftConfig>;
  private readonly chaos: Chaos;
  private readonly stepsPerTick: number;
  private readonly traceRing: string[] = [];
  /** Readies taken and not yet persisted (asynchronous persistence), by node. */
  private readonly held = new Map<NodeId, HeldReady>();
  /** Nodes to crash inside their next Ready (targeted crashes). */
  private readonly doomed = new Set<NodeId>();
  /** Role and commit index last seen per node, to notice elections and commits as they happen. */
  private readonly seen = new Map<NodeId, { role: string; commit: number }>();
  private step = 0;
  private nextWeatherStep = 0;
  private proposals = 0;
  private reads = 0;
  readonly stats: SimStats = {
    ticks: 0,
    steps: 0,
    leaders: 0,
    proposalsAcked: 0,
    readsAnswered: 0,
    snapshotsInstalled: 0,
    compactions: 0,
    crashes: 0,
    crashesMidReady: 0,
    readiesHeld: 0,
    transfers: 0,
    partitions: 0,
    confChanges: 0,
    messagesSent: 0,
    messagesDropped: 0,
    livenessTicks: 0,
  };

  constructor(private readonly opts: SimOptions) {
    this.random = new SeededRandom(opts.seed);
    this.ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.founders = opts.nodes;
    this.nextNodeNumber = opts.nodes + 1;
    this.cfg = randomConfig(this.random);
    this.chaos = randomChaos(this.random);
    this.stepsPerTick = this.random.pick([1, 2]);
    this.network = new Network(new SeededRandom(opts.seed ^ 0x5eed));
    this.cluster = new Cluster(this.ids, this.cfg, opts.seed, {
      onApply: (peer, entry, app) => this.checker.onApply(peer, entry, app),
      onSnapshotInstalled: (peer, snap) => {
        this.stats.snapshotsInstalled++;
        this.trace(`${peer.id} installs snapshot i${snap.meta.index} t${snap.meta.term}`);
        this.checker.onSnapshot(peer, snap, 'installed');
      },
    });
    this.trace(`config ${JSON.stringify(this.cfg)} chaos ${JSON.stringify(this.chaos)} stepsPerTick ${this.stepsPerTick}`);
  }

  run(): SimResult {
    try {
      for (let i = 0; i < this.opts.steps; i++) this.chaosStep();
      this.livenessPhase();
      this.checker.checkAcknowledgedApplied();
      return this.result();
    } catch (err) {
      if (err instanceof SafetyViolation) return this.result(err.invariant, err.message);
      // An assertion inside the Raft core (or the harness) is a failure too: it found an impossible state.
      const e = err as Error;
      return this.result('assertion', `${e.name}: ${e.message}\n${e.stack ?? ''}`);
    }
  }

  private result(invariant?: string, violation?: string): SimResult {
    this.stats.steps = this.step;
    this.stats.proposalsAcked = this.checker.acknowledged.size;
    this.stats.readsAnswered = this.checker.readsAnswered;
    this.stats.leaders = this.checker.leadersSeen;
    this.stats.messagesSent = this.network.sent;
    this.stats.messagesDropped = this.network.dropped;
    const base = { seed: this.opts.seed, nodes: this.opts.nodes, steps: this.opts.steps, stats: this.stats, trace: this.traceRing };
    if (invariant === undefined || violation === undefined) return { ...base, ok: true };
    return { ...base, ok: false, invariant, violation, atStep: this.step };
  }

  private trace(event: string): void {
    if (this.opts.trace !== true) return;
    this.traceRing.push(`[${this.step}] ${event}`);
    if (this.traceRing.length > maxTraceEvents) this.traceRing.shift();
  }

  // ---- one step ---------------------------------------------------------------

  private chaosStep(): void {
    this.step++;
    this.changeWeather();
    this.injectFaults();
    this.clientRequests();
    this.advanceClock(this.chaos.skipTick);
    this.processReadies(this.chaos.crashMidReady, this.chaos.holdReady);
    this.deliverDue(true);
    this.checker.afterStep(this.cluster.peers.values());
    this.settleConfChanges();
  }

  private changeWeather(): void {
    if (this.step < this.nextWeatherStep) return;
    this.nextWeatherStep = this.step + 20 + this.random.int(130);
    this.network.faults = randomWeather(this.random);
    this.trace(`weather ${JSON.stringify(this.network.faults)}`);
  }

  private injectFaults(): void {
    const r = this.random;
    const c = this.chaos;
    if (this.network.partitioned) {
      if (r.chance(c.heal)) {
        this.network.heal();
        this.trace('heal');
      }
    } else if (r.chance(c.partition)) {
      this.partition();
    }
    const live = this.liveIds();
    if (live.length > 0 && r.chance(c.crash)) {
      // Crash the leader half the time: that is where the interesting recoveries are.
      const leader = this.leaders()[0];
      const id = leader !== undefined && r.chance(0.5) ? leader.id : r.pick(live);
      this.crash(id);
    }
    for (const id of this.ids) {
      if (this.cluster.peer(id).node === undefined && r.chance(c.restart)) this.restart(id);
    }
  }

  private partition(): void {
    const r = this.random;
    this.stats.partitions++;
    const kind = r.int(3);
    const leader = this.leaders()[0];
    if (kind === 0 && leader !== undefined) {
      const rest = this.ids.filter((id) => id !== leader.id);
      this.network.partition([[leader.id], rest]);
    } else if (kind === 1) {
      const from = r.pick(this.ids);
      const to = r.pick(this.ids.filter((id) => id !== from));
      this.network.cutOneWay(from, to);
      if (r.chance(0.5)) {
        const a = r.pick(this.ids);
        const b = r.pick(this.ids);
        if (a !== b) this.network.cutOneWay(a, b);
      }
    } else {
      const shuffled = this.ids.map((id) => ({ id, k: r.float() }));
      shuffled.sort((a, b) => a.k - b.k);
      const cut = 1 + r.int(this.ids.length - 1);
      this.network.partition([shuffled.slice(0, cut).map((x) => x.id), shuffled.slice(cut).map((x) => x.id)]);
    }
    this.trace(`partition ${this.network.describePartition()}`);
  }

  private clientRequests(): void {
    const r = this.random;
    const c = this.chaos;
    const live = this.liveIds();
    if (live.length === 0) return;
    if (r.chance(c.propose)) this.propose(live);
    if (r.chance(c.read)) {
      // Half the reads go to a leader, any leader: a deposed one that does not know it yet is the dangerous case.
      const leaders = this.leaders();
      this.readIndex(leaders.length > 0 && r.chance(0.5) ? r.pick(leaders).id : r.pick(live));
    }
    if (r.chance(c.transfer)) this.transfer();
    if (r.chance(c.compact)) this.compact(r.pick(live));
    if (r.chance(c.campaign)) this.cluster.node(r.pick(live)).campaign();
    if (r.chance(c.reconfigure)) this.reconfigure();
  }

  /**
   * One single-server membership change (§4.1) through the newest leader,
   * keeping between founders-1 and founders+1 voters and at most two
   * learners. Joiners get fresh ids: a removed id is never reused.
   */
  private reconfigure(): void {
    const r = this.random;
    const leader = this.leaders()[0];
    if (leader === undefined) return;
    const { voters, learners } = leader.status.conf;
    const choices: (() => void)[] = [];
    if (voters.length + learners.length < this.founders + 2 && learners.length < 2) {
      choices.push(() => this.addNode(leader.id, r.chance(0.5) ? 'addLearner' : 'addVoter'));
    }
    if (learners.length > 0 && voters.length < this.founders + 1) {
      choices.push(() => this.changeConf(leader.id, 'addVoter', r.pick(learners)));
    }
    if (voters.length > this.founders - 1) choices.push(() => this.changeConf(leader.id, 'remove', r.pick(voters)));
    if (learners.length > 0) choices.push(() => this.changeConf(leader.id, 'remove', r.pick(learners)));
    if (choices.length > 0) r.pick(choices)();
  }

  private addNode(leaderId: NodeId, op: 'addLearner' | 'addVoter'): void {
    const id = `n${this.nextNodeNumber++}`;
    this.cluster.addPeer(id);
    this.ids.push(id);
    this.trace(`${id} joins (empty)`);
    // A joiner whose change is refused or lost stays out of the configuration; retire it then.
    if (!this.changeConf(leaderId, op, id)) this.retire(id);
  }

  private changeConf(leaderId: NodeId, op: 'addLearner' | 'addVoter' | 'remove', id: NodeId): boolean {
    if (this.confPending.has(id)) return false;
    const res = this.cluster.node(leaderId).proposeConfChange({ op, id });
    this.trace(`${leaderId} conf change ${op} ${id}: ${res.ok ? `i${res.index} t${res.term}` : res.code}`);
    if (!res.ok) return false;
    this.stats.confChanges++;
    this.confPending.set(id, { index: res.index, data: JSON.stringify({ op, id }), op });
    return true;
  }

  /** Settle membership changes by what was applied at their index: removed nodes shut down, lost joiners too. */
  private settleConfChanges(): void {
    for (const [id, p] of this.confPending) {
      const rec = this.checker.appliedAt(p.index);
      if (rec === undefined) continue;
      this.confPending.delete(id);
      const took = rec.entry.type === 'conf' && rec.entry.data === p.data;
      this.trace(`conf change ${p.op} ${id} at i${p.index} ${took ? 'applied' : 'lost'}`);
      if (took && p.op === 'remove') this.retire(id);
      if (!took && p.op !== 'remove' && !this.isMember(id)) this.retire(id);
    }
  }

  private isMember(id: NodeId): boolean {
    for (const peer of this.cluster.peers.values()) {
      const conf = peer.node?.status().conf;
      if (conf !== undefined && (conf.voters.includes(id) || conf.learners.includes(id))) return true;
    }
    return false;
  }

  private retire(id: NodeId): void {
    if (this.cluster.peer(id).node !== undefined) this.crash(id);
    this.retired.add(id);
    const at = this.ids.indexOf(id);
    if (at >= 0) this.ids.splice(at, 1);
    this.trace(`${id} retired`);
  }

  private propose(live: readonly NodeId[]): void {
    const r = this.random;
    const leaders = this.leaders();
    const target = leaders.length > 0 && r.chance(0.75) ? r.pick(leaders).id : r.pick(live);
    const node = this.cluster.node(target);
    const role = node.status().role;
    const count = r.chance(0.2) ? 1 + r.int(4) : 1;
    const data: string[] = [];
    for (let i = 0; i < count; i++) data.push(`p${++this.proposals}`);
    const res = count === 1 ? node.propose(data[0] as string) : node.proposeBatch(data);
    if (role !== 'leader') {
      if (res.ok) throw new SafetyViolation('proposals', `${target} accepted a proposal as ${role}`);
      if (res.code !== 'not_leader') throw new SafetyViolation('proposals', `${target} refused a proposal as ${role} with ${res.code}`);
      return;
    }
    if (!res.ok) {
      this.trace(`${target} refuses ${data.join(',')}: ${res.code}`);
      return;
    }
    data.forEach((d, i) => this.checker.proposed(d, res.index - count + 1 + i, res.term));
    this.trace(`${target} accepts ${data.join(',')} at i${res.index} t${res.term}`);
  }

  private readIndex(id: NodeId): void {
    const requestId = `r${++this.reads}`;
    this.checker.readIssued(requestId);
    const res = this.cluster.node(id).readIndex(requestId);
    this.trace(`${id} readIndex ${requestId} (floor ${this.checker.maxCommitted}): ${res}`);
  }

  private transfer(): void {
    const leader = this.leaders()[0];
    if (leader === undefined) return;
    const to = this.random.pick(leader.status.conf.voters);
    const res = this.cluster.node(leader.id).transferLeadership(to);
    this.stats.transfers++;
    this.trace(`${leader.id} transfers leadership to ${to}: ${res}`);
  }

  private compact(id: NodeId): void {
    // The application snapshots after advance(), never with a Ready outstanding (as store/node does).
    if (this.held.has(id)) return;
    const peer = this.cluster.peer(id);
    const applied = this.cluster.node(id).status().appliedIndex;
    if (peer.app.index !== applied) {
      throw new SafetyViolation('harness', `${id} state machine at ${peer.app.index}, raft applied ${applied}`);
    }
    const snap = this.cluster.compact(id, this.random.pick([0, 0, 1, 5]));
    if (snap === undefined) return;
    this.stats.compactions++;
    this.trace(`${id} compacts at i${snap.meta.index}`);
  }

  private advanceClock(skipChance: number): void {
    if (this.step % this.stepsPerTick !== 0) return;
    this.stats.ticks++;
    for (const peer of this.cluster.peers.values()) {
      // An occasional skipped tick is clock skew: timeouts drift apart.
      if (peer.node !== undefined && !this.random.chance(skipChance)) peer.node.tick();
    }
  }

  /**
   * Every node's Ready, in a fixed order. A Ready may be held for a few steps
   * (asynchronous persistence: the node keeps stepping messages meanwhile), and
   * a node may crash inside it.
   */
  private processReadies(crashChance: number, holdChance: number): void {
    for (const id of this.ids) {
      const peer = this.cluster.peer(id);
      const node = peer.node;
      if (node === undefined) continue;
      let held = this.held.get(id);
      if (held !== undefined && held.untilStep > this.step) continue;
      this.held.delete(id);
      if (held === undefined) {
        if (!node.hasReady()) continue;
        const rd = node.ready();
        held = { rd, promises: this.checker.promises(peer, rd.messages), untilStep: this.step };
        if (holdChance > 0 && this.random.chance(holdChance)) {
          held.untilStep = this.step + 1 + this.random.int(3);
          this.stats.readiesHeld++;
          this.held.set(id, held);
          continue;
        }
      }
      if (this.doomed.delete(id) || (crashChance > 0 && this.random.chance(crashChance))) {
        this.crashMidReady(peer, held);
        continue;
      }
      this.cluster.completeReady(id, held.rd);
      this.checker.afterPersist(peer);
      this.checker.checkPromises(peer, held.promises);
      this.sendAll(this.cluster.inflight);
      this.cluster.inflight = [];
      for (const rs of peer.readStates.splice(0)) {
        if (rs.rejected) {
          this.trace(`${id} read ${rs.requestId} rejected by the leader`);
          continue;
        }
        this.checker.readAnswered(id, rs.requestId, rs.index);
        this.trace(`${id} read ${rs.requestId} answered at ${rs.index}`);
      }
    }
  }

  /**
   * A crash somewhere inside the Ready cycle: before anything is persisted,
   * after a torn write (snapshot only, or entries without the hard state),
   * after persisting but before sending, or after sending but before applying.
   */
  private crashMidReady(peer: Peer, held: HeldReady): void {
    const rd = held.rd;
    const stage = this.random.int(5);
    if (stage >= 1 && rd.snapshot !== undefined) peer.storage.persist(partialReady({ snapshot: rd.snapshot }));
    if (stage >= 2) peer.storage.persist(partialReady({ entries: rd.entries }));
    if (stage >= 3 && rd.hardState !== undefined) peer.storage.persist(partialReady({ hardState: rd.hardState }));
    this.checker.afterPersist(peer);
    if (stage >= 4) {
      this.checker.checkPromises(peer, held.promises);
      this.sendAll(rd.messages);
    }
    this.stats.crashesMidReady++;
    this.trace(`${peer.id} crashes mid-Ready at stage ${stage} (${rd.entries.length} entries, ${rd.messages.length} messages)`);
    this.crash(peer.id);
  }

  private sendAll(messages: readonly Message[]): void {
    for (const m of messages) {
      const sent = this.network.send(m, this.step);
      if (!sent) this.lost(m);
    }
  }

  /** A lost message: sometimes the transport notices and tells the sender. */
  private lost(m: Message): void {
    const sender = this.cluster.peer(m.from).node;
    if (sender === undefined || !this.random.chance(0.3)) return;
    if (m.type === 'snap') sender.reportSnapshot(m.to, false);
    else sender.reportUnreachable(m.to);
  }

  private deliverDue(chaotic: boolean): void {
    const { delivered, cut } = this.network.due(this.step);
    for (const m of cut) this.lost(m);
    for (const m of delivered) {
      const node = this.cluster.peer(m.to).node;
      if (node === undefined) continue;
      if (this.opts.trace === true) this.trace(`deliver ${describeMessage(m)}`);
      node.step(m);
      const status = node.status();
      this.checker.noteRole(m.to, status);
      if (chaotic) this.maybeDoom(m.to, status);
      if (m.type === 'snap' && this.random.chance(0.5)) this.cluster.peer(m.from).node?.reportSnapshot(m.to, true);
    }
  }

  private maybeDoom(id: NodeId, status: RaftStatus): void {
    const prev = this.seen.get(id);
    this.seen.set(id, { role: status.role, commit: status.commitIndex });
    if (status.role !== prev?.role) this.trace(`${id} becomes ${status.role} in term ${status.term} (last i${status.lastIndex} commit ${status.commitIndex})`);
    if (prev === undefined || status.role !== 'leader') return;
    const elected = prev.role !== 'leader';
    const committed = !elected && status.commitIndex > prev.commit;
    if ((elected && this.random.chance(this.chaos.crashNewLeader)) || (committed && this.random.chance(this.chaos.crashOnCommit))) {
      this.doomed.add(id);
      this.trace(`${id} doomed: ${elected ? `elected in term ${status.term}` : `commit advanced to ${status.commitIndex}`}`);
    }
  }

  // ---- crashes ------------------------------------------------------------------

  private crash(id: NodeId): void {
    this.cluster.crash(id);
    this.held.delete(id);
    this.doomed.delete(id);
    this.seen.delete(id);
    this.checker.onCrash(id);
    this.stats.crashes++;
    this.trace(`${id} crashes`);
  }

  private restart(id: NodeId): void {
    this.cluster.restart(id);
    const peer = this.cluster.peer(id);
    this.checker.onRestart(peer);
    const hs = peer.storage.hardState;
    this.trace(`${id} restarts: term ${hs.term} vote ${hs.vote || '-'} commit ${hs.commit}, ${peer.storage.entries.length} entries, snapshot i${peer.storage.snapshot?.meta.index ?? 0}`);
  }

  // ---- liveness -------------------------------------------------------------------

  /**
   * Heal the network, restart every crashed node, and require that a leader is
   * elected and a new proposal commits on every node within a bounded number of
   * ticks. Proposals refused or orphaned by a leader change are retried.
   */
  private livenessPhase(): void {
    this.network.heal();
    this.network.faults = CALM;
    this.doomed.clear();
    for (const id of this.ids) if (this.cluster.peer(id).node === undefined) this.restart(id);
    this.trace('liveness phase: healed, all nodes up');
    const maxTicks = this.livenessBoundTicks();
    const startTicks = this.stats.ticks;
    let final: { data: string; index: number; term: number } | undefined;
    let attempt = 0;
    while (this.stats.ticks - startTicks < maxTicks) {
      this.step++;
      this.advanceClock(0);
      this.processReadies(0, 0);
      this.deliverDue(false);
      this.checker.afterStep(this.cluster.peers.values());
      this.settleConfChanges();
      const leader = this.leaders()[0];
      if (leader === undefined) continue;
      if (final !== undefined && this.committedEverywhere(final.index, final.data, leader.status)) {
        this.stats.livenessTicks = this.stats.ticks - startTicks;
        return;
      }
      if (final !== undefined && final.term === leader.status.term) continue;
      const data = `final${++attempt}`;
      const res = this.cluster.node(leader.id).propose(data);
      if (!res.ok) {
        this.trace(`liveness: ${leader.id} refuses ${data}: ${res.code}`);
        continue;
      }
      final = { data, index: res.index, term: res.term };
      this.checker.proposed(data, res.index, res.term);
      this.trace(`liveness: ${leader.id} accepts ${data} at i${res.index} t${res.term}`);
    }
    const where = this.ids.map((id) => describeNode(id, this.cluster.peer(id))).join('; ');
    throw new SafetyViolation('liveness', `no proposal committed on every node within ${maxTicks} ticks of healing: ${where}`);
  }

  /**
   * Forty election timeouts, plus time to replicate and apply the backlog one
   * entry per round trip (the worst case: one-entry messages, a window of one,
   * one entry applied per Ready), twice over: a joiner whose addition is still
   * uncommitted starts catching up only once the others have. A round trip is
   * at most four steps in calm weather.
   */
  private livenessBoundTicks(): number {
    let maxLast = 0;
    let minApplied = Infinity;
    for (const peer of this.cluster.peers.values()) {
      const s = peer.node?.status();
      if (s === undefined) continue;
      maxLast = Math.max(maxLast, s.lastIndex);
      minApplied = Math.min(minApplied, s.appliedIndex);
    }
    const backlog = Math.max(0, maxLast - minApplied);
    return 40 * (this.cfg.electionTicks ?? 10) + Math.ceil((backlog * 2 * 4) / this.stepsPerTick);
  }

  /** Applied on every member of the leader's configuration (a retired node is no member, even if the leader has yet to apply its removal). */
  private committedEverywhere(index: number, data: string, leader: RaftStatus): boolean {
    const rec = this.checker.appliedAt(index);
    if (rec === undefined || rec.entry.data !== data) return false;
    for (const id of [...leader.conf.voters, ...leader.conf.learners]) {
      if (this.retired.has(id)) continue;
      const peer = this.cluster.peers.get(id);
      if (peer === undefined || peer.app.index < index) return false;
    }
    return true;
  }

  // ---- views ----------------------------------------------------------------------

  private liveIds(): NodeId[] {
    return this.ids.filter((id) => this.cluster.peer(id).node !== undefined);
  }

  /** Live leaders, the newest term first (a deposed leader may not know it yet). */
  private leaders(): { id: NodeId; status: RaftStatus }[] {
    const out: { id: NodeId; status: RaftStatus }[] = [];
    for (const peer of this.cluster.peers.values()) {
      const status = peer.node?.status();
      if (status?.role === 'leader') out.push({ id: peer.id, status });
    }
    return out.sort((a, b) => b.status.term - a.status.term);
  }
}

interface HeldReady {
  readonly rd: Ready;
  readonly promises: readonly SendPromise[];
  untilStep: number;
}

function partialReady(parts: Partial<Pick<Ready, 'snapshot' | 'entries' | 'hardState'>>): Ready {
  return { entries: [], committedEntries: [], messages: [], readStates: [], ...parts };
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulator(opts).run();
}
