/**
 * Reads the banks' own view while the run goes and at its end: each bank's
 * participant log (GET /v1/participant/transactions, newest first, at most
 * 1,000) and its accounts (GET /v1/accounts). Polling every couple of
 * seconds sees every transfer's record before the log's retention (two
 * minutes in the demo) drops it, so the end-of-run checks can say, per
 * transaction and per bank, what each bank applied.
 *
 * Balances are checked on every read: never negative. An account showing
 * more `locked` than its balance is counted, not flagged: a bank keeps a
 * committed transfer's hold until its new balances are durable
 * (demo/bank/bank.ts, `commit`), so for that moment the applied debit is
 * both out of the balance and still in `locked`. Money spent twice would
 * show as a negative balance or break conservation, which are checked.
 */
import { serviceJson } from './service-http.js';
import { keepAliveTimers } from '../lib/timers.js';
import type { BankRef } from './cluster.js';
import type { Violation } from './record.js';

export type BankPhase = 'new' | 'received' | 'prepared' | 'refused' | 'committed' | 'aborted';

interface LogView {
  readonly txId: string;
  readonly phase: BankPhase;
  readonly work: { readonly type?: string } | null;
  readonly decision: 'commit' | 'abort' | null;
}

interface AccountView {
  readonly id: string;
  readonly balance: number;
  readonly locked: number;
}

export interface BankSummary {
  readonly inDoubt: number;
  readonly holds: number;
  readonly readLocks: number;
  readonly total: number;
}

const POLL_EVERY_MS = 2_000;
const READ_TIMEOUT_MS = 2_000;
const LOG_LIMIT = 1_000;
const MAX_POLLS = 10_000_000;
/** Phases past which a record does not move (a refused one is aborted later, but moves no money). */
const FINAL: ReadonlySet<BankPhase> = new Set(['committed', 'aborted', 'refused']);

export class BankObserver {
  /** bank -> txId -> the latest phase seen (a final phase is never replaced by an earlier one). */
  readonly phases = new Map<string, Map<string, BankPhase>>();
  readonly polls = { ok: 0, failed: 0 };
  /** Reads where an account showed more locked than its balance (see above), with the first few. */
  readonly lockedOverBalance: { count: number; samples: string[] } = { count: 0, samples: [] };
  /** What was flagged already: a state that persists is seen by every poll but is one violation. */
  private readonly flagged = new Set<string>();

  constructor(
    private readonly banks: readonly BankRef[],
    private readonly onViolation: (v: Violation) => void,
    /** Run time in ms, for messages. */
    private readonly now: () => number = () => 0,
  ) {
    for (const b of banks) this.phases.set(b.name, new Map());
  }

  /** Polls until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    for (let i = 0; i < MAX_POLLS && !signal.aborted; i++) {
      await this.pollOnce();
      await keepAliveTimers.sleep(POLL_EVERY_MS, signal);
    }
  }

  /** One read of every bank that answers; a bank that is down or paused is skipped this round. */
  async pollOnce(): Promise<void> {
    await Promise.all(this.banks.map((b) => Promise.all([this.readLog(b), this.readAccounts(b)])));
  }

  phaseAt(bank: string, txId: string): BankPhase | undefined {
    return this.phases.get(bank)?.get(txId);
  }

  /** Every account's balance, or undefined if the bank does not answer. */
  async balances(bank: BankRef): Promise<Map<string, number> | undefined> {
    const accounts = await this.readAccounts(bank);
    return accounts === undefined ? undefined : new Map(accounts.map((a) => [a.id, a.balance]));
  }

  async summary(bank: BankRef): Promise<BankSummary | undefined> {
    const r = await serviceJson(`${bank.url}/v1/summary`, { timeoutMs: READ_TIMEOUT_MS });
    return r.status === 200 ? (r.body as BankSummary) : undefined;
  }

  private flagOnce(v: Violation): void {
    if (this.flagged.has(v.message)) return;
    this.flagged.add(v.message);
    this.onViolation(v);
  }

  private async readLog(bank: BankRef): Promise<void> {
    const r = await serviceJson(`${bank.url}/v1/participant/transactions?limit=${LOG_LIMIT}`, { timeoutMs: READ_TIMEOUT_MS });
    if (r.status !== 200) {
      this.polls.failed++;
      return;
    }
    this.polls.ok++;
    const seen = this.phases.get(bank.name) as Map<string, BankPhase>;
    for (const t of (r.body as { transactions: LogView[] }).transactions) {
      if (t.work?.type !== 'transfer') continue;
      const before = seen.get(t.txId);
      if (before !== undefined && FINAL.has(before)) {
        if (t.phase === before || !FINAL.has(t.phase)) continue;
        // refused -> aborted is the normal path; any other change of a final phase is a bank that applied both outcomes.
        if (!(before === 'refused' && t.phase === 'aborted')) this.flagOnce({ check: 'atomicity', message: `${bank.name} showed ${t.txId} as ${before}, later as ${t.phase}`, txId: t.txId });
      }
      seen.set(t.txId, t.phase);
    }
  }

  private async readAccounts(bank: BankRef): Promise<AccountView[] | undefined> {
    const r = await serviceJson(`${bank.url}/v1/accounts`, { timeoutMs: READ_TIMEOUT_MS });
    if (r.status !== 200) return undefined;
    const accounts = r.body as AccountView[];
    for (const a of accounts) {
      const at = `at ${(this.now() / 1000).toFixed(1)} s`;
      if (a.balance < 0) this.flagOnce({ check: 'no-negative-balance', message: `${bank.name}/${a.id} has balance ${a.balance} ${at}` });
      if (a.locked > a.balance) {
        this.lockedOverBalance.count++;
        if (this.lockedOverBalance.samples.length < 10) this.lockedOverBalance.samples.push(`${bank.name}/${a.id}: ${a.locked} locked, balance ${a.balance} ${at}`);
      }
    }
    return accounts;
  }
}
