/**
 * A bank as a 2PC participant service (participant/participant.ts calls
 * it): prepare checks and locks (ledger.ts), commit applies durably, abort
 * releases, restore takes an in-doubt transaction's locks back after a
 * restart.
 *
 * Durability: the balances and the ids of the transfers applied here live
 * in one small JSON document: a lowdb `Low` over the adapter DurableJsonFile
 * (temp file, fsync, rename, fsync of the directory), so lowdb holds the
 * document and the adapter makes each write durable. `commit` resolves only
 * once the file holding its effect is durable. The library logs "applied"
 * only after that, so a crash in between replays the commit, and the
 * recorded id makes the replay a no-op. An abort and an audit change no
 * balance, so they write nothing (the participant log records them).
 *
 * Fail-stop: a failed write leaves memory ahead of the disk, so it exits the
 * process (as the participant log does); the restart recovers from disk.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../lib/clock.js';
import { systemClock } from '../../lib/clock.js';
import type { JsonValue } from '../../coordinator/protocol/index.js';
import { Low } from 'lowdb';
import { DurableJsonFile } from '../../participant/durable-json-file.js';
import type { ParticipantService, PrepareAnswer } from '../../participant/participant.js';
import { Ledger, type AccountView } from './ledger.js';
import { parseBankWork } from './work.js';

export interface BankFile {
  readonly version: 1;
  readonly bank: string;
  /** The sum of the opening balances: the bank's share of the money, forever. */
  readonly openingTotal: number;
  readonly balances: Record<string, number>;
  /** Transfers applied here (txId -> epoch ms), kept until the participant log says the apply is settled. */
  readonly committed: Record<string, number>;
}

export interface AuditRead {
  readonly txId: string;
  /** locked: voted yes and holding; released: the decision came (commit or abort). */
  readonly state: 'locked' | 'committed' | 'aborted';
  readonly accounts: readonly AccountView[];
  readonly total: number;
}

export interface BankOptions {
  readonly name: string;
  readonly dataDir: string;
  /** Used only when the bank has no file yet. */
  readonly openingBalances: Readonly<Record<string, number>>;
  /** How long an audit's prepare waits for prepared transfers to finish before it votes "no". */
  readonly auditWaitMs?: number;
  readonly clock?: Clock;
  readonly onFatal?: (e: unknown) => void;
}

/** Finished audit reads kept for the app to fetch. */
const MAX_AUDIT_READS = 128;

export class Bank implements ParticipantService {
  readonly name: string;
  private readonly db: Low<BankFile>;
  private readonly ledger: Ledger;
  private readonly committed: Record<string, number>;
  private readonly auditReads = new Map<string, AuditRead>();
  private readonly auditWaitMs: number;
  private readonly clock: Clock;
  private readonly onFatal: (e: unknown) => void;
  /** Woken whenever a lock is released (audits waiting for holds to drain). */
  private releaseWaiters: (() => void)[] = [];
  /** Whether the participant log no longer needs a transfer's id here (see `prune`). */
  private isSettled: (txId: string) => boolean = () => false;

  private constructor(
    opts: BankOptions,
    db: Low<BankFile>,
    readonly openingTotal: number,
    state: BankFile,
  ) {
    this.name = opts.name;
    this.db = db;
    this.ledger = new Ledger(state.balances);
    this.committed = { ...state.committed };
    this.auditWaitMs = opts.auditWaitMs ?? 1_500;
    this.clock = opts.clock ?? systemClock;
    this.onFatal =
      opts.onFatal ??
      ((e) => {
        process.stderr.write(`bank ${opts.name}: writing the balances failed; exiting so a restart recovers from disk: ${String(e)}\n`);
        process.exit(1);
      });
  }

  static async open(opts: BankOptions): Promise<Bank> {
    mkdirSync(opts.dataDir, { recursive: true });
    const file = new DurableJsonFile<BankFile>(join(opts.dataDir, 'bank.json'));
    const balances = { ...opts.openingBalances };
    const opening: BankFile = { version: 1, bank: opts.name, openingTotal: Object.values(balances).reduce((a, b) => a + b, 0), balances, committed: {} };
    const db = new Low<BankFile>(file, opening);
    await db.read(); // keeps `opening` when there is no file yet
    const state = db.data;
    if (state === opening) await db.write();
    else if (state.version !== 1 || state.bank !== opts.name) {
      throw new Error(`${file.path} belongs to ${String(state.bank)} (version ${String(state.version)}), not ${opts.name}`);
    }
    return new Bank(opts, db, state.openingTotal, state);
  }

  /**
   * Tells the bank when a transfer's id may be forgotten: once the
   * participant log holds its ack (the log wrote "applied" durably before the
   * ack), or dropped the record (only acked records are dropped), no commit
   * of it will be replayed.
   */
  setSettledCheck(isSettled: (txId: string) => boolean): void {
    this.isSettled = isSettled;
  }

  accounts(): AccountView[] {
    return this.ledger.accounts();
  }

  total(): number {
    return this.ledger.total();
  }

  has(account: string): boolean {
    return this.ledger.has(account);
  }

  locks(): { readonly holds: number; readonly readLocks: number } {
    return { holds: this.ledger.holdCount, readLocks: this.ledger.readLockCount };
  }

  auditRead(txId: string): AuditRead | undefined {
    return this.auditReads.get(txId);
  }

  // -------------------------------------------------------------------------
  // ParticipantService

  async prepare(txId: string, work: JsonValue): Promise<PrepareAnswer> {
    const parsed = parseBankWork(work);
    if (typeof parsed === 'string') return { vote: 'no', reason: parsed };
    if (parsed.type === 'audit') return this.lockForAudit(txId);
    return this.ledger.prepareTransfer(txId, parsed.ops);
  }

  restore(txId: string, work: JsonValue): void {
    const parsed = parseBankWork(work);
    if (typeof parsed === 'string') return; // it voted "no"; nothing to hold
    if (parsed.type === 'audit') {
      this.ledger.restoreReadLock(txId);
      this.rememberAudit(txId, 'locked');
    } else if (this.committed[txId] === undefined) {
      this.ledger.restoreTransfer(txId, parsed.ops);
    }
  }

  async commit(txId: string): Promise<void> {
    const holding = this.ledger.holding(txId);
    if (holding === 'audit') {
      this.releaseAndWake(txId, 'committed');
      return;
    }
    if (this.committed[txId] !== undefined) {
      this.releaseAndWake(txId, 'committed'); // applied before: a replay
      return;
    }
    if (holding !== 'transfer') {
      if (this.auditReads.has(txId)) return; // an audit finished here already
      throw new Error(`commit ${txId}: this bank holds nothing for it`);
    }
    this.ledger.applyTransfer(txId);
    this.committed[txId] = this.clock.nowMs();
    this.prune();
    await this.persist();
    this.releaseAndWake(txId, 'committed');
  }

  abort(txId: string): void {
    this.releaseAndWake(txId, 'aborted');
  }

  // -------------------------------------------------------------------------

  /**
   * Read-locks every account, waiting at most `auditWaitMs` for prepared
   * transfers to finish (they never wait on an audit, so this always ends);
   * past it, votes "no".
   */
  private async lockForAudit(txId: string): Promise<PrepareAnswer> {
    const first = this.ledger.tryReadLock(txId);
    if (first.ok) return this.auditLocked(txId);
    const deadline = this.clock.monotonicMs() + this.auditWaitMs;
    this.ledger.beginAuditWait();
    try {
      let last = first.reason;
      for (;;) {
        const leftMs = deadline - this.clock.monotonicMs();
        if (leftMs <= 0) return { vote: 'no', reason: `could not lock every account within ${this.auditWaitMs} ms: ${last}` };
        await this.nextRelease(leftMs);
        const r = this.ledger.tryReadLock(txId);
        if (r.ok) return this.auditLocked(txId);
        last = r.reason;
      }
    } finally {
      this.ledger.endAuditWait();
    }
  }

  private auditLocked(txId: string): PrepareAnswer {
    this.rememberAudit(txId, 'locked');
    return { vote: 'yes' };
  }

  private rememberAudit(txId: string, state: AuditRead['state']): void {
    const accounts = this.ledger.accounts();
    this.auditReads.set(txId, { txId, state, accounts, total: accounts.reduce((s, a) => s + a.balance, 0) });
    while (this.auditReads.size > MAX_AUDIT_READS) {
      const oldest = this.auditReads.keys().next().value as string;
      this.auditReads.delete(oldest);
    }
  }

  private releaseAndWake(txId: string, outcome: 'committed' | 'aborted'): void {
    const released = this.ledger.release(txId);
    if (released.kind === 'audit' && released.accounts !== undefined) {
      const read = this.auditReads.get(txId);
      const accounts = released.accounts;
      this.auditReads.set(txId, { txId, state: outcome, accounts, total: read?.total ?? accounts.reduce((s, a) => s + a.balance, 0) });
    }
    const waiters = this.releaseWaiters;
    this.releaseWaiters = [];
    for (const w of waiters) w();
  }

  private nextRelease(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.releaseWaiters = this.releaseWaiters.filter((w) => w !== waiter);
        resolve();
      }, timeoutMs);
      this.releaseWaiters.push(waiter);
    });
  }

  /** Forgets applied ids the participant log no longer needs: keeps the file small under a steady load. */
  private prune(): void {
    for (const txId of Object.keys(this.committed)) {
      let settled = false;
      try {
        settled = this.isSettled(txId);
      } catch {
        settled = false; // the log is failing; keep everything
      }
      if (settled) delete this.committed[txId];
    }
  }

  private async persist(): Promise<void> {
    const state: BankFile = { version: 1, bank: this.name, openingTotal: this.openingTotal, balances: this.ledger.balancesRecord(), committed: { ...this.committed } };
    try {
      this.db.data = state;
      await this.db.write();
    } catch (e) {
      this.onFatal(e);
      throw e;
    }
  }
}
