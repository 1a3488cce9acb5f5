// Goal: a state machine on LMDB records, with every batch, the whole state
// besides the keys (revision, clock, leases and their keys, sessions in use
// order, watch history with its trimming, alarms, host entries), so
// KvStateMachine.reopen on the same directory, after the environment is
// closed, is exactly the machine that wrote it: the same snapshot() to the
// byte, and the same answer to every later command. Seeded random commands
// with small history and session limits, so trimming, eviction and expiry
// all happen; the seed is in every assertion message.
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { KvStateMachine, type KvCommand, type KvConfig } from '../../store/kv/index.js';
import { generator } from '../kv/commands.js';
import { closeTempStore, openTempStore, tempDir } from './lmdb-temp.js';

const CONFIG: Partial<KvConfig> = { watchHistoryEvents: 40, watchHistoryBytes: 600, maxSessions: 3, sessionIdleMs: 30 };
const CLIENTS = ['c1', 'c2', 'c3', 'c4', 'c5'];

/** Commands with sessions (some retried, some stale) and a clock that moves, as in test/kv/model.test.ts. */
function commands(seed: number, count: number): KvCommand[] {
  const random = new SeededRandom(seed);
  const next = generator(random);
  const seqs = new Map<string, number>();
  const out: KvCommand[] = [];
  for (let step = 1; step <= count; step++) {
    let command = next();
    const clientId = random.pick(CLIENTS);
    if (command.type !== 'get' && command.type !== 'range' && random.chance(0.5)) {
      const seq = (seqs.get(clientId) ?? 0) + (random.chance(0.2) ? 0 : 1);
      seqs.set(clientId, Math.max(1, seq));
      command = { ...command, requestId: { clientId, seq: Math.max(1, seq) }, nowMs: step * 3 };
    }
    out.push(command);
  }
  return out;
}

describe('LMDB: reopening a state machine from its store', () => {
  for (const seed of [11, 22, 33, 44, 55]) {
    it(`seed ${seed}: reopened after every few batches, it is the machine that wrote it`, async () => {
      const dir = tempDir();
      let store = openTempStore(dir);
      let kv = new KvStateMachine(CONFIG, store);
      const twin = new KvStateMachine(CONFIG); // in memory: what the machine must stay equal to
      const all = commands(seed, 600);
      let index = 0;
      for (let batch = 0; index < all.length; batch++) {
        const size = 1 + (batch % 7);
        const slice = all.slice(index, index + size);
        kv.batch(() => slice.forEach((c, i) => kv.apply(c, index + i + 1)));
        slice.forEach((c, i) => twin.apply(c, index + i + 1));
        index += slice.length;
        if (batch % 10 === 9) {
          await closeTempStore(store);
          store = openTempStore(dir);
          const reopened = KvStateMachine.reopen(CONFIG, store);
          expect(reopened, `seed ${seed} batch ${batch}: a state was recorded`).toBeDefined();
          kv = reopened as KvStateMachine;
        }
        expect(kv.snapshot(), `seed ${seed} batch ${batch}: the same state as the in-memory twin`).toBe(twin.snapshot());
      }
      expect(kv.appliedIndex).toBe(all.length);
    });
  }

  it('a store that never recorded a state, or was cleared, reopens as nothing', async () => {
    const dir = tempDir();
    const store = openTempStore(dir);
    expect(KvStateMachine.reopen({}, store)).toBeUndefined();
    const kv = new KvStateMachine({}, store);
    kv.apply({ type: 'put', key: 'a', value: 'x' }, 1);
    expect(KvStateMachine.reopen({}, store)?.get('a')).toMatchObject({ ok: true, kv: { value: 'x' } });
    store.clear();
    expect(KvStateMachine.reopen({}, store)).toBeUndefined();
    await closeTempStore(store);
  });
});
