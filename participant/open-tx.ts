/**
 * One transaction open at this participant (received, prepared, or decided
 * and not yet acknowledged): its pure machine, the requests waiting for its
 * answers, its timer. And the table the node keeps of them, as the helpers
 * that perform effects and read the watch reach it.
 */
import type { Cancel } from '../lib/timers.js';
import type { ParticipantEvent, ParticipantReply, ParticipantTxMachine } from './machine.js';

export interface Waiter {
  readonly resolve: (r: ParticipantReply) => void;
  readonly reject: (e: unknown) => void;
  /** Cancels the request's timeout. */
  readonly cancelTimeout: Cancel;
}

export class OpenTx {
  readonly waiters = new Map<string, Waiter>();
  /** Cancels the deadline (or help-again) timer, when one is set. */
  cancelTimer: Cancel | undefined;
  /** Cancels the check that work without a vote still has a transaction in the store (config `workCheckMs`). */
  cancelWorkCheck: Cancel | undefined;
  /** Resolves once the service has taken back this transaction's locks (recovery). */
  restoring: Promise<void> = Promise.resolve();
  gone = false;
  constructor(
    readonly id: string,
    readonly machine: ParticipantTxMachine,
  ) {}
}

/** How the effect runner and the watch reach the node's open transactions. */
export interface OpenTxTable {
  get(txId: string): OpenTx | undefined;
  /** Opens a transaction, or undefined when too many are open (the deadline then fills our vote with "no"). */
  tryOpen(txId: string): OpenTx | undefined;
  values(): Iterable<OpenTx>;
  step(tx: OpenTx, event: ParticipantEvent): void;
  /** Closes the transaction; its waiters get `error` (or a 503). */
  unload(tx: OpenTx, error?: unknown): void;
  /** Keeps `p` until it settles, so stop() can wait for it. */
  track<T>(p: Promise<T>): Promise<T>;
  /** The participant cannot safely go on (a failed log write): it stops, and reports it. */
  fatal(e: unknown): void;
  /** Aborts when the node stops. */
  readonly stopSignal: AbortSignal;
}
