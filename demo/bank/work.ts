/**
 * What a bank is asked to do in one transaction (the participant "work"),
 * shared by the transfer app that writes it and the bank that reads it:
 *
 *   {"type": "transfer", "ops": [{"account": "alice", "delta": -10}]}   debit alice 10
 *   {"type": "transfer", "ops": [{"account": "bob", "delta": 10}]}      credit bob 10
 *   {"type": "audit"}                                                    read-lock and read every account
 *
 * A transfer inside one bank is one work with both ops. Amounts are whole
 * units (integers), so sums are exact.
 */
import type { JsonValue } from '../../coordinator/protocol/index.js';

export interface TransferOp {
  readonly account: string;
  /** Negative: a debit; positive: a credit; never 0. */
  readonly delta: number;
}

export type BankWork = { readonly type: 'transfer'; readonly ops: readonly TransferOp[] } | { readonly type: 'audit' };

/** Largest amount of one op, and largest balance an account may reach. */
export const MAX_AMOUNT = 1_000_000_000;
export const MAX_BALANCE = 1_000_000_000_000;
/** Ops in one transfer work. */
export const MAX_OPS = 16;

const ACCOUNT_ID = /^[a-z][a-z0-9_-]{0,31}$/;
const BANK_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export function isAccountId(s: string): boolean {
  return ACCOUNT_ID.test(s);
}

/** Bank names are participant names too, so they stay within the protocol's alphabet. */
export function isBankName(s: string): boolean {
  return BANK_NAME.test(s);
}

export function isAmount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= MAX_AMOUNT;
}

/** Parses work as received; a string is the reason it is not valid (the bank then votes "no"). */
export function parseBankWork(work: JsonValue): BankWork | string {
  const o = work as { type?: unknown; ops?: unknown } | null;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'work must be an object';
  if (o.type === 'audit') return Object.keys(o).length === 1 ? { type: 'audit' } : 'audit work takes no other field';
  if (o.type !== 'transfer') return 'work.type must be "transfer" or "audit"';
  if (!Array.isArray(o.ops) || o.ops.length === 0 || o.ops.length > MAX_OPS) return `work.ops must hold 1 to ${MAX_OPS} ops`;
  const ops: TransferOp[] = [];
  for (const raw of o.ops as unknown[]) {
    const op = raw as { account?: unknown; delta?: unknown } | null;
    if (typeof op?.account !== 'string' || !isAccountId(op.account)) return 'each op needs an account id';
    const delta = op.delta;
    if (typeof delta !== 'number' || !isAmount(Math.abs(delta))) return `delta of ${op.account} must be a non-zero integer of at most ${MAX_AMOUNT} units`;
    ops.push({ account: op.account, delta });
  }
  return { type: 'transfer', ops };
}

export function transferWork(ops: readonly TransferOp[]): JsonValue {
  return { type: 'transfer', ops: ops.map((op) => ({ account: op.account, delta: op.delta })) };
}

export const AUDIT_WORK: JsonValue = { type: 'audit' };
