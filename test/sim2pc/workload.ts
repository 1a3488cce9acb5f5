/**
 * The simulated client: transfers between two or three banks, and empty
 * transactions, through the calls of the REST contract (docs/API.md). An
 * empty transaction commits while an abort races it: with nothing to vote,
 * only the decision's CAS keeps both from "winning". Every call can be lost,
 * so each has a timeout and bounded retries.
 */
import type { Participant } from '../../coordinator/protocol/index.js';
import type { BankWork } from './bank.js';
import { shuffle } from '../sim/network.js';
import { timing } from './knobs.js';
import type { Net } from './net.js';
import { NetProc, participantUrl, type Answer, type CoordinatorAnswer, type CoordinatorCall, type ParticipantAnswer } from './proc-service.js';
import type { World } from './world.js';

/** Largest transfer; balances start at 100, so some transfers are refused. */
const maxAmount = 80;

/** Codes after which the same call may get an answer (the coordinator was busy, down or cut off). */
const retryCodes = new Set(['not_ready', 'timeout', 'store_unavailable', 'unavailable', 'lost']);

export class Client extends NetProc {
  private next = 0;
  /** Flows started. */
  started = 0;

  constructor(
    world: World,
    net: Net,
    private readonly coordinators: readonly string[],
    private readonly banks: readonly { readonly name: string; readonly accounts: readonly string[] }[],
  ) {
    super('client', world, net, timing.clientCallTimeoutMs);
  }

  protected onStart(): void {
    this.connect();
  }

  protected onKill(): void {}

  /** Nobody calls the client. */
  protected onPacket(): void {}

  private txTimeoutMs(): number {
    const k = this.world.knobs;
    return k.minTxTimeoutMs + this.r.int(k.maxTxTimeoutMs - k.minTxTimeoutMs + 1);
  }

  private get r(): World['random'] {
    return this.world.random;
  }

  /** A transfer from one account of one bank to accounts of one or two others. */
  startTransfer(): void {
    const label = `t${++this.next}`;
    const banks = [...this.banks];
    shuffle(banks, this.r);
    const amount = 1 + this.r.int(maxAmount);
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
    this.callCoordinator({ kind: 'coord', op: 'begin', key: label, participants: enlistOneByOne ? [] : participants, timeoutMs: this.txTimeoutMs() }, (a) => {
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
    this.callCoordinator({ kind: 'coord', op: 'begin', key: label, participants: [], timeoutMs: this.txTimeoutMs() }, (a) => {
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
    this.call<ParticipantAnswer>(() => bank, { kind: 'work', txId: id, work: { account: work.account, delta: work.delta } }, 60, (a) => {
      if (a?.ok === true) return this.sendWork(id, works, i + 1, then);
      // The work could not be placed: abort rather than commit a transfer with a missing half.
      this.callCoordinator({ kind: 'coord', op: 'abort', txId: id, reason: 'work not delivered' }, () => this.done(id, 'work failed, aborted'));
    });
  }

  private finish(id: string): void {
    const roll = this.r.float();
    if (roll < 0.06) return this.done(id, 'abandoned');
    if (roll < 0.14) return this.callCoordinator({ kind: 'coord', op: 'abort', txId: id }, () => this.done(id, 'aborted'));
    if (roll < 0.2) this.after(this.r.int(20), () => this.callCoordinator({ kind: 'coord', op: 'abort', txId: id, reason: 'racing abort' }, () => undefined));
    this.callCoordinator({ kind: 'coord', op: 'commit', txId: id }, () => this.done(id, 'committed or aborted'));
  }

  private done(id: string, how: string): void {
    this.world.trace(`client: ${id} ${how}`);
  }

  /** A call to some coordinator, retried at the next one on silence or a retryable error. */
  private callCoordinator(call: CoordinatorCall, cb: (a: CoordinatorAnswer | undefined) => void): void {
    const cs = this.coordinators;
    const first = this.r.int(cs.length);
    this.call((n) => cs[(first + n) % cs.length] as string, call, 80, cb);
  }

  /** A call to `to(attempt)`, retried 20 ms plus up to `jitterMs` later on silence or a retryable error, while attempts are left. */
  private call<A extends Answer<{ readonly ok: true }>>(to: (attempt: number) => string, body: unknown, jitterMs: number, cb: (a: A | undefined) => void, n = 0): void {
    void this.rpc.call(to(n), body, timing.clientCallTimeoutMs).then((reply) => {
      const a = reply as Answer<{ readonly ok: true }> | undefined;
      if (n + 1 < timing.clientMaxCallAttempts && (a === undefined || (!a.ok && retryCodes.has(a.code)))) this.after(20 + this.r.int(jitterMs), () => this.call(to, body, jitterMs, cb, n + 1));
      else cb(reply as A | undefined);
    });
  }
}
