/**
 * The load: `clients` loops of random transfers between random accounts
 * (same bank or not, amounts that sometimes exceed what is available, so
 * some transfers abort on their own), and one loop of audits. With a rate,
 * the transfer loops share a pacer (pacer.ts): starts are spaced 1/rate
 * apart across the clients, a sustained load rather than flat out. Each loop is
 * sequential and stops when the signal aborts or after a fixed number of
 * iterations; each call inside is bounded by the client's timeouts.
 */
import { keepAliveTimers } from '../lib/timers.js';
import { SeededRandom } from '../lib/random.js';
import { BankClient, type AccountRef } from './bank-client.js';
import { pacerFor, type Pacer } from './pacer.js';
import type { RunRecord } from './record.js';

export interface WorkloadOptions {
  readonly client: BankClient;
  readonly record: RunRecord;
  readonly seed: number;
  /** Names idempotency keys, so two runs never share a transaction id. */
  readonly runTag: string;
  readonly clients: number;
  /** Transfers started per second across the clients; undefined: each client as fast as it goes. */
  readonly rate?: number | undefined;
  readonly coordinators: number;
  readonly accounts: readonly AccountRef[];
  readonly auditEveryMs: number;
  readonly signal: AbortSignal;
}

const MAX_AMOUNT = 300;
/** A bound on each loop, far above what any run reaches. */
const MAX_ITERATIONS = 10_000_000;

export async function runWorkload(o: WorkloadOptions): Promise<void> {
  let next = 0;
  const pacer = pacerFor(o.rate);
  const transfers = Array.from({ length: o.clients }, (_, i) => transferLoop(o, new SeededRandom((o.seed * 7919 + i + 1) >>> 0), () => next++, pacer));
  await Promise.all([...transfers, auditLoop(o, new SeededRandom((o.seed * 7919 + 104_729) >>> 0))]);
}

async function transferLoop(o: WorkloadOptions, rnd: SeededRandom, nextN: () => number, pacer: Pacer | undefined): Promise<void> {
  for (let i = 0; i < MAX_ITERATIONS && !o.signal.aborted; i++) {
    await pacer?.next(o.signal);
    if (o.signal.aborted) return;
    const n = nextN();
    const from = rnd.pick(o.accounts);
    let to = rnd.pick(o.accounts);
    for (let k = 0; k < 8 && to === from; k++) to = rnd.pick(o.accounts);
    if (to === from) continue;
    const amount = 1 + rnd.int(MAX_AMOUNT);
    const startMs = o.record.now();
    const r = await o.client.transfer(`chaos-${o.runTag}-t${n}`, from, to, amount, rnd.int(o.coordinators));
    o.record.transfers.push({ n, txId: r.txId, from, to, amount, startMs, endMs: o.record.now(), outcome: r.outcome, commitMs: r.commitMs, ...(r.note === undefined ? {} : { note: r.note }) });
  }
}

async function auditLoop(o: WorkloadOptions, rnd: SeededRandom): Promise<void> {
  for (let n = 0; n < MAX_ITERATIONS && !o.signal.aborted; n++) {
    // Jittered to 50%..150% of the mean, so audits do not beat in step with faults.
    await keepAliveTimers.sleep(o.auditEveryMs * (0.5 + rnd.float()), o.signal);
    if (o.signal.aborted) return;
    const startMs = o.record.now();
    const r = await o.client.audit(`chaos-${o.runTag}-a${n}`, rnd.int(o.coordinators));
    const total = r.reads === null ? null : r.reads.reduce((s, b) => s + b.total, 0);
    o.record.audits.push({ n, txId: r.txId, startMs, endMs: o.record.now(), outcome: r.outcome, total, reads: r.reads });
  }
}
