/**
 * The service a simulated participant embeds, in the manner of
 * examples/inventory/inventory.ts: prepare validates a transfer's change to
 * one account and holds the money a debit needs, commit applies it, abort
 * releases the hold. Balances and applied decisions are durable; holds die
 * with the process and `restore` takes them back. It checks as it goes that
 * no balance goes below zero and no money is held twice.
 */
import type { Decision, JsonValue } from '../../coordinator/protocol/index.js';
import type { PrepareAnswer } from '../../participant/participant.js';
import { SafetyViolation } from '../sim/invariants.js';

/** One bank's part of a transfer: add `delta` (negative: a debit) to `account`. */
export interface BankWork {
  readonly account: string;
  readonly delta: number;
}

function parseBankWork(work: JsonValue): BankWork | undefined {
  if (typeof work !== 'object' || work === null || Array.isArray(work)) return undefined;
  const o = work as { readonly [k: string]: JsonValue };
  const account = o['account'];
  const delta = o['delta'];
  if (typeof account !== 'string' || typeof delta !== 'number' || !Number.isSafeInteger(delta) || delta === 0) return undefined;
  return { account, delta };
}

export class Bank {
  /** Durable. */
  readonly balances = new Map<string, number>();
  /** Durable: every decision applied here, by transaction. */
  readonly applied = new Map<string, Decision>();
  /** Volatile: the work of each prepared (or restored) transaction. */
  private holds = new Map<string, BankWork>();
  /**
   * Volatile: transactions whose decision this process applied. A restore of
   * one of them would take back a hold that nothing releases any more
   * (docs/CHAOS.md, finding 6); a restore of one applied before a crash is
   * the normal replay and is skipped below.
   */
  private appliedThisLife = new Set<string>();

  constructor(
    readonly name: string,
    accounts: readonly string[],
    initialBalance: number,
    /** A decision applied here for the first time (durably): for the checker. */
    private readonly onApplied: (txId: string, d: Decision) => void,
  ) {
    for (const a of accounts) this.balances.set(a, initialBalance);
  }

  get total(): number {
    return [...this.balances.values()].reduce((sum, b) => sum + b, 0);
  }

  get heldCount(): number {
    return this.holds.size;
  }

  /** The process died: its holds are gone. */
  crashed(): void {
    this.holds = new Map();
    this.appliedThisLife = new Set();
  }

  prepare(txId: string, work: JsonValue): PrepareAnswer {
    const w = parseBankWork(work);
    if (w === undefined || !this.balances.has(w.account)) return { vote: 'no', reason: 'bad work' };
    if (w.delta < 0 && this.available(w.account) + w.delta < 0) return { vote: 'no', reason: `insufficient funds in ${w.account}` };
    this.holds.set(txId, w);
    this.checkAccount(w.account, txId);
    return { vote: 'yes' };
  }

  /** After a restart: the "yes" already promised this money, so the hold is taken back as it was. */
  restore(txId: string, work: JsonValue): void {
    if (this.appliedThisLife.has(txId)) throw new SafetyViolation('locks', `${this.name}: ${txId} restored after its decision was applied in this process`);
    const w = parseBankWork(work);
    if (w === undefined || this.applied.has(txId)) return;
    this.holds.set(txId, w);
    this.checkAccount(w.account, txId);
  }

  /**
   * False when this process holds no reservation for the transaction (not
   * prepared, or not restored yet after a restart): inventory.ts throws then,
   * and the participant retries until the restore has taken the hold back.
   */
  commit(txId: string): boolean {
    const done = this.applied.get(txId);
    if (done === 'abort') throw new SafetyViolation('atomicity', `${this.name}: ${txId} committed after it was aborted here`);
    if (done === 'commit') {
      this.appliedThisLife.add(txId);
      this.holds.delete(txId);
      return true;
    }
    const w = this.holds.get(txId);
    if (w === undefined) return false;
    this.balances.set(w.account, (this.balances.get(w.account) ?? 0) + w.delta);
    this.applied.set(txId, 'commit');
    this.appliedThisLife.add(txId);
    this.holds.delete(txId);
    this.checkAccount(w.account, txId);
    this.onApplied(txId, 'commit');
    return true;
  }

  abort(txId: string): void {
    const done = this.applied.get(txId);
    if (done === 'commit') throw new SafetyViolation('atomicity', `${this.name}: ${txId} aborted after it was committed here`);
    this.holds.delete(txId);
    this.appliedThisLife.add(txId);
    if (done !== undefined) return;
    this.applied.set(txId, 'abort');
    this.onApplied(txId, 'abort');
  }

  private available(account: string): number {
    let held = 0;
    for (const w of this.holds.values()) if (w.account === account && w.delta < 0) held -= w.delta;
    return (this.balances.get(account) ?? 0) - held;
  }

  private checkAccount(account: string, txId: string): void {
    const balance = this.balances.get(account) ?? 0;
    if (balance < 0) throw new SafetyViolation('conservation', `${this.name}/${account} balance ${balance} < 0 after ${txId}`);
    if (this.available(account) < 0) {
      throw new SafetyViolation('conservation', `${this.name}/${account}: holds exceed the balance ${balance} after ${txId} (money spent twice)`);
    }
  }
}
