/**
 * Transfers and audits as distributed transactions, each one `run` of the
 * coordinator client SDK (raft2pc/client): begin naming the banks, give each
 * bank its work, commit; failover between coordinators, retries, a commit
 * whose answer was lost and an abort that means committed are the SDK's
 * business (client/transaction.ts).
 *
 * A bank that cannot take its work gets the transaction aborted at once
 * (not at the deadline). An audit is the same with read-only work for every
 * bank; once committed, every bank held its read locks at one moment, so
 * what each read is one consistent cut (demo/bank/ledger.ts explains why).
 */
import { AppError } from '../../lib/errors.js';
import type { JsonObject, JsonValue } from '../../coordinator/protocol/index.js';
import { CoordinatorError, type CoordinatorClient, type RunOutcome } from '../../client/index.js';
import { errorMessage, fetchJson } from '../common/http.js';
import { systemTimers } from '../../lib/timers.js';
import { AUDIT_CONFLICT, type AccountView } from '../bank/ledger.js';
import { AUDIT_WORK, transferWork, type TransferOp } from '../bank/work.js';

export interface AccountRef {
  readonly bank: string;
  readonly account: string;
}

export interface TransferRequest {
  readonly from: AccountRef;
  readonly to: AccountRef;
  readonly amount: number;
}

/** The SDK's outcome, plus how many transactions a transfer took. */
export interface TxOutcome extends RunOutcome {
  /** Transactions it took: more than 1 when an audit's locks were in the way (transfers only). */
  readonly attempts?: number;
}

export interface AuditBank {
  readonly name: string;
  readonly accounts: readonly AccountView[];
  readonly total: number;
}

export interface AuditOutcome {
  readonly txId: string;
  readonly outcome: 'committed' | 'aborted';
  readonly reason?: string;
  readonly attempts: number;
  readonly banks?: readonly AuditBank[];
  readonly total?: number;
  readonly at: number;
  readonly elapsedMs: number;
}

export interface TransferServiceOptions {
  readonly client: CoordinatorClient;
  readonly banks: ReadonlyMap<string, string>;
  /** The transaction's timeout at the coordinator: past it, undecided means abort. */
  readonly txTimeoutMs?: number;
}

/** Transactions one transfer may take when an audit's locks are in the way. */
const TRANSFER_ATTEMPTS = 3;
/** How long past its timeout a transaction's outcome is awaited before the app answers 504. */
const RESOLVE_TIMEOUT_MS = 20_000;

export class TransferService {
  private readonly client: CoordinatorClient;
  private readonly banks: ReadonlyMap<string, string>;
  private readonly txTimeoutMs: number;

  constructor(opts: TransferServiceOptions) {
    this.client = opts.client;
    this.banks = opts.banks;
    this.txTimeoutMs = opts.txTimeoutMs ?? 5_000;
  }

  /**
   * Moves `amount` from one account to another; the request must be
   * validated already (server.ts). A transfer that lost only to an audit's
   * locks (a transient conflict) runs again as a new transaction, a bounded
   * number of times; any other "no" is the answer.
   */
  async transfer(req: TransferRequest): Promise<TxOutcome> {
    const started = Date.now();
    let o = await this.transferOnce(req);
    let attempts = 1;
    while (attempts < TRANSFER_ATTEMPTS && o.outcome === 'aborted' && o.reason?.includes(AUDIT_CONFLICT) === true) {
      attempts++;
      await systemTimers.sleep(100 * attempts);
      o = await this.transferOnce(req);
    }
    return { ...o, attempts, elapsedMs: Date.now() - started };
  }

  private transferOnce(req: TransferRequest): Promise<TxOutcome> {
    const ops = new Map<string, TransferOp[]>();
    const add = (bank: string, op: TransferOp): void => {
      ops.set(bank, [...(ops.get(bank) ?? []), op]);
    };
    add(req.from.bank, { account: req.from.account, delta: -req.amount });
    add(req.to.bank, { account: req.to.account, delta: req.amount });
    const work = new Map([...ops].map(([bank, o]) => [bank, transferWork(o)] as const));
    const metadata = { kind: 'transfer', from: `${req.from.bank}:${req.from.account}`, to: `${req.to.bank}:${req.to.account}`, amount: req.amount };
    return this.run(work, metadata);
  }

  /** Reads every account of every bank under read locks; tries again (up to `maxAttempts`) when it aborts. */
  async audit(maxAttempts = 3): Promise<AuditOutcome> {
    const started = Date.now();
    let last: { txId: string; reason: string } = { txId: '', reason: 'not run' };
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const work = new Map([...this.banks.keys()].map((b) => [b, AUDIT_WORK] as const));
      const o = await this.run(work, { kind: 'audit' });
      if (o.outcome === 'committed') {
        const banks = await this.auditReads(o.txId);
        if (typeof banks !== 'string') {
          const total = banks.reduce((s, b) => s + b.total, 0);
          return { txId: o.txId, outcome: 'committed', attempts: attempt, banks, total, at: Date.now(), elapsedMs: Date.now() - started };
        }
        last = { txId: o.txId, reason: banks };
      } else {
        last = { txId: o.txId, reason: o.reason ?? 'aborted' };
      }
      if (attempt < maxAttempts) await systemTimers.sleep(150 * attempt); // let the transfers that blocked it finish
    }
    return { txId: last.txId, outcome: 'aborted', reason: last.reason, attempts: maxAttempts, at: Date.now(), elapsedMs: Date.now() - started };
  }

  private async auditReads(txId: string): Promise<AuditBank[] | string> {
    const reads = await Promise.all(
      [...this.banks].map(async ([name, url]) => {
        const a = await fetchJson(`${url}/v1/audits/${txId}`, { timeoutMs: 2_000 });
        if (a.status !== 200) return `${name} could not say what it read (${errorMessage(a)})`;
        const body = a.body as { accounts: AccountView[]; total: number };
        return { name, accounts: body.accounts, total: body.total };
      }),
    );
    const missing = reads.find((r): r is string => typeof r === 'string');
    return missing ?? (reads as AuditBank[]);
  }

  private async run(work: ReadonlyMap<string, JsonValue>, metadata: JsonObject): Promise<TxOutcome> {
    const participants = [...work].map(([name, w]) => ({ name, url: this.bankUrl(name), work: w }));
    try {
      return await this.client.run({ participants, metadata, timeoutMs: this.txTimeoutMs, resolveTimeoutMs: RESOLVE_TIMEOUT_MS });
    } catch (e) {
      throw e instanceof CoordinatorError ? appError(e) : e;
    }
  }

  private bankUrl(name: string): string {
    const url = this.banks.get(name);
    if (url === undefined) throw new AppError('unknown_bank', 400, `no bank named ${name}`);
    return url;
  }
}

/** The app's answer when the SDK could not give an outcome: 504 when it is unknown, 503 when nothing could take the call, else 502. */
function appError(e: CoordinatorError): AppError {
  const details = e.txId === undefined ? {} : { txId: e.txId };
  if (e.code === 'outcome_unknown' || e.code === 'timeout') return new AppError('outcome_unknown', 504, `no coordinator gave the outcome in time (${e.message}); GET the transaction later`, details, { cause: e });
  if (e.retryable) return new AppError('coordinators_unavailable', 503, `no coordinator could take the call (${e.message})`, { ...details, retryAfterSeconds: 1 }, { cause: e });
  return new AppError('coordinator_error', 502, `a coordinator answered ${e.status} ${e.code}: ${e.message}`, details, { cause: e });
}
