/**
 * Transfers and audits as distributed transactions:
 *
 * 1. begin with a coordinator, naming the banks as participants (the list
 *    is fixed from the start, so a bank that never gets its work votes "no"
 *    as soon as the transaction freezes) and an Idempotency-Key (a begin
 *    retried on the other coordinator is the same transaction);
 * 2. give each bank its work (durable at the bank before it answers);
 * 3. commit, on whichever coordinator answers, and report the outcome.
 *
 * A bank that cannot take its work gets the transaction aborted at once
 * (not at the deadline). An audit is the same with read-only work for every
 * bank; once committed, every bank held its read locks at one moment, so
 * what each read is one consistent cut (demo/bank/ledger.ts explains why).
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import type { JsonObject, JsonValue } from '../../coordinator/protocol/index.js';
import { errorMessage, fetchJson } from '../common/http.js';
import { systemTimers } from '../../lib/timers.js';
import { AUDIT_CONFLICT, type AccountView } from '../bank/ledger.js';
import { AUDIT_WORK, transferWork, type TransferOp } from '../bank/work.js';
import type { CoordinatorPool } from './coordinators.js';

export interface AccountRef {
  readonly bank: string;
  readonly account: string;
}

export interface TransferRequest {
  readonly from: AccountRef;
  readonly to: AccountRef;
  readonly amount: number;
}

export interface TxOutcome {
  readonly txId: string;
  readonly outcome: 'committed' | 'aborted';
  readonly reason?: string;
  readonly votes?: Readonly<Record<string, string | null>>;
  /** The coordinator that answered the commit. */
  readonly coordinator: string;
  readonly elapsedMs: number;
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
  readonly pool: CoordinatorPool;
  readonly banks: ReadonlyMap<string, string>;
  /** The transaction's timeout at the coordinator: past it, undecided means abort. */
  readonly txTimeoutMs?: number;
}

const BEGIN_TIMEOUT_MS = 3_000;
const WORK_TIMEOUT_MS = 3_000;
const WORK_ATTEMPTS = 2;
/** Transactions one transfer may take when an audit's locks are in the way. */
const TRANSFER_ATTEMPTS = 3;

export class TransferService {
  private readonly pool: CoordinatorPool;
  private readonly banks: ReadonlyMap<string, string>;
  private readonly txTimeoutMs: number;

  constructor(opts: TransferServiceOptions) {
    this.pool = opts.pool;
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
    const started = Date.now();
    const participants = [...work.keys()].map((name) => ({ name, url: this.bankUrl(name) }));
    const begun = await this.pool.call('POST', '/v1/transactions', {
      body: { timeoutMs: this.txTimeoutMs, participants, metadata },
      headers: { 'idempotency-key': `demo-${randomUUID()}` },
      attemptTimeoutMs: BEGIN_TIMEOUT_MS,
      deadlineMs: Date.now() + 10_000,
    });
    if (begun.status !== 201) throw coordinatorError('begin', begun.status, errorMessage(begun));
    const { id: txId, deadline } = begun.body as { id: string; deadline: number };

    const refused = (await Promise.all([...work].map(([bank, w]) => this.giveWork(bank, txId, w)))).find((r) => r !== undefined);
    if (refused !== undefined) return this.abort(txId, refused, started);

    const committed = await this.pool.call('POST', `/v1/transactions/${txId}/commit`, {
      body: {},
      // The coordinator answers by the deadline (plus its grace); a paused one must not hold us past that.
      attemptTimeoutMs: Math.max(3_000, deadline - Date.now() + 3_000),
      deadlineMs: deadline + 20_000,
    });
    if (committed.status !== 200) throw coordinatorError('commit', committed.status, errorMessage(committed), txId);
    return this.outcome(txId, committed.body, committed.coordinator, started);
  }

  /** Undefined once the bank holds its work durably; otherwise why not. */
  private async giveWork(bank: string, txId: string, work: JsonValue): Promise<string | undefined> {
    let why = '';
    for (let attempt = 1; attempt <= WORK_ATTEMPTS; attempt++) {
      const a = await fetchJson(`${this.bankUrl(bank)}/2pc/work`, { method: 'POST', body: { txId, work }, timeoutMs: WORK_TIMEOUT_MS });
      if (a.status === 200) return undefined;
      why = errorMessage(a);
      if (a.status !== 0 && a.status !== 503) break; // a 4xx will not change
      if (attempt < WORK_ATTEMPTS) await systemTimers.sleep(200);
    }
    return `${bank} did not take its work: ${why}`;
  }

  private async abort(txId: string, reason: string, started: number): Promise<TxOutcome> {
    const a = await this.pool.call('POST', `/v1/transactions/${txId}/abort`, { body: { reason: reason.slice(0, 500) }, attemptTimeoutMs: 3_000, deadlineMs: Date.now() + 10_000 });
    // A bank whose work request timed out may still have logged it and voted yes: only a recorded outcome counts.
    if (a.status !== 200 && a.status !== 409) throw coordinatorError('abort', a.status, errorMessage(a), txId);
    if (a.status === 409) return { txId, outcome: 'committed', coordinator: a.coordinator, elapsedMs: Date.now() - started };
    return { ...this.outcome(txId, a.body, a.coordinator, started), reason };
  }

  private outcome(txId: string, body: unknown, coordinator: string, started: number): TxOutcome {
    const b = body as { outcome: 'committed' | 'aborted'; votes?: Record<string, string | null>; reason?: string };
    return {
      txId,
      outcome: b.outcome,
      ...(b.reason === undefined ? {} : { reason: b.reason }),
      ...(b.votes === undefined ? {} : { votes: b.votes }),
      coordinator,
      elapsedMs: Date.now() - started,
    };
  }

  private bankUrl(name: string): string {
    const url = this.banks.get(name);
    if (url === undefined) throw new AppError('unknown_bank', 400, `no bank named ${name}`);
    return url;
  }
}

/** No coordinator could do it: 503 when none answered, 504 when the outcome is unknown, 502 for an unexpected answer. */
function coordinatorError(step: string, status: number, message: string, txId?: string): AppError {
  const details = txId === undefined ? {} : { txId };
  if (status === 0 || status === 503) return new AppError('coordinators_unavailable', 503, `${step}: no coordinator could take the call (${message})`, { ...details, retryAfterSeconds: 1 });
  if (status === 504 || status === 502) return new AppError('outcome_unknown', 504, `${step}: no coordinator gave the outcome in time (${message}); GET the transaction later`, details);
  return new AppError('coordinator_error', 502, `${step}: a coordinator answered ${message}`, details);
}
