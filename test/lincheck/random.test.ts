import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import { checkHistory } from './checker.js';
import { generateHistory, type GenerateOptions } from './generate.js';
import type { History, HistoryOperation } from './history.js';

/** A base seed per run unless LINCHECK_SEED pins it; every message prints the seed. */
const BASE_SEED = Number(process.env['LINCHECK_SEED'] ?? Date.now() % 1_000_000);

// ---------------------------------------------------------------------------
// Reference checker: tries every order, with the register semantics written
// out again independently of kv-model.ts. Only for tiny histories.

function refStep(state: string | null, op: HistoryOperation): { ok: boolean; state: string | null } {
  const checked = op.status === 'ok';
  const o = op.output;
  const prevOk = !checked || o.previous === undefined || o.previous === state;
  switch (op.op) {
    case 'get':
      return { ok: !checked || o.value === state, state };
    case 'set':
      return { ok: prevOk, state: op.value ?? null };
    case 'cas': {
      const hit = state === op.expected;
      return { ok: prevOk && (!checked || o.succeeded === hit), state: hit ? (op.value ?? null) : state };
    }
    case 'delete':
      return { ok: prevOk && (!checked || o.deleted === (state !== null)), state: null };
  }
}

function bruteForceKey(ops: HistoryOperation[]): boolean {
  const ret = (o: HistoryOperation): number => (o.status === 'ok' ? (o.return as number) : Infinity);
  const used = ops.map(() => false);
  const search = (state: string | null): boolean => {
    const remaining = ops.filter((_, i) => !used[i]);
    if (remaining.every((o) => o.status === 'unknown')) return true; // may never take effect
    for (let i = 0; i < ops.length; i++) {
      if (used[i]) continue;
      const op = ops[i] as HistoryOperation;
      // Nothing left may have returned strictly before this one was called.
      if (remaining.some((o) => o !== op && ret(o) < op.call)) continue;
      const r = refStep(state, op);
      if (!r.ok) continue;
      used[i] = true;
      if (search(r.state)) return true;
      used[i] = false;
    }
    return false;
  };
  return search(null);
}

function bruteForce(h: History): 'ok' | 'illegal' {
  const byKey = new Map<string, HistoryOperation[]>();
  for (const op of h.operations) {
    if (op.status === 'fail') continue;
    byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  }
  for (const ops of byKey.values()) if (!bruteForceKey(ops)) return 'illegal';
  return 'ok';
}

/** Rewrites one random operation's result to a random (often wrong) one. */
function mutateRandomly(rng: SeededRandom, h: History): void {
  const candidates = h.operations.filter((o) => o.status === 'ok');
  if (candidates.length === 0) return;
  const op = rng.pick(candidates);
  const values = [null, 'v0', 'v1', 'v2'];
  switch (op.op) {
    case 'get':
      op.output = { value: rng.pick(values) };
      break;
    case 'set':
      op.output = rng.chance(0.5) ? {} : { previous: rng.pick(values) };
      break;
    case 'cas':
      op.output = { ...op.output, succeeded: !op.output.succeeded };
      break;
    case 'delete':
      op.output = { ...op.output, deleted: !op.output.deleted };
      break;
  }
}

// ---------------------------------------------------------------------------

const variants: { name: string; options: Omit<GenerateOptions, 'operations'> }[] = [
  { name: 'unique values', options: { keys: 3, clients: 5 } },
  { name: 'few values (ambiguous)', options: { keys: 2, clients: 6, valuesPerKey: 3 } },
  { name: 'unknown and failed ops', options: { keys: 3, clients: 5, unknownRate: 0.1, failRate: 0.1 } },
  { name: 'no previous, long latency', options: { keys: 1, clients: 8, maxLatencyMs: 40, recordPrevious: false } },
];

describe('randomized histories from a simulated linearizable register', () => {
  for (const { name, options } of variants) {
    it(`accepts every generated history (${name})`, () => {
      for (let n = 0; n < 40; n++) {
        const seed = BASE_SEED + n;
        const h = generateHistory(new SeededRandom(seed), { ...options, operations: 300 });
        const r = checkHistory(h);
        expect(r.result, `seed=${seed} ${name}: ${r.counterexample?.message ?? ''}`).toBe('ok');
      }
    });

    it(`catches a read mutated to a value no linearization allows (${name})`, () => {
      for (let n = 0; n < 40; n++) {
        const seed = BASE_SEED + 1000 + n;
        const rng = new SeededRandom(seed);
        const h = generateHistory(rng, { ...options, operations: 300 });
        const reads = h.operations.filter((o) => o.op === 'get' && o.status === 'ok');
        const victim = rng.pick(reads);
        victim.output = { value: `never-written-${seed}` };
        const r = checkHistory(h);
        expect(r.result, `seed=${seed} ${name}: mutated #${victim.id}`).toBe('illegal');
        const cx = r.counterexample;
        expect(cx?.key, `seed=${seed}`).toBe(victim.key);
        // The history is fine up to the mutated read's return, and not after.
        expect(cx?.cutTime, `seed=${seed}`).toBe(victim.return);
        expect(cx?.failed.id, `seed=${seed}: ${cx?.message ?? ''}`).toBe(victim.id);
        expect(cx?.operations.at(-1)?.id, `seed=${seed}`).toBe(victim.id);
      }
    });
  }

  it('agrees with a brute-force checker on small histories, mutated or not', () => {
    let illegal = 0;
    let ok = 0;
    for (let n = 0; n < 600; n++) {
      const seed = BASE_SEED + 5000 + n;
      const rng = new SeededRandom(seed);
      const h = generateHistory(rng, {
        operations: 3 + rng.int(6),
        keys: 1 + rng.int(2),
        clients: 2 + rng.int(3),
        valuesPerKey: 3,
        unknownRate: 0.15,
        failRate: 0.1,
        maxLatencyMs: 8,
        recordPrevious: rng.chance(0.5),
      });
      if (rng.chance(0.7)) mutateRandomly(rng, h);
      const expected = bruteForce(h);
      const got = checkHistory(h).result;
      expect(got, `seed=${seed} history=${JSON.stringify(h)}`).toBe(expected);
      if (expected === 'illegal') illegal++;
      else ok++;
    }
    // Both outcomes must be well represented for the comparison to mean anything.
    expect(illegal, `base seed=${BASE_SEED}`).toBeGreaterThan(100);
    expect(ok, `base seed=${BASE_SEED}`).toBeGreaterThan(100);
  });
});

describe('performance', () => {
  const shape = { operations: 2000, keys: 10, clients: 8 };

  function timed(h: History): { ms: number; result: string } {
    const started = performance.now();
    const r = checkHistory(h);
    return { ms: performance.now() - started, result: r.result };
  }

  it('checks 2,000 operations over 10 keys with 8 clients well under a second', () => {
    const seed = BASE_SEED + 9000;
    // Warm the JIT once so the number reflects the checker, not compilation.
    timed(generateHistory(new SeededRandom(seed - 1), shape));
    const plain = generateHistory(new SeededRandom(seed), shape);
    const messy = generateHistory(new SeededRandom(seed), { ...shape, unknownRate: 0.02, failRate: 0.02 });
    const bad = generateHistory(new SeededRandom(seed), shape);
    const victim = bad.operations.filter((o) => o.op === 'get').at(-1) as HistoryOperation;
    victim.output = { value: 'never-written' };

    const a = timed(plain);
    const b = timed(messy);
    const c = timed(bad);
    console.log(
      `lincheck timing (seed=${seed}): 2000 ops/10 keys/8 clients: ok ${a.ms.toFixed(1)} ms; ` +
        `with 2% unknown + 2% fail ${b.ms.toFixed(1)} ms; illegal + minimized counterexample ${c.ms.toFixed(1)} ms`,
    );
    expect(a.result, `seed=${seed}`).toBe('ok');
    expect(b.result, `seed=${seed}`).toBe('ok');
    expect(c.result, `seed=${seed}`).toBe('illegal');
    expect(a.ms, `seed=${seed}`).toBeLessThan(500);
    expect(b.ms, `seed=${seed}`).toBeLessThan(500);
    expect(c.ms, `seed=${seed}`).toBeLessThan(1000);
  });
});
