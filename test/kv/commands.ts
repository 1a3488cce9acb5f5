// Random KV commands over a small key space (seeded), shared by the model
// test (test/kv/model.test.ts) and the LMDB reopen test (test/engine).
import type { SeededRandom } from '../../lib/random.js';
import type { Compare, KvCommand, TxnOp } from '../../store/kv/index.js';

export const KEYS = ['a', 'ab', 'a/1', 'a/2', 'b', 'é', '\uE000', '\u{1F600}', 'a\u{1F600}', 'a\uFFFF'];
export const PREFIXES = ['', 'a', 'a/', 'b', '\u{1F600}', 'z'];

/** Random commands over a small key space, so keys collide and compares go both ways. */
export function generator(random: SeededRandom) {
  const key = () => random.pick(KEYS);
  const value = () => random.pick(['', 'x', 'y', 'é', '\u{1F600}', 'zz']);
  const lease = () => (random.chance(0.25) ? { lease: 1 + random.int(3) } : {});
  const put = (): TxnOp => ({ type: 'put', key: key(), value: value(), ...lease() });
  const range = (): TxnOp => ({
    type: 'range',
    prefix: random.pick(PREFIXES),
    ...(random.chance(0.5) ? { limit: 1 + random.int(4) } : {}),
    ...(random.chance(0.3) ? { after: key() } : {}),
  });
  const op = (): TxnOp =>
    random.pick<() => TxnOp>([put, put, () => ({ type: 'delete', key: key() }), () => ({ type: 'get', key: key() }), range])();
  const compare = (): Compare => {
    const op = random.pick(['=', '!=', '<', '>'] as const);
    if (random.chance(0.4)) return { key: key(), target: 'value', op, value: value() };
    return { key: key(), target: random.pick(['version', 'createRevision', 'modRevision'] as const), op, value: random.int(8) };
  };
  const list = <T>(make: () => T, max: number): T[] => Array.from({ length: random.int(max + 1) }, make);
  return (): KvCommand => {
    switch (random.int(10)) {
      case 0:
      case 1:
        return put() as KvCommand;
      case 2:
        return { type: 'cas', key: key(), expected: random.chance(0.3) ? null : value(), value: value(), ...lease() };
      case 3:
        return { type: 'delete', key: key() };
      case 4:
        return op().type === 'get' ? { type: 'get', key: key() } : (range() as KvCommand);
      case 5:
      case 6:
        return { type: 'txn', compare: list(compare, 2), success: list(op, 3), failure: list(op, 3) };
      case 7:
        return { type: 'leaseGrant', id: 1 + random.int(3), ttlMs: 100 };
      case 8:
        return { type: 'leaseRevoke', id: 1 + random.int(3) };
      default:
        return put() as KvCommand;
    }
  };
}
