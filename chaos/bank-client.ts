/**
 * A client of the bank demo that goes straight to the coordinators and the
 * banks, as the transfer app does: begin a transaction naming the banks,
 * hand each bank its work (/2pc/work, durable before it answers), commit.
 * An audit is the same with read-lock work at every bank, then each bank's
 * read (GET /v1/audits/{txId}).
 *
 * It fails over between coordinators: every coordinator call is idempotent
 * (begin through an Idempotency-Key, so the transaction id is known before
 * the first answer; commit and abort answer the same outcome when repeated),
 * so a client that got no answer asks the other coordinator. What it could
 * not learn is "unknown" and the end-of-run checks resolve it from the store.
 */
import type { JsonAnswer } from '../demo/common/http.js';
import { serviceJson } from './service-http.js';
import { AUDIT_WORK, transferWork, type TransferOp } from '../demo/bank/work.js';
import { idForIdempotencyKey } from '../coordinator/service/index.js';
import type { JsonValue } from '../coordinator/protocol/index.js';
import type { BankRef } from './cluster.js';

/** Transactions get this long before the coordinators' recovery aborts them. */
export const TX_TIMEOUT_MS = 5_000;
const BEGIN_ATTEMPT_MS = 3_000;
const BEGIN_BUDGET_MS = 8_000;
const WORK_ATTEMPT_MS = 2_500;
const WORK_ATTEMPTS = 2;
/** A commit answers by the deadline plus recovery; past this the other coordinator is asked. */
const COMMIT_ATTEMPT_MS = TX_TIMEOUT_MS + 4_000;
const COMMIT_BUDGET_MS = 25_000;
const ABORT_ATTEMPT_MS = 3_000;
const AUDIT_READ_ATTEMPTS = 3;

export type ClientOutcome = 'committed' | 'aborted' | 'unknown';

export interface Endpoint {
  readonly name: string;
  readonly url: string;
}

export interface AccountRef {
  readonly bank: string;
  readonly account: string;
}

export interface TxAttempt {
  readonly txId: string;
  readonly outcome: ClientOutcome;
  /** From the commit request to its answer; null when there was no commit call or no answer. */
  readonly commitMs: number | null;
  /** Why the outcome is what it is, when it is not a plain answer. */
  readonly note: string | undefined;
}

export interface AuditRead {
  readonly bank: string;
  readonly total: number;
  readonly accounts: readonly { readonly id: string; readonly balance: number }[];
}

export interface AuditAttempt extends TxAttempt {
  /** Every bank's read when the audit committed and each one was fetched; null otherwise. */
  readonly reads: readonly AuditRead[] | null;
}

export class BankClient {
  constructor(
    private readonly coordinators: readonly Endpoint[],
    private readonly banks: readonly BankRef[],
  ) {}

  /** The transaction id a key stands for, the same on every coordinator. */
  static txIdFor(key: string): string {
    return idForIdempotencyKey(key);
  }

  /** Moves `amount` from one account to another (same bank or not) as one distributed transaction. */
  async transfer(key: string, from: AccountRef, to: AccountRef, amount: number, firstCoordinator: number): Promise<TxAttempt> {
    const work = new Map<string, TransferOp[]>();
    const add = (bank: string, op: TransferOp): void => void work.set(bank, [...(work.get(bank) ?? []), op]);
    add(from.bank, { account: from.account, delta: -amount });
    add(to.bank, { account: to.account, delta: amount });
    const metadata = { kind: 'transfer', from: `${from.bank}/${from.account}`, to: `${to.bank}/${to.account}`, amount };
    return this.run(key, [...work].map(([bank, ops]) => ({ bank, work: transferWork(ops) })), metadata, firstCoordinator);
  }

  /** Reads every account of every bank under read locks, as one transaction: a consistent cut. */
  async audit(key: string, firstCoordinator: number): Promise<AuditAttempt> {
    const attempt = await this.run(key, this.banks.map((b) => ({ bank: b.name, work: AUDIT_WORK })), { kind: 'audit' }, firstCoordinator);
    if (attempt.outcome !== 'committed') return { ...attempt, reads: null };
    const reads = await Promise.all(this.banks.map((b) => this.auditRead(b, attempt.txId)));
    return { ...attempt, reads: reads.every((r) => r !== null) ? (reads as AuditRead[]) : null };
  }

  private async run(key: string, parts: readonly { bank: string; work: JsonValue }[], metadata: Record<string, JsonValue>, first: number): Promise<TxAttempt> {
    const txId = BankClient.txIdFor(key);
    const participants = parts.map((p) => ({ name: p.bank, url: this.bankUrl(p.bank) }));
    const begun = await this.onCoordinators(first, BEGIN_ATTEMPT_MS, BEGIN_BUDGET_MS, (c) =>
      serviceJson(`${c.url}/v1/transactions`, { method: 'POST', body: { timeoutMs: TX_TIMEOUT_MS, participants, metadata }, headers: { 'idempotency-key': key }, timeoutMs: BEGIN_ATTEMPT_MS }),
    );
    if (begun.status !== 201) return this.giveUp(txId, first, `begin: ${describe(begun)}`);
    const sent = await Promise.all(parts.map((p) => this.sendWork(p.bank, txId, p.work)));
    const failed = sent.find((s) => s !== undefined);
    if (failed !== undefined) return this.giveUp(txId, first, `work: ${failed}`);
    const started = performance.now();
    const answer = await this.onCoordinators(first, COMMIT_ATTEMPT_MS, COMMIT_BUDGET_MS, (c) => serviceJson(`${c.url}/v1/transactions/${txId}/commit`, { method: 'POST', body: {}, timeoutMs: COMMIT_ATTEMPT_MS }));
    const outcome = outcomeOf(answer);
    return { txId, outcome, commitMs: outcome === 'unknown' ? null : performance.now() - started, note: outcome === 'unknown' ? `commit: ${describe(answer)}` : undefined };
  }

  /** Work that a bank did not take: abort, so the transaction does not wait for its deadline. */
  private async giveUp(txId: string, first: number, why: string): Promise<TxAttempt> {
    const answer = await this.onCoordinators(first, ABORT_ATTEMPT_MS, 2 * ABORT_ATTEMPT_MS, (c) => serviceJson(`${c.url}/v1/transactions/${txId}/abort`, { method: 'POST', body: { reason: 'chaos client gave up' }, timeoutMs: ABORT_ATTEMPT_MS }));
    if (answer.status === 200) return { txId, outcome: 'aborted', commitMs: null, note: why };
    // 409 already_committed cannot come from a transaction nobody asked to commit; treat it as unknown and let the checks decide.
    return { txId, outcome: 'unknown', commitMs: null, note: `${why}; abort: ${describe(answer)}` };
  }

  /** Undefined when the bank took the work; else why not. */
  private async sendWork(bank: string, txId: string, work: JsonValue): Promise<string | undefined> {
    let last: JsonAnswer | undefined;
    for (let i = 0; i < WORK_ATTEMPTS; i++) {
      last = await serviceJson(`${this.bankUrl(bank)}/2pc/work`, { method: 'POST', body: { txId, work }, timeoutMs: WORK_ATTEMPT_MS });
      if (last.status === 200) return undefined;
      if (last.status >= 400 && last.status < 500) break; // refused for good
    }
    return `${bank} ${last === undefined ? 'no attempt' : describe(last)}`;
  }

  private async auditRead(bank: BankRef, txId: string): Promise<AuditRead | null> {
    for (let i = 0; i < AUDIT_READ_ATTEMPTS; i++) {
      const r = await serviceJson(`${bank.url}/v1/audits/${txId}`, { timeoutMs: 1_500 });
      if (r.status === 200) {
        const body = r.body as { total: number; accounts: { id: string; balance: number }[] };
        return { bank: bank.name, total: body.total, accounts: body.accounts.map((a) => ({ id: a.id, balance: a.balance })) };
      }
      if (r.status === 404) return null; // the bank restarted and forgot its reads (they live in memory)
    }
    return null;
  }

  /**
   * Calls coordinators in turn from `first` until one answers with a
   * status that is not a "try elsewhere" (no answer, 5xx), within `budgetMs`.
   */
  private async onCoordinators(first: number, attemptMs: number, budgetMs: number, call: (c: Endpoint) => Promise<JsonAnswer>): Promise<JsonAnswer> {
    const deadline = performance.now() + budgetMs;
    let last: JsonAnswer = { status: 0, body: null, error: 'no attempt' };
    for (let i = 0; i < 8 && performance.now() + Math.min(attemptMs, 1_000) <= deadline; i++) {
      const c = this.coordinators[(first + i) % this.coordinators.length] as Endpoint;
      last = await call(c);
      if (last.status !== 0 && last.status < 500) return last;
    }
    return last;
  }

  private bankUrl(name: string): string {
    const b = this.banks.find((x) => x.name === name);
    if (b === undefined) throw new Error(`unknown bank ${name}`);
    return b.url;
  }
}

function outcomeOf(a: JsonAnswer): ClientOutcome {
  if (a.status !== 200) return 'unknown';
  const outcome = (a.body as { outcome?: unknown } | null)?.outcome;
  return outcome === 'committed' || outcome === 'aborted' ? outcome : 'unknown';
}

function describe(a: JsonAnswer): string {
  if (a.status === 0) return a.error ?? 'no answer';
  const err = (a.body as { error?: { code?: unknown } } | null)?.error?.code;
  return `${a.status}${typeof err === 'string' ? ` ${err}` : ''}`;
}
