/**
 * The end-of-run checks, once everything is healed and quiet. Each one
 * turns what the run recorded into violations (docs/API.md,
 * "Invariants"):
 *
 * - audits: every audit that committed saw the opening total;
 * - no-negative-balance: no balance below zero, in any read;
 * - durability: an outcome a client was told is the outcome the store holds;
 * - atomicity: a committed transfer is applied at each of its banks, an
 *   aborted one at none (the banks' logs, as polled during the run);
 * - conservation: every final balance is the opening balance plus exactly
 *   the committed transfers' moves (this catches a transfer applied at one
 *   bank only even when its log record was gone before a poll saw it);
 * - in-doubt: nothing left undecided in the store or prepared at a bank;
 * - linearizability: the register history on the store's keys.
 *
 * Stable decisions (votes never change, decisions follow the votes) are
 * checked as they happen (tx-watch.ts) and again on the final store scan
 * (store-scan.ts); liveness (processes come back) by the nemesis; crash
 * (a process that exits without being killed) by the runner.
 */
import type { CheckResult } from '../test/lincheck/index.js';
import type { BankObserver, BankSummary } from './bank-observer.js';
import type { RunRecord, Violation } from './record.js';
import type { StoreScan } from './store-scan.js';

export const CHECK_NAMES = ['audits', 'no-negative-balance', 'durability', 'atomicity', 'conservation', 'in-doubt', 'stable-decisions', 'linearizability', 'liveness', 'crash'] as const;

export interface CheckInputs {
  readonly record: RunRecord;
  /** Opening balances: bank -> account -> amount. */
  readonly opening: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Final balances per bank; undefined for a bank that did not answer. */
  readonly finalBalances: ReadonlyMap<string, ReadonlyMap<string, number> | undefined>;
  readonly bankSummaries: ReadonlyMap<string, BankSummary | undefined>;
  /** Transactions the coordinators list as in doubt at the end; null when no coordinator answered. */
  readonly coordinatorInDoubt: number | null;
  readonly scan: StoreScan;
  readonly observer: BankObserver;
  readonly lin: CheckResult;
  readonly linFile: string;
}

export interface CheckOutcome {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface CheckReport {
  readonly checks: CheckOutcome[];
  readonly inDoubt: number;
  /** Final outcomes of the client's transfers, from the store. */
  readonly outcomes: { readonly committed: number; readonly aborted: number; readonly notBegun: number; readonly open: number };
  readonly atomicity: { readonly verified: number; readonly unverified: number };
}

type Flag = (v: Violation) => void;
type Outcomes = { committed: number; aborted: number; notBegun: number; open: number };

export function runChecks(i: CheckInputs): CheckReport {
  const flag: Flag = (v) => i.record.violation(v);
  const details = new Map<string, string>();
  const expectedTotal = sumAll(i.opening);
  details.set('audits', checkAudits(i, flag, expectedTotal));
  details.set('durability', checkDurability(i, flag));
  const atomicity = checkAtomicity(i, flag);
  details.set('atomicity', atomicity.detail);
  details.set('conservation', checkConservation(i, flag, expectedTotal, atomicity.outcomes.committed));
  const inDoubt = checkInDoubt(i, flag, atomicity.outcomes.open);
  details.set('in-doubt', inDoubt.detail);
  details.set('linearizability', checkLinearizability(i, flag));
  const checks = CHECK_NAMES.map((name) => {
    const n = i.record.violations.filter((v) => v.check === name).length;
    return { name, ok: n === 0, detail: `${n === 0 ? 'ok' : `${n} violation(s)`}${details.has(name) ? `; ${details.get(name) as string}` : ''}` };
  });
  return { checks, inDoubt: inDoubt.count, outcomes: atomicity.outcomes, atomicity: { verified: atomicity.verified, unverified: atomicity.unverified } };
}

/** Every audit that committed saw the opening total, and no negative balance. */
function checkAudits(i: CheckInputs, flag: Flag, expectedTotal: number): string {
  let auditsChecked = 0;
  for (const a of i.record.audits) {
    if (a.total === null || a.reads === null) continue;
    auditsChecked++;
    if (a.total !== expectedTotal) flag({ check: 'audits', message: `audit ${a.txId} at ${(a.startMs / 1000).toFixed(1)} s saw a total of ${a.total}, not ${expectedTotal} (${a.reads.map((r) => `${r.bank}=${r.total}`).join(' ')})`, txId: a.txId });
    for (const r of a.reads) for (const acc of r.accounts) if (acc.balance < 0) flag({ check: 'no-negative-balance', message: `audit ${a.txId} read ${r.bank}/${acc.id} = ${acc.balance}`, txId: a.txId });
  }
  return `${auditsChecked} complete audits, each expected ${expectedTotal}`;
}

/** What clients were told is what the store holds. */
function checkDurability(i: CheckInputs, flag: Flag): string {
  let told = 0;
  for (const t of [...i.record.transfers, ...i.record.audits]) {
    if (t.outcome === 'unknown') continue;
    told++;
    const stored = i.scan.txs.get(t.txId)?.outcome ?? 'absent';
    if (stored !== t.outcome) flag({ check: 'durability', message: `${t.txId}: the client was told ${t.outcome}, the store holds ${stored}`, txId: t.txId });
  }
  return `${told} outcomes told to clients compared with the store`;
}

/** Per bank, from the banks' own logs; also counts the transfers' final outcomes in the store. */
function checkAtomicity(i: CheckInputs, flag: Flag): { detail: string; outcomes: Outcomes; verified: number; unverified: number } {
  let verified = 0;
  let unverified = 0;
  const outcomes = { committed: 0, aborted: 0, notBegun: 0, open: 0 };
  for (const t of i.record.transfers) {
    const stored = i.scan.txs.get(t.txId)?.outcome;
    if (stored === undefined) outcomes.notBegun++;
    else if (stored === 'open') outcomes.open++;
    else outcomes[stored]++;
    for (const bank of new Set([t.from.bank, t.to.bank])) {
      const phase = i.observer.phaseAt(bank, t.txId);
      const applied = phase === 'committed';
      const released = phase === 'aborted' || phase === 'refused';
      if (stored === 'committed' && applied) verified++;
      else if (stored === 'committed' && released) flag({ check: 'atomicity', message: `${t.txId} committed, but ${bank} ${phase} it`, txId: t.txId });
      else if (stored !== 'committed' && applied) flag({ check: 'atomicity', message: `${t.txId} is ${stored ?? 'not in the store'}, but ${bank} applied it`, txId: t.txId });
      else if (stored !== 'committed') verified++; // not applied, as far as the bank's log shows
      else unverified++;
    }
  }
  const detail = `${verified} (transfer, bank) pairs confirmed in the banks' logs, ${unverified} not seen there (covered by conservation)`;
  return { detail, outcomes, verified, unverified };
}

/** Final balances are the opening ones plus the committed moves. */
function checkConservation(i: CheckInputs, flag: Flag, expectedTotal: number, committed: number): string {
  const expected = new Map([...i.opening].map(([b, accts]) => [b, new Map(accts)]));
  for (const t of i.record.transfers) {
    if (i.scan.txs.get(t.txId)?.outcome !== 'committed') continue;
    move(expected, t.from.bank, t.from.account, -t.amount);
    move(expected, t.to.bank, t.to.account, t.amount);
  }
  let finalTotal = 0;
  for (const [bank, accts] of expected) {
    const actual = i.finalBalances.get(bank);
    if (actual === undefined) {
      flag({ check: 'conservation', message: `${bank} did not answer for its final balances` });
      continue;
    }
    for (const [acct, want] of accts) {
      const got = actual.get(acct);
      finalTotal += got ?? 0;
      if (got !== want) flag({ check: 'conservation', message: `${bank}/${acct} ends at ${got ?? 'missing'}, but opening balance plus committed transfers gives ${want}` });
      if (got !== undefined && got < 0) flag({ check: 'no-negative-balance', message: `${bank}/${acct} ends at ${got}` });
    }
  }
  if (finalTotal !== expectedTotal) flag({ check: 'conservation', message: `final total ${finalTotal}, opening total ${expectedTotal}` });
  return `final total ${finalTotal} of ${expectedTotal}; every account checked against ${committed} committed transfers`;
}

/** Nothing undecided in the store, prepared at a bank, or listed in doubt by a coordinator. */
function checkInDoubt(i: CheckInputs, flag: Flag, openTransfers: number): { detail: string; count: number } {
  let inDoubt = openTransfers;
  const openInStore = [...i.scan.txs.values()].filter((t) => t.outcome === 'open');
  if (openInStore.length > 0) flag({ check: 'in-doubt', message: `${openInStore.length} transaction(s) undecided in the store at the end, e.g. ${openInStore.slice(0, 5).map((t) => t.id).join(', ')}` });
  inDoubt = Math.max(inDoubt, openInStore.length);
  for (const [bank, s] of i.bankSummaries) {
    if (s === undefined) {
      flag({ check: 'in-doubt', message: `${bank} did not answer for its summary at the end` });
      continue;
    }
    if (s.inDoubt > 0 || s.holds > 0 || s.readLocks > 0) flag({ check: 'in-doubt', message: `${bank} still has ${s.inDoubt} prepared transaction(s), ${s.holds} hold(s), ${s.readLocks} read lock(s)` });
    inDoubt += s.inDoubt;
  }
  if (i.coordinatorInDoubt === null) flag({ check: 'in-doubt', message: 'no coordinator answered the in-doubt listing at the end' });
  else if (i.coordinatorInDoubt > 0) flag({ check: 'in-doubt', message: `the coordinators list ${i.coordinatorInDoubt} transaction(s) in doubt at the end` });
  const detail = `${openInStore.length} open in the store, coordinators list ${i.coordinatorInDoubt ?? '?'} in doubt, banks hold ${[...i.bankSummaries.values()].reduce((s, b) => s + (b?.inDoubt ?? 0), 0)} prepared`;
  return { detail, count: inDoubt };
}

/** The register history on the store's keys. */
function checkLinearizability(i: CheckInputs, flag: Flag): string {
  if (i.lin.result === 'illegal') flag({ check: 'linearizability', message: `${i.lin.counterexample?.message ?? 'not linearizable'} (history: ${i.linFile})` });
  const keys = i.lin.perKey.length;
  return `${i.lin.result}: ${i.lin.operations} operations on ${keys} keys, checked in ${i.lin.elapsedMs.toFixed(0)} ms${i.lin.limit === undefined ? '' : ` (budget ${i.lin.limit} ran out: not a violation, but not a proof)`}`;
}

function move(m: Map<string, Map<string, number>>, bank: string, account: string, delta: number): void {
  const accts = m.get(bank);
  if (accts === undefined) return;
  accts.set(account, (accts.get(account) ?? 0) + delta);
}

function sumAll(m: ReadonlyMap<string, ReadonlyMap<string, number>>): number {
  let s = 0;
  for (const accts of m.values()) for (const v of accts.values()) s += v;
  return s;
}
