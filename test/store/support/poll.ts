/**
 * Waiting without sleep-and-hope: poll a condition until it holds or a
 * deadline passes, and say what was awaited (and the last error) when it
 * does not.
 */

/**
 * Calls `probe` every `intervalMs` until it returns something other than
 * undefined/false, and returns that; throws after `timeoutMs`. A probe that
 * throws counts as "not yet" (its last error goes in the message).
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const why = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** A plain timer, for pacing a workload (never to wait for a condition). */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
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
