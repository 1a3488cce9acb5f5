/**
 * One deterministic run (docs/SIM2PC.md): chaos, with the faults below drawn
 * every tick from the seed's knobs, then healing, quiescence within a bound
 * and the final checks. One SeededRandom drives it all, so a seed replays to
 * the byte of its digest (replayCommand).
 */
import { createHash, type Hash } from 'node:crypto';
import { AssertionError } from '../../lib/assert.js';
import { SeededRandom } from '../../lib/random.js';
import { parseKey, txKey } from '../../coordinator/protocol/index.js';
import type { LogRecord } from '../../participant/log.js';
import { SafetyViolation } from '../sim/invariants.js';
import type { SeedReport } from '../support/seed-cli.js';
import { CALM } from '../sim/network.js';
import { randomWeather } from '../sim/chaos.js';
import { Bank } from './bank.js';
import { Checker, durableVote } from './checker.js';
import { drawKnobs, nodeConfig, timing, type Knobs, type Mutation } from './knobs.js';
import { Net } from './net.js';
import { SimCoordinator } from './proc-coordinator.js';
import { LOG_PATH, SimParticipant } from './proc-participant.js';
import { SimStoreNode } from './proc-store.js';
import { Client } from './workload.js';
import { Counters, EventQueue, type Proc, type World } from './world.js';

export interface Sim2pcOptions {
  readonly seed: number;
  /** Simulated ms of chaos before healing. */
  readonly chaosMs: number;
  readonly mutation?: Mutation;
  /** Turn off the "durable votes" check, to see what else catches a lying fsync. */
  readonly noDurableCheck?: boolean;
  readonly trace?: boolean;
}

/** One seed's outcome, as a worker reports it (SeedReport), with its counters as a map. */
export interface Sim2pcResult extends Omit<SeedReport, 'counters'> {
  readonly counters: ReadonlyMap<string, number>;
  readonly trace: readonly string[];
  /** A digest of every packet and event time of the run: equal for two runs of one seed. */
  readonly digest: string;
}

export const defaultChaosMs = 4_000;
/** Simulated ms after healing within which everything must be decided, applied and collected. */
export const livenessBoundMs = 30_000;
/** Events one run may take at most: a livelock is a failure, not a hang. */
const maxEvents = 5_000_000;
const maxTraceLines = 4_000;
const initialBalance = 100;
const bankNames = ['pa', 'pb', 'pc'];
const accounts = ['x', 'y'];
const storeIds = ['n1', 'n2', 'n3'];
/** Simulated ms between two draws of faults. */
const faultTickMs = 10;

export function replayCommand(seed: number, opts: { chaosMs?: number; mutation?: Mutation | undefined; noDurableCheck?: boolean }): string {
  const parts = ['npm run sim:2pc -- --seed', String(seed)];
  if (opts.chaosMs !== undefined && opts.chaosMs !== defaultChaosMs) parts.push('--chaos-ms', String(opts.chaosMs));
  if (opts.mutation !== undefined) parts.push('--mutation', opts.mutation);
  if (opts.noDurableCheck === true) parts.push('--no-durable-check');
  return parts.join(' ');
}

/** Lets every pending promise callback run: setImmediate comes after the whole microtask queue. */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Simulation implements World {
  readonly queue = new EventQueue();
  readonly random: SeededRandom;
  readonly counters = new Counters();
  readonly checker: Checker;
  private readonly digestHash: Hash = createHash('sha256');
  readonly knobs: Knobs;
  readonly mutation: Mutation | undefined;
  private readonly net: Net;
  private readonly nodes: SimStoreNode[] = [];
  private readonly coordinators: SimCoordinator[] = [];
  private readonly participants: SimParticipant[] = [];
  private readonly client: Client;
  private readonly traceLines: string[] = [];
  chaos = true;
  private events = 0;
  /** A failure found inside a callback or a rejected promise, raised at the next step. */
  private pending: Error | undefined;

  constructor(private readonly opts: Sim2pcOptions) {
    this.random = new SeededRandom(opts.seed);
    this.mutation = opts.mutation;
    const vote = (name: string, id: string): LogRecord['vote'] => durableVote(this.participants.find((p) => p.name === name)?.disk.durableText(LOG_PATH), id);
    this.checker = new Checker(this.counters, opts.noDurableCheck === true ? undefined : vote, opts.trace === true ? (l) => this.trace(l) : undefined);
    this.knobs = drawKnobs(this.random);
    this.trace(`knobs ${JSON.stringify(this.knobs)}`);
    this.net = new Net(this);
    this.client = this.build();
  }

  get tracing(): boolean {
    return this.opts.trace === true;
  }

  trace(line: string): void {
    if (this.opts.trace !== true) return;
    this.traceLines.push(`[${this.queue.now}ms] ${line}`);
    if (this.traceLines.length > maxTraceLines) this.traceLines.shift();
  }

  digest(text: string): void {
    this.digestHash.update(text);
  }

  failpointChance(name: string): number {
    return this.chaos ? (this.knobs.failpoints[name as keyof Knobs['failpoints']] ?? 0) : 0;
  }

  onCrash(proc: Proc, _reason: string): void {
    const isStore = proc instanceof SimStoreNode;
    this.counters.inc(isStore ? 'store crashes' : 'process crashes');
    if (!this.chaos) return;
    const delay = isStore ? this.knobs.storeRestartMs : this.knobs.procRestartMs;
    this.queue.at(this.queue.now + 1 + this.random.int(delay), () => {
      if (!proc.alive && this.chaos) proc.start();
    });
  }

  runtimeError(who: string, message: string, fields: Readonly<Record<string, unknown>> | undefined): void {
    const e = fields?.['error'];
    if (e instanceof AssertionError) this.fail(new SafetyViolation('assertion', `${who}: ${message}: ${e.message}\n${e.stack ?? ''}`));
    else if (message === 'fatal' || message.startsWith('corrupt') || message.startsWith('internal')) this.fail(new SafetyViolation('error', `${who}: ${message}: ${String(e)}`));
    else this.counters.inc(`error log: ${message}`);
  }

  fail(e: Error): void {
    this.pending ??= e;
  }

  check(hook: (checker: Checker) => void): void {
    try {
      hook(this.checker);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private build(): Client {
    const k = this.knobs;
    for (const id of storeIds) this.nodes.push(new SimStoreNode(id, this, this.net, nodeConfig(id, storeIds, k)));
    const store = { ...timing.store, endpoints: storeIds, batchInflight: k.storeBatchInflight };
    for (const name of ['c1', 'c2']) this.coordinators.push(new SimCoordinator(name, this, this.net, store));
    for (const name of bankNames) this.participants.push(new SimParticipant(name, this, this.net, new Bank(name, accounts, initialBalance, (id, d) => this.check((c) => c.onApplied(name, id, d))), store));
    return new Client(this, this.net, this.coordinators.map((c) => c.name), bankNames.map((name) => ({ name, accounts })));
  }

  private get processes(): Proc[] {
    return [...this.coordinators, ...this.participants];
  }

  async run(): Promise<Sim2pcResult> {
    const onRejection = (reason: unknown): void => this.fail(reason instanceof Error ? reason : new Error(String(reason)));
    process.on('unhandledRejection', onRejection);
    try {
      for (const p of [...this.nodes, ...this.processes, this.client]) p.start();
      this.scheduleWorkload(300);
      this.scheduleFaults();
      this.scheduleWeather();
      if (this.tracing) this.traceStore();
      await this.runUntil(this.opts.chaosMs);
      this.heal();
      await this.quiesce();
      this.finalChecks();
      return this.result();
    } catch (err) {
      return this.failure(err);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  }

  private failure(err: unknown): Sim2pcResult {
    if (err instanceof SafetyViolation) return this.result(err.invariant, err.message);
    const e = err as Error;
    // An assertion inside a pure machine, the KV state machine or the Raft core found an impossible state.
    const kind = e instanceof AssertionError ? 'assertion' : 'error';
    return this.result(kind, `${e.name}: ${e.message}\n${e.stack ?? ''}`);
  }

  private async runUntil(untilMs: number): Promise<void> {
    for (let fn = this.queue.pop(untilMs); fn !== undefined; fn = this.queue.pop(untilMs)) {
      if (++this.events > maxEvents) throw new SafetyViolation('harness', `more than ${maxEvents} events`);
      this.digest(`@${this.queue.now}`);
      try {
        fn();
      } catch (e) {
        this.fail(e as Error);
      }
      await drain();
      if (this.pending !== undefined) throw this.pending;
    }
    this.queue.now = Math.max(this.queue.now, untilMs);
  }

  private scheduleWorkload(atMs: number): void {
    if (atMs >= this.opts.chaosMs - 300) return;
    this.queue.at(atMs, () => {
      if (this.random.chance(this.knobs.emptyTxChance)) this.client.startEmpty();
      else this.client.startTransfer();
    });
    this.scheduleWorkload(atMs + Math.round((1_000 / this.knobs.txPerSec) * (0.5 + this.random.float())));
  }

  private scheduleWeather(): void {
    this.queue.at(this.queue.now + 200 + this.random.int(1_300), () => {
      if (!this.chaos) return;
      this.net.faults = randomWeather(this.random);
      this.trace(`weather ${JSON.stringify(this.net.faults)}`);
      this.scheduleWeather();
    });
  }

  private scheduleFaults(): void {
    this.queue.at(this.queue.now + faultTickMs, () => {
      if (!this.chaos) return;
      this.injectFaults(faultTickMs / 1_000);
      this.scheduleFaults();
    });
  }

  private injectFaults(dt: number): void {
    const k = this.knobs;
    const r = this.random;
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
        this.trace('heal');
      }
    } else if (r.chance(k.partitionPerSec * dt)) {
      this.partition();
    }
    const live = this.processes.filter((p) => p.alive);
    if (live.length > 0 && r.chance(k.procCrashPerSec * dt * live.length)) r.pick(live).kill('injected');
  }

  /** A split of the store, a process cut off from the store or from everyone, or hints lost. */
  private partition(): void {
    const r = this.random;
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
    this.counters.inc('partitions');
    this.trace(`partition ${this.net.links.describe()}`);
  }

  /** Every 500 ms of a traced run: each store node's role, term, commit and applied index. */
  private traceStore(): void {
    this.queue.at(this.queue.now + 500, () => {
      const parts = this.nodes.map((n) => {
        const st = n.live?.raftStatus();
        return st === undefined ? `${n.name} down` : `${n.name} ${st.role} t${st.term} c${st.commitIndex} a${n.live?.applied ?? 0}`;
      });
      this.trace(`store: ${parts.join(' | ')} inflight=${this.net.inFlight}`);
      this.traceStore();
    });
  }

  private heal(): void {
    this.chaos = false;
    this.net.links.heal();
    this.net.faults = CALM;
    for (const p of [...this.nodes, ...this.processes]) if (!p.alive) p.start();
    this.trace('healed: every process up, the network calm, no more faults');
  }

  /** Runs until everything is decided, applied, acknowledged and collected, within the liveness bound. */
  private async quiesce(): Promise<void> {
    const bound = this.queue.now + livenessBoundMs;
    for (let left = this.leftover(); left.length > 0; left = this.leftover()) {
      if (this.queue.now >= bound) throw new SafetyViolation('liveness', `not quiescent ${livenessBoundMs} ms after healing (${left.length} things left): ${left.slice(0, 12).join('; ')}`);
      await this.runUntil(this.queue.now + 100);
    }
    this.counters.inc('quiesce ms', this.queue.now - this.opts.chaosMs);
  }

  /**
   * What keeps the run from being quiescent: an undecided transaction, keys
   * recovery should have collected or deleted, a participant down, a record
   * not applied or not acknowledged, money still held.
   */
  private leftover(): string[] {
    const left: string[] = [];
    for (const p of this.participants) {
      const node = p.live;
      if (node?.ready !== true) left.push(`${p.name} not serving`);
      for (const r of node?.log.list() ?? []) if (r.applied === undefined || r.ackedAt === undefined) left.push(`${p.name} ${r.txId} ${r.applied === undefined ? 'not applied' : 'not acked'}`);
      if (p.bank.heldCount > 0) left.push(`${p.name} holds ${p.bank.heldCount}`);
    }
    for (const [id, f] of this.checker.txs) if (f.created && f.decision === undefined) left.push(`${id} undecided`);
    const idsInStore = new Set(this.checker.liveTxKeys().flatMap((k) => parseKey(k)?.id ?? []));
    for (const id of idsInStore) left.push(this.checker.mirror.has(txKey(id)) ? `${id} not collected` : `${id} orphan keys`);
    return left;
  }

  private finalChecks(): void {
    const byName = new Map(this.participants.map((p) => [p.name, p]));
    this.checker.checkFinal((name, id) => byName.get(name)?.live?.log.get(id) !== undefined);
    const total = this.participants.reduce((s, p) => s + p.bank.total, 0);
    const expected = bankNames.length * accounts.length * initialBalance;
    if (total !== expected) throw new SafetyViolation('conservation', `the banks hold ${total} in all, not ${expected}`);
  }

  private result(invariant?: string, violation?: string): Sim2pcResult {
    const c = this.counters;
    c.inc('simulated ms', this.queue.now);
    c.inc('events', this.events);
    c.inc('packets sent', this.net.sent);
    c.inc('packets dropped', this.net.dropped);
    c.inc('transactions started', this.client.started);
    for (const f of this.checker.txs.values()) if (f.decision !== undefined) c.inc(`transactions ${f.decision === 'commit' ? 'committed' : 'aborted'}`);
    const base = { seed: this.opts.seed, counters: c.values, trace: this.traceLines, digest: this.digestHash.copy().digest('hex').slice(0, 16) };
    if (invariant === undefined || violation === undefined) return { ...base, ok: true };
    return { ...base, ok: false, invariant, violation, atMs: this.queue.now };
  }
}

export function runSim2pc(opts: Sim2pcOptions): Promise<Sim2pcResult> {
  return new Simulation(opts).run();
}
