/**
 * Assertions for programmer errors (TigerBeetle style): a failed assertion
 * means the code is wrong, so it throws an AssertionError that nobody catches
 * on purpose. Expected runtime failures use typed errors from errors.ts.
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
