/**
 * Helpers shared by the demo's tests: bounded waits on conditions, JSON
 * calls, the app's state, and whether a pid is still a live process.
 * Ports: the demo tests use 38000-38999 (the other suites use 31000-37999).
 */
import { readFileSync } from 'node:fs';
import type { PageState } from '../../demo/app/state.js';
import { DEFAULT_BANKS } from '../../demo/supervisor/layout.js';
import { fetchJson, type JsonAnswer } from '../../demo/common/http.js';

export { waitFor } from '../support/wait.js';

export function post(url: string, body: unknown, timeoutMs = 60_000): Promise<JsonAnswer> {
  return fetchJson(url, { method: 'POST', body, timeoutMs });
}

export function get(url: string, timeoutMs = 10_000): Promise<JsonAnswer> {
  return fetchJson(url, { timeoutMs });
}

export async function stateOf(appUrl: string): Promise<PageState> {
  const a = await get(`${appUrl}/v1/state`);
  if (a.status !== 200) throw new Error(`GET /v1/state: ${a.status}`);
  return a.body as PageState;
}

/**
 * Quiet and whole: every bank answers, no transfer holds anything, nothing
 * is in doubt anywhere (the app's feed, the banks, a coordinator's listing).
 */
export function settled(s: PageState): boolean {
  return s.banks.length === DEFAULT_BANKS.length && s.banks.every((b) => b.up && b.holds === 0 && b.inDoubt === 0) && s.inDoubt.feed === 0 && s.inDoubt.coordinators === 0 && s.liveTotal !== null;
}

/** Alive and not a zombie (an exited child nobody reaped yet is gone for our purposes). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
