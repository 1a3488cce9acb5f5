import { describe, expect, it } from 'vitest';
import { checkHistory, searchLinearization, SearchBudget, type Model } from './checker.js';
import { HistoryFormatError, type History } from './history.js';
import { cas, del, failed, get, history, set, unknown, withPrevious } from './fixtures.js';

const verdict = (h: History): string => checkHistory(h).result;

describe('sequential histories', () => {
  it('accepts the empty history', () => {
    const r = checkHistory(history());
    expect(r.result).toBe('ok');
    expect(r.perKey).toEqual([]);
  });

  it('accepts a correct sequence of every operation', () => {
    const h = history(
      get(1, 'x', null, 0, 1),
      del(1, 'x', false, 2, 3),
      cas(1, 'x', null, 'a', true, 4, 5),
      cas(1, 'x', null, 'b', false, 6, 7),
      get(1, 'x', 'a', 8, 9),
      cas(1, 'x', 'a', 'b', true, 10, 11),
      cas(1, 'x', 'a', 'c', false, 12, 13),
      set(1, 'x', 'd', 14, 15),
      get(1, 'x', 'd', 16, 17),
      del(1, 'x', true, 18, 19),
      get(1, 'x', null, 20, 21),
    );
    expect(verdict(h)).toBe('ok');
  });

  it('starts every key absent: a first read of a value is illegal', () => {
    expect(verdict(history(get(1, 'x', null, 0, 1)))).toBe('ok');
    expect(verdict(history(get(1, 'x', 'a', 0, 1)))).toBe('illegal');
  });

  it('rejects a read of a value that was never written', () => {
    const h = history(set(1, 'x', 'a', 0, 10), set(2, 'x', 'b', 5, 15), get(3, 'x', 'c', 3, 20));
    const r = checkHistory(h);
    expect(r.result).toBe('illegal');
    expect(r.counterexample?.failed.id).toBe(2);
  });

  it('rejects wrong cas and delete results', () => {
    expect(verdict(history(cas(1, 'x', null, 'a', false, 0, 1)))).toBe('illegal');
    expect(verdict(history(cas(1, 'x', 'a', 'b', true, 0, 1)))).toBe('illegal');
    expect(verdict(history(del(1, 'x', true, 0, 1)))).toBe('illegal');
    expect(verdict(history(set(1, 'x', 'a', 0, 1), del(1, 'x', false, 2, 3)))).toBe('illegal');
  });
});

describe('classic anomalies', () => {
  it('rejects a stale read after a completed write, and explains it', () => {
    const h = history(set(1, 'x', 'a', 0, 10), get(2, 'x', null, 20, 30));
    const r = checkHistory(h);
    expect(r.result).toBe('illegal');
    const cx = r.counterexample;
    expect(cx).toBeDefined();
    if (cx === undefined) return;
    expect(cx.key).toBe('x');
    expect(cx.operations.map((o) => o.id)).toEqual([0, 1]);
    expect(cx.failed.id).toBe(1);
    expect(cx.stateAtFailure).toBe('a');
    expect(cx.cutTime).toBe(30);
    expect(cx.linearized[0]?.stateAfter).toBe('a');
    expect(cx.message).toContain('get("x") -> null');
  });

  it('rejects two successful CAS from the same expected value', () => {
    const sequential = history(
      set(1, 'x', 'v0', 0, 1),
      cas(1, 'x', 'v0', 'a', true, 2, 3),
      cas(2, 'x', 'v0', 'b', true, 4, 5),
    );
    expect(verdict(sequential)).toBe('illegal');
    const concurrent = history(
      set(1, 'x', 'v0', 0, 1),
      cas(1, 'x', 'v0', 'a', true, 2, 10),
      cas(2, 'x', 'v0', 'b', true, 3, 9),
    );
    expect(verdict(concurrent)).toBe('illegal');
  });

  it('rejects two successful create-if-absent CAS (two first writers of a vote key)', () => {
    const h = history(cas(1, 'vote', null, 'yes', true, 0, 10), cas(2, 'vote', null, 'no', true, 1, 11));
    expect(verdict(h)).toBe('illegal');
    const oneWins = history(
      cas(1, 'vote', null, 'yes', true, 0, 10),
      cas(2, 'vote', null, 'no', false, 1, 11),
      get(3, 'vote', 'yes', 12, 13),
    );
    expect(verdict(oneWins)).toBe('ok');
  });

  it('rejects a lost update (an acknowledged CAS increment disappears)', () => {
    const h = history(
      set(1, 'n', '0', 0, 1),
      cas(1, 'n', '0', '1', true, 2, 3),
      cas(2, 'n', '1', '2', true, 4, 5),
      get(3, 'n', '1', 6, 7),
    );
    expect(verdict(h)).toBe('illegal');
  });

  it('rejects a lost acknowledged write', () => {
    const h = history(set(1, 'x', 'a', 0, 1), set(2, 'x', 'b', 2, 3), get(3, 'x', 'a', 4, 5));
    expect(verdict(h)).toBe('illegal');
  });

  it('rejects a deleted key that comes back', () => {
    const h = history(set(1, 'x', 'a', 0, 1), del(2, 'x', true, 2, 3), get(3, 'x', 'a', 4, 5));
    expect(verdict(h)).toBe('illegal');
  });

  it('rejects two deletes that both deleted the same single write', () => {
    const h = history(set(1, 'x', 'a', 0, 1), del(2, 'x', true, 2, 10), del(3, 'x', true, 3, 11));
    expect(verdict(h)).toBe('illegal');
  });
});

describe('concurrent operations', () => {
  it('lets a read concurrent with a write see the old or the new value', () => {
    expect(verdict(history(set(1, 'x', 'a', 0, 100), get(2, 'x', null, 10, 20)))).toBe('ok');
    expect(verdict(history(set(1, 'x', 'a', 0, 100), get(2, 'x', 'a', 10, 20)))).toBe('ok');
    // The read may even be linearized before a write that started before it.
    expect(verdict(history(set(1, 'x', 'a', 0, 100), get(2, 'x', null, 50, 200)))).toBe('ok');
  });

  it('rejects new-then-old reads that do not overlap each other', () => {
    const h = history(set(1, 'x', 'a', 0, 100), get(2, 'x', 'a', 10, 20), get(3, 'x', null, 30, 40));
    expect(verdict(h)).toBe('illegal');
  });

  it('accepts new-then-old reads when the reads overlap each other', () => {
    const h = history(set(1, 'x', 'a', 0, 100), get(2, 'x', 'a', 10, 40), get(3, 'x', null, 20, 30));
    expect(verdict(h)).toBe('ok');
  });

  it('finds the one order of concurrent writes that explains the reads', () => {
    const h = history(
      set(1, 'x', 'a', 0, 50),
      set(2, 'x', 'b', 0, 50),
      set(3, 'x', 'c', 0, 50),
      get(4, 'x', 'b', 5, 10),
      get(4, 'x', 'c', 15, 20),
      get(4, 'x', 'a', 25, 30),
      get(4, 'x', 'a', 60, 70),
    );
    expect(verdict(h)).toBe('ok');
    const bad = history(...h.operations.map(({ id: _id, ...d }) => d), get(4, 'x', 'b', 80, 90));
    expect(verdict(bad)).toBe('illegal');
  });

  it('treats an operation that starts exactly when another returns as concurrent', () => {
    // Timestamps have limited resolution, so a tie is not evidence of order.
    expect(verdict(history(set(1, 'x', 'a', 0, 10), get(2, 'x', null, 10, 20)))).toBe('ok');
    expect(verdict(history(set(1, 'x', 'a', 0, 10), get(2, 'x', null, 11, 20)))).toBe('illegal');
  });

  it('accepts concurrent CAS where exactly one succeeds', () => {
    const h = history(
      cas(1, 'x', null, 'a', false, 0, 10),
      cas(2, 'x', null, 'b', true, 0, 10),
      cas(3, 'x', 'b', 'c', true, 0, 10),
      get(4, 'x', 'c', 11, 12),
    );
    expect(verdict(h)).toBe('ok');
  });
});

describe('previous values', () => {
  it('checks previous when recorded', () => {
    expect(verdict(history(withPrevious(set(1, 'x', 'a', 0, 1), null)))).toBe('ok');
    expect(verdict(history(withPrevious(set(1, 'x', 'a', 0, 1), 'z')))).toBe('illegal');
    const h = history(set(1, 'x', 'a', 0, 1), withPrevious(cas(2, 'x', 'q', 'b', false, 2, 3), 'a'));
    expect(verdict(h)).toBe('ok');
    const bad = history(set(1, 'x', 'a', 0, 1), withPrevious(cas(2, 'x', 'q', 'b', false, 2, 3), null));
    expect(verdict(bad)).toBe('illegal');
    expect(verdict(history(set(1, 'x', 'a', 0, 1), withPrevious(del(2, 'x', true, 2, 3), 'a')))).toBe('ok');
  });
});

describe('unknown operations', () => {
  it('may take effect late, long after the client gave up', () => {
    const h = history(
      unknown(set(1, 'x', 'a', 0, 5)),
      get(2, 'x', null, 20, 30),
      get(2, 'x', null, 40, 50),
      get(2, 'x', 'a', 100, 110),
      get(2, 'x', 'a', 120, 130),
    );
    expect(verdict(h)).toBe('ok');
  });

  it('may never take effect', () => {
    const h = history(unknown(set(1, 'x', 'a', 0, 5)), get(2, 'x', null, 20, 30), get(2, 'x', null, 200, 300));
    expect(verdict(h)).toBe('ok');
  });

  it('takes effect at most once', () => {
    const h = history(
      unknown(set(1, 'x', 'a', 0, 5)),
      get(2, 'x', 'a', 20, 30),
      set(2, 'x', 'b', 40, 50),
      get(2, 'x', 'a', 60, 70),
    );
    expect(verdict(h)).toBe('illegal');
  });

  it('cannot take effect before it was called', () => {
    const h = history(get(2, 'x', 'a', 0, 10), unknown(set(1, 'x', 'a', 20, 25)));
    expect(verdict(h)).toBe('illegal');
  });

  it('has an unconstrained output, and ignores a recorded return time', () => {
    // An unknown CAS may have succeeded, whatever the client saw.
    const h = history(
      set(1, 'x', 'a', 0, 1),
      { ...unknown(cas(1, 'x', 'a', 'b', false, 2, 3)), output: { succeeded: false } },
      get(2, 'x', 'a', 10, 11),
      get(2, 'x', 'b', 12, 13),
    );
    expect(verdict(h)).toBe('ok');
    expect(verdict(history(unknown(get(1, 'x', 'nonsense', 0, 1))))).toBe('ok');
    const nullReturn = history({ ...unknown(set(1, 'x', 'a', 0, 1)), return: null }, get(2, 'x', 'a', 50, 60));
    expect(verdict(nullReturn)).toBe('ok');
  });

  it('counts unknown operations per key', () => {
    const r = checkHistory(history(unknown(set(1, 'x', 'a', 0, 5)), get(2, 'x', null, 20, 30)));
    expect(r.perKey[0]).toMatchObject({ key: 'x', operations: 2, unknownOperations: 1, failedOperations: 0 });
  });
});

describe('failed operations', () => {
  it('are dropped: a failed write never took effect', () => {
    expect(verdict(history(failed(set(1, 'x', 'a', 0, 5)), get(2, 'x', null, 20, 30)))).toBe('ok');
    expect(verdict(history(failed(set(1, 'x', 'a', 0, 5)), get(2, 'x', 'a', 20, 30)))).toBe('illegal');
  });

  it('are dropped whatever output they carry', () => {
    const h = history(set(1, 'x', 'a', 0, 1), failed(get(2, 'x', 'zzz', 2, 3)), failed(cas(2, 'x', 'q', 'r', true, 4, 5)));
    const r = checkHistory(h);
    expect(r.result).toBe('ok');
    expect(r.perKey[0]).toMatchObject({ key: 'x', operations: 1, failedOperations: 2 });
  });

  it('still list a key that only had failed operations', () => {
    const r = checkHistory(history(failed(set(1, 'y', 'a', 0, 5))));
    expect(r.perKey).toEqual([expect.objectContaining({ key: 'y', result: 'ok', operations: 0, failedOperations: 1 })]);
  });
});

describe('per-key partitioning', () => {
  it('checks keys independently and reports each', () => {
    const h = history(
      set(1, 'a', '1', 0, 10),
      set(1, 'b', '1', 11, 20),
      get(2, 'b', '1', 21, 22),
      get(2, 'a', null, 23, 24), // stale on a
      get(3, 'c', null, 0, 100),
    );
    const r = checkHistory(h);
    expect(r.result).toBe('illegal');
    expect(r.perKey.map((k) => [k.key, k.result])).toEqual([
      ['a', 'illegal'],
      ['b', 'ok'],
      ['c', 'ok'],
    ]);
    expect(r.counterexample?.key).toBe('a');
    expect(r.perKey.find((k) => k.key === 'b')?.counterexample).toBeUndefined();
  });

  it('does not let operations on one key constrain another', () => {
    const h = history(set(1, 'a', 'x', 0, 1), get(2, 'b', 'x', 5, 6));
    expect(verdict(h)).toBe('illegal');
    expect(verdict(history(set(1, 'a', 'x', 0, 1), get(2, 'b', null, 5, 6)))).toBe('ok');
  });
});

describe('counterexamples', () => {
  it('cut the history at the earliest point it already fails', () => {
    const drafts = [];
    let t = 0;
    for (let i = 0; i < 30; i++) {
      drafts.push(set(1, 'x', `v${i}`, t, t + 1), get(2, 'x', `v${i}`, t + 2, t + 3));
      t += 4;
    }
    drafts.splice(21, 0, get(3, 'x', 'v3', 42, 43)); // after set v10 returned at 41
    const h = history(...drafts);
    const r = checkHistory(h);
    expect(r.result).toBe('illegal');
    const cx = r.counterexample;
    if (cx === undefined) throw new Error('no counterexample');
    expect(cx.cutTime).toBe(43);
    expect(cx.failed.id).toBe(21);
    expect(cx.operations.at(-1)?.id).toBe(21);
    expect(cx.stateAtFailure).toBe('v10');
    expect(cx.operations.every((o) => o.call <= 43)).toBe(true);
    // Without minimizing the report still blames the same read.
    expect(checkHistory(h, { minimize: false }).counterexample?.failed.id).toBe(21);
  });
});

describe('budget', () => {
  // 18 overlapping writes, then a read nobody wrote: the search must try every
  // subset and order of the writes before it can say "illegal".
  const hard = history(
    ...Array.from({ length: 18 }, (_, i) => set(i, 'x', `w${i}`, 0, 100)),
    get(99, 'x', 'never', 200, 210),
    get(99, 'ok-key', null, 0, 1),
  );

  it('gives up with "unknown" and the step limit named', () => {
    const r = checkHistory(hard, { maxSteps: 10_000 });
    expect(r.result).toBe('unknown');
    expect(r.limit).toBe('maxSteps');
    const x = r.perKey.find((k) => k.key === 'x');
    expect(x).toMatchObject({ result: 'unknown', limit: 'maxSteps' });
  });

  it('gives up with "unknown" and the time limit named', () => {
    const started = performance.now();
    const r = checkHistory(hard, { timeoutMs: 50 });
    const elapsed = performance.now() - started;
    expect(r.result).toBe('unknown');
    expect(r.limit).toBe('timeoutMs');
    expect(elapsed).toBeLessThan(2_000);
  });

  it('reports illegal over unknown', () => {
    const h = history(...hard.operations.map(({ id: _id, ...d }) => d), get(1, 'bad', 'z', 0, 1));
    const r = checkHistory(h, { maxSteps: 10_000 });
    // "bad" sorts first, so it is checked before the budget runs out.
    expect(r.result).toBe('illegal');
    expect(r.counterexample?.key).toBe('bad');
  });
});

describe('generic search', () => {
  it('works with any model (a counter with increments and reads)', () => {
    type In = { kind: 'inc' } | { kind: 'read' };
    const counter: Model<number, In, number> = {
      init: () => 0,
      step: (s, input, out) => {
        if (input.kind === 'inc') return { ok: true, state: s + 1 };
        return out === undefined || out === s ? { ok: true, state: s } : { ok: false };
      },
      equal: (a, b) => a === b,
      hash: (s) => s,
    };
    const ok = searchLinearization(counter, [
      { input: { kind: 'inc' }, output: undefined, call: 0, return: 10 },
      { input: { kind: 'inc' }, output: undefined, call: 0, return: 10 },
      { input: { kind: 'read' }, output: 1, call: 1, return: 2 },
      { input: { kind: 'read' }, output: 2, call: 11, return: 12 },
    ]);
    expect(ok.result).toBe('ok');
    if (ok.result === 'ok') expect(ok.linearization).toHaveLength(4);
    const bad = searchLinearization(counter, [
      { input: { kind: 'inc' }, output: undefined, call: 0, return: 10 },
      { input: { kind: 'read' }, output: 2, call: 11, return: 12 },
    ]);
    expect(bad.result).toBe('illegal');
    const budget = new SearchBudget(10_000, 1);
    const cut = searchLinearization(counter, [{ input: { kind: 'inc' }, output: undefined, call: 0, return: 1 },
      { input: { kind: 'inc' }, output: undefined, call: 0, return: 1 }], budget);
    expect(cut).toMatchObject({ result: 'unknown', limit: 'maxSteps' });
  });
});

describe('input validation', () => {
  const base = { id: 0, client: 1, op: 'get', key: 'x', call: 0, return: 1, status: 'ok', output: { value: null } };
  const wrap = (op: Record<string, unknown>): History =>
    ({ version: 1, clock: 'monotonic-ms', operations: [op] }) as unknown as History;

  it.each([
    ['wrong version', { ...wrap(base), version: 2 }, /version/],
    ['wrong clock', { ...wrap(base), clock: 'wall' }, /clock/],
    ['get without output.value', wrap({ ...base, output: {} }), /operations\[0\]\.output\.value/],
    ['return before call', wrap({ ...base, call: 5, return: 1 }), /before call/],
    ['ok without return', wrap({ ...base, return: null }), /needs a return time/],
    ['value on a get', wrap({ ...base, value: 'a' }), /takes no value/],
    ['cas without expected', wrap({ ...base, op: 'cas', value: 'a', output: { succeeded: true } }), /expected/],
    ['set without value', wrap({ ...base, op: 'set', output: {} }), /needs value/],
    ['bad status', wrap({ ...base, status: 'maybe' }), /status/],
    ['missing output', wrap({ ...base, output: undefined }), /output/],
    ['bad previous', wrap({ ...base, op: 'delete', output: { deleted: true, previous: 3 } }), /previous/],
  ])('rejects %s', (_name, h, message) => {
    expect(() => checkHistory(h as History)).toThrow(HistoryFormatError);
    expect(() => checkHistory(h as History)).toThrow(message);
  });

  it('rejects duplicate ids', () => {
    const h = { version: 1, clock: 'monotonic-ms', operations: [base, base] } as unknown as History;
    expect(() => checkHistory(h)).toThrow(/duplicate id 0/);
  });
});
