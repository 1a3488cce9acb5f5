/**
 * A bank's accounts and locks, as pure logic (no I/O, no time): what a
 * prepare may lock, what a commit applies, what an audit may read.
 *
 * Two kinds of lock, so that an audit sees a consistent cut across banks:
 *
 * - A prepared transfer holds its ops (a "hold"). A debit reserves its
 *   amount: available = balance - every held debit, and a debit larger than
 *   what is available votes "no", so money locked by a prepared transfer
 *   cannot be spent twice and no balance goes negative. Holds of different
 *   transfers coexist (escrow), credits never block anything.
 * - An audit holds a read lock on every account of the bank. It can take it
 *   only when no hold exists, and no transfer can take a hold while one
 *   exists. So while an audit holds its locks in every bank, no transfer is
 *   half-applied anywhere: a transfer keeps its hold in a bank until that
 *   bank applied its decision.
 *
 * Nothing here ever waits: a conflicting prepare answers "no" (or, for an
 * audit, "busy", and the I/O layer waits a bounded time; see bank.ts). While
 * an audit waits, new transfers vote "no", so a steady load cannot starve
 * it; transfers never wait, so no cycle of waits (a deadlock) can form.
 */
import { assert } from '../../lib/assert.js';
import { MAX_BALANCE, type TransferOp } from './work.js';

export interface AccountView {
  readonly id: string;
  readonly balance: number;
  /** Reserved by prepared debits: not available to another transfer. */
  readonly locked: number;
  /** An audit holds a read lock (no transfer can prepare here now). */
  readonly readLocked: boolean;
}

/** Every "no" a transfer gets because of an audit starts with this: a transient conflict, worth another try. */
export const AUDIT_CONFLICT = 'audit lock: ';

export type Verdict = { readonly vote: 'yes' } | { readonly vote: 'no'; readonly reason: string };

export type ReadLockResult = { readonly ok: true; readonly accounts: readonly AccountView[] } | { readonly ok: false; readonly reason: string };

export class Ledger {
  private readonly balances = new Map<string, number>();
  /** txId -> ops of a prepared transfer. Invariant: every held debit fits in its account's balance. */
  private readonly holds = new Map<string, readonly TransferOp[]>();
  /**
   * Holds whose transfer is already in the balances (commit applied, the file
   * not yet durable): they still lock their accounts against audits until
   * released, but no longer reserve money, which would count it twice.
   */
  private readonly applied = new Set<string>();
  /** txId -> the accounts an audit read when it locked them. */
  private readonly reads = new Map<string, readonly AccountView[]>();
  /** Audits waiting for holds to drain; while > 0, new transfers vote "no". */
  private waitingAudits = 0;

  constructor(balances: Readonly<Record<string, number>>) {
    for (const [id, balance] of Object.entries(balances)) {
      assert(Number.isSafeInteger(balance) && balance >= 0 && balance <= MAX_BALANCE, `account ${id}: balance ${balance} out of range`);
      this.balances.set(id, balance);
    }
  }

  has(account: string): boolean {
    return this.balances.has(account);
  }

  /** Balances as a plain record, for the durable file. */
  balancesRecord(): Record<string, number> {
    return Object.fromEntries(this.balances);
  }

  total(): number {
    let sum = 0;
    for (const b of this.balances.values()) sum += b;
    return sum;
  }

  accounts(): AccountView[] {
    const readLocked = this.reads.size > 0;
    return [...this.balances].map(([id, balance]) => ({ id, balance, locked: this.heldDebits(id), readLocked }));
  }

  /** What `txId` holds here, if anything. */
  holding(txId: string): 'transfer' | 'audit' | undefined {
    if (this.holds.has(txId)) return 'transfer';
    if (this.reads.has(txId)) return 'audit';
    return undefined;
  }

  get holdCount(): number {
    return this.holds.size;
  }

  get readLockCount(): number {
    return this.reads.size;
  }

  /** Checks a transfer and, if it may go ahead, holds its ops. Idempotent for a txId that already holds. */
  prepareTransfer(txId: string, ops: readonly TransferOp[]): Verdict {
    if (this.holds.has(txId)) return { vote: 'yes' };
    const problem = this.transferProblem(ops);
    if (problem !== undefined) return { vote: 'no', reason: problem };
    this.holds.set(txId, ops);
    return { vote: 'yes' };
  }

  /**
   * After a restart: takes back the hold of a transfer that voted "yes" and
   * is not decided yet. No checks: the vote is given and must be honored;
   * the checks held when it was given and only committed holds moved money since.
   */
  restoreTransfer(txId: string, ops: readonly TransferOp[]): void {
    for (const op of ops) assert(this.balances.has(op.account), `restore ${txId}: unknown account ${op.account}`);
    this.holds.set(txId, ops);
  }

  /** Takes a read lock on every account, if no transfer holds anything here. */
  tryReadLock(txId: string): ReadLockResult {
    const existing = this.reads.get(txId);
    if (existing !== undefined) return { ok: true, accounts: existing };
    if (this.holds.size > 0) return { ok: false, reason: `${this.holds.size} prepared transfer(s) hold accounts here` };
    const accounts = this.accounts().map((a) => ({ ...a, readLocked: true }));
    this.reads.set(txId, accounts);
    return { ok: true, accounts };
  }

  /** After a restart: an audit that voted "yes" locks again (nothing can have moved since it read). */
  restoreReadLock(txId: string): void {
    this.reads.set(
      txId,
      this.accounts().map((a) => ({ ...a, readLocked: true })),
    );
  }

  beginAuditWait(): void {
    this.waitingAudits++;
  }

  endAuditWait(): void {
    assert(this.waitingAudits > 0, 'endAuditWait without beginAuditWait');
    this.waitingAudits--;
  }

  /**
   * Applies a held transfer's ops to the balances. The hold stays until
   * `release` (the caller releases once the new balances are durable), so
   * an audit cannot read balances that a crash could still take back.
   */
  applyTransfer(txId: string): readonly TransferOp[] {
    const ops = this.holds.get(txId);
    assert(ops !== undefined, `apply ${txId}: no hold`);
    const next = new Map(this.balances);
    for (const op of ops) {
      const after = (next.get(op.account) ?? Number.NaN) + op.delta;
      // The hold reserved every debit, so this can only fail through a bug.
      assert(Number.isSafeInteger(after) && after >= 0 && after <= MAX_BALANCE, `apply ${txId}: ${op.account} would become ${after}`);
      next.set(op.account, after);
    }
    for (const [id, b] of next) this.balances.set(id, b);
    this.applied.add(txId);
    return ops;
  }

  /** Releases whatever `txId` holds; returns the audit's read if it was one. */
  release(txId: string): { readonly kind: 'transfer' | 'audit' | 'none'; readonly accounts?: readonly AccountView[] } {
    this.applied.delete(txId);
    if (this.holds.delete(txId)) return { kind: 'transfer' };
    const read = this.reads.get(txId);
    if (read !== undefined) {
      this.reads.delete(txId);
      return { kind: 'audit', accounts: read };
    }
    return { kind: 'none' };
  }

  private heldDebits(account: string): number {
    let sum = 0;
    for (const [txId, ops] of this.holds) {
      if (this.applied.has(txId)) continue;
      for (const op of ops) if (op.account === account && op.delta < 0) sum -= op.delta;
    }
    return sum;
  }

  private heldCredits(account: string): number {
    let sum = 0;
    for (const [txId, ops] of this.holds) {
      if (this.applied.has(txId)) continue;
      for (const op of ops) if (op.account === account && op.delta > 0) sum += op.delta;
    }
    return sum;
  }

  private transferProblem(ops: readonly TransferOp[]): string | undefined {
    if (this.reads.size > 0) return `${AUDIT_CONFLICT}an audit holds read locks on every account`;
    if (this.waitingAudits > 0) return `${AUDIT_CONFLICT}an audit is waiting for the locks`;
    const debits = new Map<string, number>();
    const credits = new Map<string, number>();
    for (const op of ops) {
      if (!this.balances.has(op.account)) return `no account ${op.account}`;
      const into = op.delta < 0 ? debits : credits;
      into.set(op.account, (into.get(op.account) ?? 0) + Math.abs(op.delta));
    }
    for (const [account, amount] of debits) {
      const available = (this.balances.get(account) ?? 0) - this.heldDebits(account);
      if (amount > available) return `insufficient funds in ${account}: ${available} available, ${amount} asked`;
    }
    for (const [account, amount] of credits) {
      if ((this.balances.get(account) ?? 0) + this.heldCredits(account) + amount > MAX_BALANCE) return `${account} would exceed ${MAX_BALANCE}`;
    }
    return undefined;
  }
}
