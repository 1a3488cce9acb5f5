/**
 * A simulated participant: the real ParticipantNode and its ParticipantLog on
 * a SimDisk, with failpoints that crash this process and a bank as its
 * service; calls go to the node's methods, as participant/routes.ts sends them.
 */
import type { JsonValue } from '../../coordinator/protocol/index.js';
import { ParticipantNode, type ParticipantService, type PrepareAnswer } from '../../participant/participant.js';
import { SafetyViolation } from '../sim/invariants.js';
import type { TxStore } from '../../coordinator/txstore/index.js';
import type { Bank } from './bank.js';
import { SimDisk } from './disk.js';
import { participantConfig } from './knobs.js';
import type { Net } from './net.js';
import { ServiceProc, type ParticipantAnswer, type ParticipantCall, type StoreAccessOptions } from './proc-service.js';
import type { World } from './world.js';

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
    store: StoreAccessOptions,
  ) {
    super(name, world, net, store);
    this.disk = new SimDisk(this, world);
  }

  /** The live node (its log is what this participant knows), or undefined while down or opening. */
  get live(): ParticipantNode | undefined {
    return this.node;
  }

  protected onStart(): void {
    this.connect();
    const inc = this.incarnation;
    const store = slowReadsUntil(this.txStore('participant'), () => this.node?.ready === true, () => this.timers.sleep(this.world.random.int(this.world.knobs.maxRecoveryReadDelayMs + 1)));
    void ParticipantNode.open({
      name: this.name,
      store,
      logPath: LOG_PATH,
      service: this.service(inc),
      timers: this.timers,
      random: this.world.random,
      logFs: this.disk,
      failpoints: { hit: (name) => this.failpoint(name) },
      logger: this.logger(),
      // The simulated machine, not this one: nothing of the real host or pid reaches the store (a seed replays anywhere).
      claimProcess: { host: 'sim', pid: 1000 + inc, isAlive: (pid) => pid === 1000 + this.incarnation && this.alive },
      onFatal: (e) => {
        this.world.runtimeError(this.name, 'fatal', { error: e });
        this.kill('fatal');
      },
      config: participantConfig(this.world.knobs),
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
        if (e instanceof SafetyViolation) this.world.fail(e);
        return Promise.reject(e);
      }
    };
    return {
      prepare: async (txId: string, work: JsonValue): Promise<PrepareAnswer> => {
        await this.timers.sleep(this.world.random.int(this.world.knobs.maxServiceMs + 1));
        return live(() => this.bank.prepare(txId, work));
      },
      commit: (txId: string) =>
        live(() => {
          // No hold yet (not restored after a restart): throw, and the node retries, as inventory.ts does.
          if (!this.bank.commit(txId)) throw new Error(`${this.name} holds nothing for ${txId} yet`);
        }),
      abort: (txId: string) => live(() => this.bank.abort(txId)),
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

/** `store` whose range reads wait `delay()` first until `ready()`: a store slow to answer a recovery. */
function slowReadsUntil(store: TxStore, ready: () => boolean, delay: () => Promise<void>): TxStore {
  const range: TxStore['range'] = async (prefix, opts) => {
    if (!ready()) await delay();
    return store.range(prefix, opts);
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'range') return range;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
