// Goal: the recovery sweep election's rules, in one process on virtual time
// over the memory model (the real-process failover is sweep-election.test.ts):
// exactly one of two coordinators sweeps and the other's passes do not run;
// a pass under way stops at its next step the moment the leader's session is
// lost (an abandoned transaction it had planned to adopt is left alone), and
// the other coordinator then leads with a larger token and adopts it; a
// stopped leader hands over; the option is validated; off, nothing changes.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { parseMetrics } from '../../lib/metrics.js';
import { SeededRandom } from '../../lib/random.js';
import { VirtualTimers } from '../support/virtual-timers.js';
import { encodeTxRecord, txKey } from '../../coordinator/protocol/kernel.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/config.js';
import type { HintSender } from '../../coordinator/runtime/hints.js';
import { CoordinatorService } from '../../coordinator/service/service.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';
import type { TxStore } from '../../coordinator/txstore/txstore.js';
import { currentLeader, electionPrefix } from '../../recipes/index.js';

const ELECTION = { name: 'sweep-direct', ttlMs: 1_000 };
const NO_HINTS: HintSender = { prepare: async () => ({ ok: false, error: 'no answer' }), decision: async () => ({ ok: false, error: 'no answer' }) };

function service(timers: VirtualTimers, store: TxStore, id: string, seed: number, withElection = true): CoordinatorService {
  const config = makeCoordinatorConfig({ id, recoveryIntervalMs: 100, ...(withElection ? { sweepElection: ELECTION } : {}) });
  return new CoordinatorService({ config, store, timers, random: new SeededRandom(seed), hints: NO_HINTS, failpoints: { hit: () => undefined }, log: silentLogger });
}

/** Moves virtual time in 10 ms steps until `cond` holds, at most `maxMs`. */
async function until(timers: VirtualTimers, what: string, cond: () => boolean, maxMs = 20_000): Promise<void> {
  for (let t = 0; t < maxMs && !cond(); t += 10) await timers.advance(10);
  expect(cond(), what).toBe(true);
}

/** `store` whose scans of `tx/` wait for `gate` while `armed`. */
function gatedScans(store: TxStore): { store: TxStore; armed: { on: boolean }; gate: { open: () => void; reached: boolean } } {
  const armed = { on: false };
  let release: () => void = () => undefined;
  const gate = { open: () => release(), reached: false };
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (prop !== 'range' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (armed.on && String(args[0]).startsWith('tx/')) {
          armed.on = false;
          gate.reached = true;
          await new Promise<void>((r) => (release = r));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, armed, gate };
}

async function abandon(store: TxStore, timers: VirtualTimers, id: string): Promise<void> {
  const now = timers.nowMs();
  await store.put(txKey(id), encodeTxRecord({ participants: [{ name: 'p1', url: 'http://p1' }], state: 'active', deadline: now - 1, createdAt: now - 1_000 }));
}

describe('the recovery sweep election, in process', () => {
  it('one sweeps, the other does not; a lost session stops a pass mid-way; the other takes over with a larger token', async () => {
    const timers = new VirtualTimers();
    const memory = new MemoryTxStore({ clock: timers });
    const a = gatedScans(memory);
    const sa = service(timers, a.store, 'ca', 1);
    await sa.start();
    await until(timers, 'ca leads', () => sa.recovery.election?.leading === true);
    const sb = service(timers, memory, 'cb', 2);
    await sb.start();
    await until(timers, 'cb is in line', () => sb.recovery.sweepStatus()?.state === 'campaigning');
    const tokenA = sa.recovery.sweepStatus()?.leader?.token ?? 0;
    expect(tokenA).toBeGreaterThan(0);

    const passesB = sb.recovery.passesRun;
    const passesA = sa.recovery.passesRun;
    await timers.advance(2_000);
    expect(sb.recovery.passesRun).toBe(passesB);
    expect(sa.recovery.passesRun).toBeGreaterThan(passesA + 5);
    expect(await sb.recovery.runOnce()).toMatchObject({ skipped: 'not_leader', scanned: 0 });
    await until(timers, 'cb sees ca lead', () => sb.recovery.sweepStatus()?.leader?.id === 'ca');
    expect(sb.recovery.sweepStatus()?.leader?.token).toBe(tokenA);
    const m = parseMetrics(await sa.metricsText());
    expect([m.get('twopc_sweep_leader'), m.get('twopc_sweep_leader_token'), m.get('twopc_sweep_elections_total')]).toEqual([1, tokenA, 1]);
    expect(parseMetrics(await sb.metricsText()).get('twopc_sweep_leader')).toBe(0);

    // ca's next scan blocks; meanwhile its lease goes, and its keepalive learns it.
    await abandon(memory, timers, 'abandoned-1');
    a.armed.on = true;
    await until(timers, 'a pass of ca is scanning', () => a.gate.reached);
    const passing = sa.recovery.runOnce();
    const leader = await currentLeader(memory, ELECTION.name);
    await memory.revokeLease((leader?.key ?? '').slice(electionPrefix(ELECTION.name).length).split('_')[0] as string);
    await until(timers, 'ca notices', () => sa.recovery.election?.leading === false);
    a.gate.open();
    expect(await passing).toMatchObject({ adopted: 0, skipped: 'leadership_lost' });
    expect(sa.runtime.isLive('abandoned-1')).toBe(false);

    await until(timers, 'cb leads', () => sb.recovery.election?.leading === true);
    expect(sb.recovery.sweepStatus()?.leader?.token).toBeGreaterThan(tokenA);
    await until(timers, 'cb adopts the abandoned transaction', () => sb.runtime.isLive('abandoned-1'));
    expect(sa.recovery.sweepStatus()).toMatchObject({ leading: false, losses: 1 });

    // A stopped leader revokes its lease: ca (in line again) leads at once.
    await until(timers, 'ca is in line again', () => sa.recovery.sweepStatus()?.state === 'campaigning');
    await sb.stop();
    await until(timers, 'ca leads again', () => sa.recovery.election?.leading === true, 500);
    await sa.stop();
    expect(sa.recovery.sweepStatus()?.state).toBe('stopped');
  });

  it('off by default: every coordinator sweeps, no sweep metrics; a bad option is refused', async () => {
    const timers = new VirtualTimers();
    const s = service(timers, new MemoryTxStore({ clock: timers }), 'c0', 3, false);
    expect(s.config.sweepElection).toBeNull();
    expect(s.recovery.sweepStatus()).toBeNull();
    expect((await s.metricsText()).includes('twopc_sweep_')).toBe(false);
    await s.start();
    expect((await s.recovery.runOnce()).skipped).toBeUndefined();
    await s.stop();
    expect(() => makeCoordinatorConfig({ id: 'c', sweepElection: { name: 'a/b', ttlMs: 1_000 } })).toThrow(/sweepElection/);
    expect(() => makeCoordinatorConfig({ id: 'c', sweepElection: { name: 'ok', ttlMs: 10 } })).toThrow(/sweepElection/);
    const given = { name: 'ok', ttlMs: 2_000 };
    expect(Object.isFrozen(makeCoordinatorConfig({ id: 'c', sweepElection: given }).sweepElection)).toBe(true);
    expect(Object.isFrozen(given)).toBe(false);
  });
});
