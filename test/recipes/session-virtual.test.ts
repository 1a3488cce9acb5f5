// Goal: the session's loss detection on virtual time, exactly: renewed every
// TTL/3, it stays alive as long as keepalives are answered; when they stop
// being answered it is lost exactly one TTL after the last answered
// keepalive was SENT (not when it was answered, not sooner); one keepalive
// that never answers does not hold back the next; a store that says the
// lease is gone makes it lost at once. Also the pure checkers of
// the fault tests, on histories with known violations.
import { describe, expect, it } from 'vitest';
import { MemoryTxStore, TxStoreError, type TxStore } from '../../coordinator/txstore/index.js';
import { Mutex, Session } from '../../recipes/index.js';
import { VirtualTimers } from '../support/virtual-timers.js';
import { checkFencing } from './fencing-check.js';
import { checkExactlyOnce } from './exactly-once.js';
import { checkElection } from './election-run.js';

type KeepAliveMode = 'ok' | 'hang' | 'hang-once' | 'gone';

/** A memory store whose keepalives can be made to hang (a partition) or answer lease_not_found. */
function storeWith(timers: VirtualTimers): { store: TxStore; mode: { value: KeepAliveMode } } {
  const inner = new MemoryTxStore({ clock: timers });
  const mode = { value: 'ok' as KeepAliveMode };
  const store = Object.create(inner) as TxStore;
  store.keepAlive = (id) => {
    if (mode.value === 'hang') return new Promise(() => {});
    if (mode.value === 'hang-once') {
      mode.value = 'ok';
      return new Promise(() => {});
    }
    if (mode.value === 'gone') return Promise.reject(new TxStoreError('lease_not_found', 404, `no lease ${id}`));
    return inner.keepAlive(id);
  };
  return { store, mode };
}

describe('Session on virtual time', () => {
  it('stays alive while keepalives are answered', async () => {
    const timers = new VirtualTimers();
    const { store } = storeWith(timers);
    const s = await Session.open({ store, ttlMs: 900, timers });
    const hold = await new Mutex(s, 'v-alive').lock();
    await timers.advance(9_000);
    expect(s.isLost).toBe(false);
    expect(hold.held).toBe(true);
    expect((await hold.fencedPut('v-alive-k', 'x')).succeeded).toBe(true);
  });

  it('is lost one TTL after the last answered keepalive was sent, not sooner', async () => {
    const timers = new VirtualTimers();
    const { store, mode } = storeWith(timers);
    const s = await Session.open({ store, ttlMs: 900, timers });
    await timers.advance(300); // keepalive sent at 300, answered at once: safe until 1200
    mode.value = 'hang';
    await timers.advance(1_200 - 300 - 1);
    expect(s.isLost).toBe(false);
    await timers.advance(1);
    expect(s.isLost).toBe(true);
    expect((await s.lost).code).toBe('session_lost');
  });

  it('a keepalive that never answers (sent to a frozen member) does not hold back the next one', async () => {
    const timers = new VirtualTimers();
    const { store, mode } = storeWith(timers);
    const s = await Session.open({ store, ttlMs: 900, timers });
    mode.value = 'hang-once';
    await timers.advance(300); // this keepalive hangs for good; the one at 600 is answered
    expect(mode.value).toBe('ok');
    await timers.advance(9_000);
    expect(s.isLost).toBe(false);
  });

  it('is lost at once when the store says the lease is gone', async () => {
    const timers = new VirtualTimers();
    const { store, mode } = storeWith(timers);
    const s = await Session.open({ store, ttlMs: 900, timers });
    const hold = await new Mutex(s, 'v-gone').lock();
    mode.value = 'gone';
    await timers.advance(300);
    expect(s.isLost).toBe(true);
    expect(hold.held).toBe(false);
  });
});

describe('fault-test checkers catch what they look for', () => {
  it('fencing: a stale write that drops entries, a token going back, a lost acknowledged write', () => {
    const history = [['5.a.0'], ['5.a.0', '5.a.1'], ['5.a.0', '4.b.0']];
    const r = checkFencing(history, [
      { entry: '5.a.1', token: 5, ok: true },
      { entry: '4.b.0', token: 4, ok: false },
    ]);
    expect(r.violations.some((v) => v.includes('not an append'))).toBe(true);
    expect(r.violations.some((v) => v.includes('token went back'))).toBe(true);
    expect(r.violations.some((v) => v.includes('5.a.1 is missing'))).toBe(true);
    expect(r.violations.some((v) => v.includes('refused write 4.b.0'))).toBe(true);
    expect(checkFencing([['1.a.0'], ['1.a.0', '2.b.0']], [{ entry: '2.b.0', token: 2, ok: true }]).violations).toEqual([]);
  });

  it('exactly once: duplicates, losses and a wrong counter', () => {
    const run = { put: ['a', 'b'], maybe: [], taken: ['a', 'a'], increments: { acked: 3, unknown: 0 }, errors: [] };
    expect(checkExactlyOnce(run, 2)).toEqual(['a taken 2 times', 'b was put but never taken', 'counter is 2, acknowledged 3 (+0 unknown)']);
  });

  it('election: leaders out of order and a missed leader', () => {
    expect(checkElection({ won: [3, 5, 7], observed: [[3, 7, 5]], refusedFencedWrites: 0, errors: [] })).toEqual(['observer 0: leader 5 after 7']);
    expect(checkElection({ won: [3, 5, 7], observed: [[3, 7]], refusedFencedWrites: 0, errors: [] })).toEqual(['observer 0 missed leader 5']);
  });
});
