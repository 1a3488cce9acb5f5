/**
 * One client process of the fencing test (fencing.test.ts): until its
 * stdin closes (or its deadline, a backstop), it takes the lock, appends to
 * the shared register with fenced writes (read the list, think, write list +
 * entry), and releases. It prints one JSON line per event on stdout for the
 * checker; it opens a new session whenever the old one is lost.
 *
 *   node --import tsx test/recipes/fencing-worker.ts '{"worker":"w1","endpoints":[...],"lock":"L","register":"K","durationMs":20000,"ttlMs":1500,"seed":7}'
 */
import { BuiltinTxStore, openTxStore, parseStoreSpec, type OpenedStore } from '../../coordinator/txstore/index.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { SeededRandom } from '../../lib/random.js';
import { StoreClient } from '../../store/client/index.js';
import { isRecipeError, Mutex, Session, type Hold } from '../../recipes/index.js';

interface WorkerArgs {
  readonly worker: string;
  /** The built-in store's members, or `store`: a --store value (etcd://...). */
  readonly endpoints?: string[];
  readonly store?: string;
  readonly lock: string;
  readonly register: string;
  readonly durationMs: number;
  readonly ttlMs: number;
  readonly seed: number;
  readonly unfenced?: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
const random = new SeededRandom(args.seed);
const timers = keepAliveTimers;
const opened: OpenedStore =
  args.store === undefined
    ? (() => {
        const client = new StoreClient({ endpoints: args.endpoints ?? [], requestTimeoutMs: 1_000, deadlineMs: 6_000, timers, random });
        return { store: new BuiltinTxStore(client), spec: { kind: 'builtin', endpoints: args.endpoints ?? [] }, close: async () => client.close() };
      })()
    : await openTxStore(parseStoreSpec(args.store), `fencing-${args.worker}`);
const store = opened.store;
const MAX_ROUNDS = 10_000;
const APPENDS_PER_HOLD = 2;

function emit(e: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ w: args.worker, ...e })}\n`);
}

function message(e: unknown): string {
  return e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e);
}

/** Appends one entry under the fence; what the store answered is the event. */
async function append(hold: Hold, seq: number): Promise<boolean> {
  const entry = `${hold.token}.${args.worker}.${seq}`;
  try {
    const kv = await store.get(args.register);
    const list = kv === null ? [] : (JSON.parse(kv.value) as string[]);
    await timers.sleep(20 + random.int(150));
    // `unfenced` is a mutation for checking the checker by hand: a plain put, as a lock without fencing would do.
    const value = JSON.stringify([...list, entry]);
    const r = args.unfenced === true ? { succeeded: (await store.put(args.register, value), true) } : await hold.fencedPut(args.register, value);
    emit({ e: 'write', token: hold.token, entry, ok: r.succeeded });
    return r.succeeded;
  } catch (e) {
    emit({ e: 'write', token: hold.token, entry, ok: 'unknown', msg: message(e) });
    return false;
  }
}

// The test ends the run by closing stdin, once the faults are over and the lock has had a quiet spell.
let stopped = false;
process.stdin.on('end', () => (stopped = true)).resume();

async function main(): Promise<void> {
  const deadline = Date.now() + args.durationMs;
  let session: Session | undefined;
  let seq = 0;
  for (let round = 0; round < MAX_ROUNDS && !stopped && Date.now() < deadline; round++) {
    try {
      if (session === undefined || session.isLost) {
        await session?.close();
        session = await Session.open({ store, ttlMs: args.ttlMs, timers, random });
      }
      const hold = await new Mutex(session, args.lock).lock({ timeoutMs: 4_000 });
      emit({ e: 'acq', token: hold.token });
      for (let i = 0; i < APPENDS_PER_HOLD; i++) if (!(await append(hold, seq++))) break;
      await hold.release();
      emit({ e: 'rel', token: hold.token });
    } catch (e) {
      emit({ e: 'err', msg: message(e), lost: isRecipeError(e, 'session_lost') });
      await timers.sleep(50);
    }
  }
  await session?.close();
  await opened.close();
  emit({ e: 'done' });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    emit({ e: 'fatal', msg: message(e) });
    process.exit(1);
  },
);
