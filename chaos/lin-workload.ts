/**
 * A register workload on a few store keys, from several clients, recorded as
 * a history (docs/HISTORY_FORMAT.md) and checked for linearizability at the
 * end (test/lincheck). It runs through the same faults as the 2PC load.
 *
 * Keys rotate every EPOCH_MS (chaos/lin/e{epoch}/k{i}): each key's history
 * stays short, so operations left "unknown" by a fault (pending forever, as
 * the checker must assume) do not pile up into an exponential search. The
 * check is per key anyway, so nothing is lost.
 *
 * Every error that is not a 4xx is "unknown": the client retried with one
 * Request-Id, and an earlier attempt may have been applied.
 */
import { randomBytes } from 'node:crypto';
import { keepAliveTimers } from '../lib/timers.js';
import { SeededRandom } from '../lib/random.js';
import { BuiltinTxStore, TxStoreError, type TxStore } from '../coordinator/txstore/index.js';
import { openTxStore, parseStoreSpec } from '../coordinator/txstore/index.js';
import { StoreClient } from '../store/client/index.js';
import { HistoryRecorder, type OperationSpec } from '../test/lincheck/index.js';

export const LIN_PREFIX = 'chaos/lin/';
const EPOCH_MS = 20_000;
const KEYS_PER_EPOCH = 3;
const THINK_MS = [5, 30] as const;
const MAX_ITERATIONS = 10_000_000;

export interface LinWorkloadOptions {
  readonly storeSpec: string;
  readonly clients: number;
  readonly seed: number;
  readonly runTag: string;
  readonly recorder: HistoryRecorder;
  /** Milliseconds since the run started. */
  readonly now: () => number;
  readonly signal: AbortSignal;
  /** The store user (secure mode: the runner's root); none without auth. */
  readonly credentials?: { readonly user?: string; readonly password?: string };
}

export async function runLinWorkload(o: LinWorkloadOptions): Promise<void> {
  const spec = parseStoreSpec(o.storeSpec);
  const closers: (() => Promise<void>)[] = [];
  const stores: TxStore[] = [];
  for (let i = 0; i < o.clients; i++) {
    if (spec.kind === 'builtin') {
      // Short timeouts: an operation cut by a fault becomes "unknown" quickly and the client moves on.
      const endpoints = spec.endpoints.map((_, k) => spec.endpoints[(k + i) % spec.endpoints.length] as string);
      stores.push(new BuiltinTxStore(new StoreClient({ endpoints, requestTimeoutMs: 1_000, deadlineMs: 3_000, maxAttempts: 30, clientId: `chaos-lin-${o.runTag}-${i}-${randomBytes(3).toString('hex')}`, ...o.credentials })));
    } else {
      const opened = await openTxStore(spec, `chaos-lin-${i}`);
      stores.push(opened.store);
      closers.push(() => opened.close());
    }
  }
  try {
    await Promise.all(stores.map((s, i) => clientLoop(o, s, i)));
  } finally {
    for (const close of closers) await close().catch(() => {});
  }
}

function keyAt(o: LinWorkloadOptions, rnd: SeededRandom): string {
  const epoch = Math.floor(o.now() / EPOCH_MS);
  return `${LIN_PREFIX}${o.runTag}/e${epoch}/k${rnd.int(KEYS_PER_EPOCH)}`;
}

function nextOp(rnd: SeededRandom, key: string, value: string, known: string | null | undefined): OperationSpec {
  const roll = rnd.int(100);
  if (roll < 40) return { op: 'get', key };
  if (roll < 65) return { op: 'set', key, value };
  if (roll < 90) {
    // Mostly the value last seen, so CAS often succeeds; sometimes "absent" or a stale guess.
    const expected = rnd.chance(0.2) ? null : known !== undefined && rnd.chance(0.8) ? known : `v${rnd.int(1_000)}`;
    return { op: 'cas', key, expected, value };
  }
  return { op: 'delete', key };
}

async function clientLoop(o: LinWorkloadOptions, store: TxStore, index: number): Promise<void> {
  const rnd = new SeededRandom((o.seed * 31 + index + 17) >>> 0);
  const known = new Map<string, string | null>();
  const name = `lin${index}`;
  for (let n = 0; n < MAX_ITERATIONS && !o.signal.aborted; n++) {
    const key = keyAt(o, rnd);
    const spec = nextOp(rnd, key, `c${index}-${n}`, known.get(key));
    const h = o.recorder.begin(name, spec);
    try {
      switch (spec.op) {
        case 'get': {
          const kv = await store.get(spec.key);
          o.recorder.ok(h, { value: kv?.value ?? null });
          known.set(spec.key, kv?.value ?? null);
          break;
        }
        case 'set': {
          const r = await store.put(spec.key, spec.value);
          o.recorder.ok(h, { previous: r.previous });
          known.set(spec.key, spec.value);
          break;
        }
        case 'cas': {
          const r = spec.expected === null ? await store.casCreate(spec.key, spec.value) : await store.casValue(spec.key, spec.expected, spec.value);
          o.recorder.ok(h, { succeeded: r.succeeded, previous: r.previous });
          known.set(spec.key, r.succeeded ? spec.value : r.previous);
          break;
        }
        case 'delete': {
          const r = await store.delete(spec.key);
          o.recorder.ok(h, { deleted: r.deleted, previous: r.previous });
          known.set(spec.key, null);
          break;
        }
      }
    } catch (e) {
      const definite = e instanceof TxStoreError && e.status >= 400 && e.status < 500;
      const note = e instanceof TxStoreError ? `${e.status} ${e.code}` : String(e).slice(0, 200);
      if (definite) o.recorder.fail(h, note);
      else o.recorder.unknown(h, note);
    }
    await keepAliveTimers.sleep(THINK_MS[0] + rnd.int(THINK_MS[1] - THINK_MS[0]), o.signal);
  }
}
