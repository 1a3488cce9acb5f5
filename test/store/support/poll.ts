/**
 * The store suites' pacing and waits: `waitFor` is the shared one
 * (test/support/wait.ts), re-exported so these suites keep one import.
 */
import { systemTimers } from '../../../lib/timers.js';

export { waitFor } from '../../support/wait.js';

/** A plain timer, for pacing a workload (never to wait for a condition). */
export function delay(ms: number): Promise<void> {
  return systemTimers.sleep(ms);
}

/** A seed from STORE_TEST_SEED, or a fresh random one; printed by the caller. */
export function testSeed(): number {
  const fromEnv = process.env['STORE_TEST_SEED'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isSafeInteger(n)) throw new Error(`STORE_TEST_SEED must be an integer, got ${fromEnv}`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
}
