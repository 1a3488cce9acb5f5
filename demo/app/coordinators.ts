/**
 * The coordinators the app talks to, with failover: a call goes to the
 * coordinator that answered last; if it does not answer (killed: refused at
 * once; paused: the attempt times out) or answers 5xx, the call goes to the
 * next one. Safe because every call the app makes is idempotent (begin
 * carries an Idempotency-Key; enlist, commit and abort repeat to the same
 * answer) and coordinators keep no state of their own: any of them can
 * finish a transaction another one began.
 */
import { assert } from '../../lib/assert.js';
import { fetchJson, type JsonAnswer } from '../common/http.js';
import { systemTimers } from '../../lib/timers.js';

export interface PoolAnswer extends JsonAnswer {
  /** The coordinator that gave this answer (the last one tried, when none answered). */
  readonly coordinator: string;
}

export interface PoolCall {
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Timeout of one attempt at one coordinator. */
  readonly attemptTimeoutMs: number;
  /** Epoch ms after which no new attempt starts. */
  readonly deadlineMs: number;
  /** Passes over the whole list (default 2). */
  readonly rounds?: number;
}

/** Worth another coordinator: nothing answered, or the one that did could not do it now. */
function retryable(status: number): boolean {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

export class CoordinatorPool {
  private preferred = 0;

  constructor(readonly urls: readonly string[]) {
    assert(urls.length > 0, 'at least one coordinator');
  }

  /** The coordinator calls go to first. */
  get current(): string {
    return this.urls[this.preferred] as string;
  }

  async call(method: string, path: string, c: PoolCall): Promise<PoolAnswer> {
    const rounds = c.rounds ?? 2;
    let last: PoolAnswer | undefined;
    for (let attempt = 0; attempt < rounds * this.urls.length; attempt++) {
      if (attempt > 0 && Date.now() > c.deadlineMs) break;
      if (attempt > 0 && attempt % this.urls.length === 0) await systemTimers.sleep(200); // a whole round failed: let an election or restart settle
      const index = (this.preferred + attempt) % this.urls.length;
      const url = this.urls[index] as string;
      const req = { method, timeoutMs: c.attemptTimeoutMs, ...(c.body === undefined ? {} : { body: c.body }), ...(c.headers === undefined ? {} : { headers: c.headers }) };
      const answer = await fetchJson(`${url}${path}`, req);
      last = { ...answer, coordinator: url };
      if (!retryable(answer.status)) {
        this.preferred = index;
        return last;
      }
    }
    assert(last !== undefined, 'at least one attempt');
    return last;
  }
}
