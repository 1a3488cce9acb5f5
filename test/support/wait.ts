/**
 * Waiting without sleep-and-hope, for every suite: poll a condition until it
 * holds or a deadline passes, and say what was awaited (and the last error)
 * when it does not.
 */
import { systemTimers } from '../../lib/timers.js';

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
    await systemTimers.sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const why = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}
