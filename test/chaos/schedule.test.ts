/**
 * Goal: the chaos runner's pure parts do what docs/CHAOS.md says. The fault
 * schedule is a function of the seed (so a printed seed replays it), each
 * lane goes once through every enabled kind before drawing at random (so a
 * short run injects every kind), the store lane only touches store nodes
 * and the service lane only coordinators and banks; and the options parse,
 * validate and print the command that replays them.
 */
import { describe, expect, it } from 'vitest';
import { FaultPlan, parseChaosArgs, replayCommand, UsageError, type PlannedFault } from '../../chaos/index.js';
import { Pacer } from '../../chaos/pacer.js';

const TARGETS = { store: ['n1', 'n2', 'n3'], coordinators: ['c1', 'c2'], banks: ['bank-a', 'bank-b', 'bank-c'] };
const ALL = ['kill', 'pause', 'partition', 'disk'] as const;

function draws(lane: 'store' | 'service', seed: number, n: number, kinds: readonly (typeof ALL)[number][] = ALL): PlannedFault[] {
  const plan = new FaultPlan(lane, seed, kinds, TARGETS);
  return Array.from({ length: n }, () => plan.draw());
}

describe('fault schedule', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(draws('store', 42, 30)).toEqual(draws('store', 42, 30));
    expect(draws('service', 42, 30)).toEqual(draws('service', 42, 30));
    expect(draws('store', 42, 30)).not.toEqual(draws('store', 43, 30));
  });

  it('goes through every kind of the lane first, then draws at random', () => {
    for (let seed = 0; seed < 50; seed++) {
      expect(new Set(draws('store', seed, 4).map((f) => f.kind))).toEqual(new Set(ALL));
      expect(new Set(draws('service', seed, 3).map((f) => f.kind))).toEqual(new Set(['kill', 'pause', 'partition']));
    }
  });

  it('keeps each lane on its own processes, with bounded durations', () => {
    for (let seed = 0; seed < 20; seed++) {
      for (const f of draws('store', seed, 40)) {
        expect(['leader', ...TARGETS.store]).toContain(f.target);
        expect(f.holdMs).toBeGreaterThanOrEqual(300);
        expect(f.holdMs).toBeLessThan(5_000);
        if (f.kind === 'pause') expect(f.holdMs, 'a store pause outlasts the election timeout').toBeGreaterThanOrEqual(800);
        if (f.kind === 'disk') expect(f.tearBytes).toBeGreaterThan(0);
      }
      for (const f of draws('service', seed, 40)) {
        expect(f.kind).not.toBe('disk');
        if (f.kind === 'partition') {
          expect(TARGETS.coordinators).toContain(f.target);
          expect(f.blocked.length).toBeGreaterThan(0);
          for (const b of f.blocked) expect(TARGETS.banks).toContain(b);
        } else {
          expect([...TARGETS.coordinators, ...TARGETS.banks]).toContain(f.target);
        }
      }
    }
  });

  it('draws only the enabled kinds, and nothing for a lane with none', () => {
    expect(new Set(draws('store', 5, 30, ['pause']).map((f) => f.kind))).toEqual(new Set(['pause']));
    expect(new FaultPlan('service', 5, ['disk'], TARGETS).empty).toBe(true);
    expect(new FaultPlan('store', 5, ALL, { ...TARGETS, store: [] }).empty).toBe(true);
  });

  it('the test run\'s seed tears a WAL first (so a short run covers the disk fault)', () => {
    expect(draws('store', 3, 1)[0]?.kind).toBe('disk');
  });
});

describe('pacer', () => {
  it('spaces starts 1/rate apart across its clients, never in the past, and gives no burst after a lull', async () => {
    let now = 0;
    const waits: number[] = [];
    const pacer = new Pacer(100, () => now, async (ms) => void waits.push(ms));
    for (let k = 0; k < 4; k++) await pacer.next();
    expect(waits).toEqual([10, 20, 30]); // the first starts at once; four clients asking together
    now = 1_000; // a lull: the slots that passed are gone
    waits.length = 0;
    await pacer.next();
    await pacer.next();
    expect(waits).toEqual([10]);
    expect(() => new Pacer(0)).toThrow(/positive rate/);
  });
});

describe('options', () => {
  it('parse, default, and replay', () => {
    const o = parseChaosArgs(['--duration', '60', '--seed', '9', '--faults', 'kill,disk']);
    expect(o).toMatchObject({ durationS: 60, seed: 9, faults: ['kill', 'disk'], store: 'builtin', clients: 4 });
    expect(replayCommand(o)).toBe('npm run chaos -- --duration 60 --seed 9 --faults kill,disk --store builtin');
    expect(parseChaosArgs(['--seed', '1', '--faults', 'none']).faults).toEqual([]);
    expect(parseChaosArgs(replayCommand(o).split(' ').slice(4))).toEqual(o); // after "npm run chaos --"
  });

  it('--rate: a sustained transfer rate, kept in the replay command', () => {
    expect(parseChaosArgs(['--seed', '1']).rate).toBeUndefined();
    const o = parseChaosArgs(['--seed', '1', '--rate', '40', '--clients', '8']);
    expect(o).toMatchObject({ rate: 40, clients: 8 });
    expect(replayCommand(o)).toBe('npm run chaos -- --duration 120 --seed 1 --faults kill,pause,partition,disk --store builtin --clients 8 --rate 40');
    expect(parseChaosArgs(replayCommand(o).split(' ').slice(4))).toEqual(o);
    expect(() => parseChaosArgs(['--seed', '1', '--rate', '0'])).toThrow(/--rate must be an integer from 1/);
    expect(() => parseChaosArgs(['--seed', '1', '--rate', 'fast'])).toThrow(UsageError);
  });

  it('refuse bad input with a clear message', () => {
    expect(() => parseChaosArgs([])).toThrow(UsageError);
    expect(() => parseChaosArgs(['--seed', '1', '--faults', 'flood'])).toThrow(/unknown fault kind "flood"/);
    expect(() => parseChaosArgs(['--seed', '1', '--duration', '2'])).toThrow(/--duration must be an integer from 5/);
    expect(() => parseChaosArgs(['--seed', '1', '--store', 'zk'])).toThrow(/--store must be builtin or etcd/);
    expect(() => parseChaosArgs(['--seed', '1', '--bogus'])).toThrow(UsageError);
  });
});
