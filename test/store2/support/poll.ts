/**
 * Polling helpers for the store2 tests: the same deadline-bound `waitFor`,
 * `delay` and `testSeed` as test/store/support (one implementation), plus a
 * monotonic clock for measuring latencies.
 */
import { performance } from 'node:perf_hooks';

export { delay, testSeed, waitFor } from '../../store/support/poll.js';

/** Monotonic milliseconds of this test process. */
export function now(): number {
  return performance.now();
}
