/**
 * A simulated participant process: the real ParticipantNode (machine,
 * effects, watch, recovery) with its real ParticipantLog on a simulated disk
 * (disk.ts: fsync latency, torn tails, lost unsynced data), the real store
 * client over the lossy network, simulated time, and failpoints that crash
 * this process. Its service is a bank (bank.ts). The REST calls (work,
 * prepare, decision) arrive as packets and go to the node's methods, as
 * participant/routes.ts sends them; only express and node:http are left out.
 */
import type { Decision, JsonValue } from '../../coordinator/protocol/index.js';
import type { ParticipantConfig } from '../../participant/config.js';
import { ParticipantNode, type ParticipantService, type PrepareAnswer } from '../../participant/participant.js';
import { SafetyViolation } from '../sim/invariants.js';
import type { Bank } from './bank.js';
import { SimDisk } from './disk.js';
import type { ParticipantAnswer, ParticipantCall } from './messages.js';
import { mutatedStore, type Mutation } from './mutations.js';
import type { Net } from './net.js';
import { ServiceProc, type ErrorReport } from './proc-service.js';
import { simTxStore, type StoreAccessOptions } from './store-access.js';
import type { World } from './world.js';

export interface ParticipantProcOptions {
  readonly config: Partial<ParticipantConfig>;
  readonly store: StoreAccessOptions;
  readonly fsyncMs: () => number;
  /** Simulated ms the bank takes to validate work. */
  readonly serviceMs: () => number;
  readonly mutation: Mutation | undefined;
  /** The bank applied a decision (durably): for the checker. */
  readonly onApplied: (participant: string, txId: string, decision: Decision) => void;
  /** The bank found money spent twice or a decision applied both ways. */
  readonly onViolation: (e: SafetyViolation) => void;
  /** A log line at level error, or a fatal failure (an assertion inside the runtime is a violation). */
  readonly onError: ErrorReport;
}

/** Where the log lives on the simulated disk. */
export const LOG_PATH = '/data/participant-log.jsonl';

export class SimParticipant extends ServiceProc<ParticipantCall, ParticipantAnswer> {
  readonly disk: SimDisk;
  private node: ParticipantNode | undefined;

  constructor(
    name: string,
    world: World,
    net: Net,
    readonly bank: Bank,
    private readonly opts: ParticipantProcOptions,
  ) {
    super(name, world, net, opts.onError, opts.store.requestTimeoutMs);
    this.disk = new SimDisk(this, world, { fsyncMs: opts.fsyncMs, fsyncLies: opts.mutation === 'fsync-lies' });
  }

  /** The live node (its log is what this participant knows), or undefined while down or opening. */
  get live(): ParticipantNode | undefined {
    return this.node;
  }

  protected onStart(): void {
    this.connect();
    const inc = this.incarnation;
    void ParticipantNode.open({
      name: this.name,
      store: mutatedStore(simTxStore(this, this.http, this.world.random, this.opts.store), 'participant', this.opts.mutation),
      logPath: LOG_PATH,
      service: this.service(inc),
      timers: this.timers,
      random: this.world.random,
      logFs: this.disk,
      failpoints: { hit: (name) => this.failpoint(name) },
      logger: this.logger(),
      onFatal: (e) => {
        this.opts.onError(this.name, 'fatal', { error: e });
        this.kill('fatal');
      },
      config: this.opts.config,
    }).then(async (node) => {
      if (!this.isLive(inc)) return;
      this.node = node;
      await node.start();
    });
  }

  protected onKill(): void {
    this.node = undefined;
    this.http.clear();
    this.bank.crashed();
    this.disk.crash();
  }

  /**
   * The bank as the node's service. The bank's books are durable state of
   * this process: a dead incarnation's callbacks never touch them (a killed
   * process applies nothing), and they answer nothing.
   */
  private service(inc: number): ParticipantService {
    const live = <T>(f: () => T): Promise<T> => {
      if (!this.isLive(inc)) return new Promise<T>(() => undefined);
      try {
        return Promise.resolve(f());
      } catch (e) {
        // The bank's own checks (conservation, atomicity) fail the run, whatever the runtime does with the throw.
        if (e instanceof SafetyViolation) this.opts.onViolation(e);
        return Promise.reject(e);
      }
    };
    return {
      prepare: async (txId: string, work: JsonValue): Promise<PrepareAnswer> => {
        await this.timers.sleep(this.opts.serviceMs());
        return live(() => this.bank.prepare(txId, work));
      },
      commit: (txId: string) =>
        live(() => {
          const already = this.bank.applied.get(txId) === 'commit';
          // No hold yet (not restored after a restart): throw, and the node retries, as inventory.ts does.
          if (!this.bank.commit(txId)) throw new Error(`${this.name} holds nothing for ${txId} yet`);
          if (!already) this.opts.onApplied(this.name, txId, 'commit');
        }),
      abort: (txId: string) =>
        live(() => {
          const already = this.bank.applied.has(txId);
          this.bank.abort(txId);
          if (!already) this.opts.onApplied(this.name, txId, 'abort');
        }),
      restore: (txId: string, work: JsonValue) => live(() => this.bank.restore(txId, work)),
    };
  }

  protected call(call: ParticipantCall): Promise<ParticipantAnswer> | undefined {
    const node = this.node;
    return node === undefined ? undefined : callNode(node, call);
  }
}

async function callNode(node: ParticipantNode, call: ParticipantCall): Promise<ParticipantAnswer> {
  switch (call.kind) {
    case 'work':
      await node.receiveWork(call.txId, call.work);
      return { ok: true };
    case 'prepare':
      return { ok: true, vote: (await node.prepare(call.txId, call.deadline)).vote };
    case 'decision':
      await node.decisionHint(call.txId, call.decision);
      return { ok: true };
  }
}
