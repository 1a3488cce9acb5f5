/**
 * The simulated client: bank transfers across participants, as an
 * application would run them through the REST contract (docs/API.md):
 * begin at any coordinator (sometimes with the participants, sometimes
 * enlisting them one by one), hand each participant its work and wait for
 * it to be durable, then commit, abort, both at once through two
 * coordinators, or walk away and let the deadline abort. A debit larger
 * than the money available is refused by the bank, so aborts happen.
 *
 * Empty transactions (no participants) commit while another coordinator
 * aborts them: with nothing to vote, the decision key alone is the outcome,
 * so only the decision's CAS keeps the two from both "winning".
 *
 * Every call can be lost, so every call has a timeout and is retried a
 * bounded number of times, at another coordinator when one does not answer.
 */
import type { Participant } from '../../coordinator/protocol/index.js';
import type { BankWork } from './bank.js';
import { participantUrl, type CoordinatorAnswer, type CoordinatorCall, type ParticipantAnswer } from './messages.js';
import { RpcClient, type Net, type Packet } from './net.js';
import { Proc, type World } from './world.js';

export interface WorkloadOptions {
  readonly coordinators: readonly string[];
  readonly banks: readonly { readonly name: string; readonly accounts: readonly string[] }[];
  readonly callTimeoutMs: number;
  readonly maxCallAttempts: number;
  readonly txTimeoutMs: () => number;
  /** Largest transfer; balances start at 100, so some transfers are refused. */
  readonly maxAmount: number;
}

/** Codes after which the same call may get an answer (the coordinator was busy, down or cut off). */
const retryCodes = new Set(['not_ready', 'timeout', 'store_unavailable', 'unavailable', 'lost']);

export class Client extends Proc {
  private rpc!: RpcClient;
  private next = 0;
  /** Flows started and finished (answered, or given up). */
  started = 0;
  finished = 0;

  constructor(
    world: World,
    private readonly net: Net,
    private readonly opts: WorkloadOptions,
  ) {
    super('client', world);
    net.register('client', (p) => this.receive(p));
  }

  protected onStart(): void {
    this.rpc = new RpcClient(this, this.net);
  }

  protected onKill(): void {}

  private receive(p: Packet): void {
    if (this.alive && p.payload.kind === 'resp') this.rpc.onReply(p.payload.rid, p.payload.body);
  }

  private get r(): World['random'] {
    return this.world.random;
  }

  /** A transfer from one account of one bank to accounts of one or two others. */
  startTransfer(): void {
    const label = `t${++this.next}`;
    const banks = [...this.opts.banks];
    shuffle(banks, (n) => this.r.int(n));
    const amount = 1 + this.r.int(this.opts.maxAmount);
    // Two or three banks: one debit, and credits that add up to it.
    const split = amount >= 2 && this.r.chance(0.3) ? 1 + this.r.int(amount - 1) : amount;
    const credits = split === amount ? [amount] : [split, amount - split];
    const chosen = banks.slice(0, 1 + credits.length);
    const works = new Map<string, BankWork>();
    chosen.forEach((b, i) => works.set(b.name, { account: this.r.pick(b.accounts), delta: i === 0 ? -amount : (credits[i - 1] as number) }));
    const participants: Participant[] = chosen.map((b) => ({ name: b.name, url: participantUrl(b.name) }));
    this.started++;
    const enlistOneByOne = this.r.chance(0.25);
    this.world.trace(`client: ${label} transfer ${JSON.stringify(Object.fromEntries(works))}${enlistOneByOne ? ' (enlisting)' : ''}`);
    this.callCoordinator({ kind: 'coord', op: 'begin', key: label, participants: enlistOneByOne ? [] : participants, timeoutMs: this.opts.txTimeoutMs() }, (a) => {
      if (a?.ok !== true) return this.done(label, 'begin failed');
      const id = a.id;
      this.world.trace(`client: ${label} is ${id}`);
      const afterEnlist = (): void => this.sendWork(id, [...works], 0, () => this.finish(id));
      if (enlistOneByOne) this.enlist(id, participants, 0, afterEnlist);
      else afterEnlist();
    });
  }

  /** A transaction with no participants: commit, and perhaps abort at the same time elsewhere. */
  startEmpty(): void {
    const label = `e${++this.next}`;
    this.started++;
    this.callCoordinator({ kind: 'coord', op: 'begin', key: label, participants: [], timeoutMs: this.opts.txTimeoutMs() }, (a) => {
      if (a?.ok !== true) return this.done(label, 'begin failed');
      const id = a.id;
      let pending = 1;
      const one = (): void => {
        if (--pending === 0) this.done(id, 'answered');
      };
      if (this.r.chance(0.7)) {
        pending++;
        this.after(this.r.int(20), () => this.callCoordinator({ kind: 'coord', op: 'abort', txId: id, reason: 'client changed its mind' }, one));
      }
      this.callCoordinator({ kind: 'coord', op: 'commit', txId: id }, one);
    });
  }

  private enlist(id: string, ps: readonly Participant[], i: number, then: () => void): void {
    const p = ps[i];
    if (p === undefined) return then();
    this.callCoordinator({ kind: 'coord', op: 'enlist', txId: id, participant: p }, (a) => {
      if (a?.ok !== true) return this.done(id, 'enlist failed: left to the deadline');
      this.enlist(id, ps, i + 1, then);
    });
  }

  /** Each participant's work, durable there before commit (docs/2PC.md, "How work reaches a participant"). */
  private sendWork(id: string, works: readonly [string, BankWork][], i: number, then: () => void): void {
    const item = works[i];
    if (item === undefined) return then();
    const [bank, work] = item;
    const attempt = (n: number): void => {
      void this.rpc.call(bank, { kind: 'work', txId: id, work: { account: work.account, delta: work.delta } }, this.opts.callTimeoutMs).then((body) => {
        const a = body as ParticipantAnswer | undefined;
        if (a?.ok === true) return this.sendWork(id, works, i + 1, then);
        if (n + 1 < this.opts.maxCallAttempts && (a === undefined || retryCodes.has(a.code))) {
          this.after(20 + this.r.int(60), () => attempt(n + 1));
          return;
        }
        // The work could not be placed: abort rather than commit a transfer with a missing half.
        this.callCoordinator({ kind: 'coord', op: 'abort', txId: id, reason: 'work not delivered' }, () => this.done(id, 'work failed, aborted'));
      });
    };
    attempt(0);
  }

  private finish(id: string): void {
    const roll = this.r.float();
    if (roll < 0.06) return this.done(id, 'abandoned');
    if (roll < 0.14) return this.callCoordinator({ kind: 'coord', op: 'abort', txId: id }, () => this.done(id, 'aborted'));
    if (roll < 0.2) this.after(this.r.int(20), () => this.callCoordinator({ kind: 'coord', op: 'abort', txId: id, reason: 'racing abort' }, () => undefined));
    this.callCoordinator({ kind: 'coord', op: 'commit', txId: id }, () => this.done(id, 'committed or aborted'));
  }

  private done(id: string, how: string): void {
    this.finished++;
    this.world.trace(`client: ${id} ${how}`);
  }

  /** A call to some coordinator, retried at the next one on silence or a retryable error. */
  private callCoordinator(call: CoordinatorCall, cb: (a: CoordinatorAnswer | undefined) => void): void {
    const cs = this.opts.coordinators;
    const first = this.r.int(cs.length);
    const attempt = (n: number): void => {
      const to = cs[(first + n) % cs.length] as string;
      void this.rpc.call(to, call, this.opts.callTimeoutMs).then((body) => {
        const a = body as CoordinatorAnswer | undefined;
        if (a?.ok === true || (a !== undefined && !retryCodes.has(a.code))) return cb(a);
        if (n + 1 >= this.opts.maxCallAttempts) return cb(a);
        this.after(20 + this.r.int(80), () => attempt(n + 1));
      });
    };
    attempt(0);
  }
}

function shuffle<T>(items: T[], int: (n: number) => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = int(i + 1);
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
}
