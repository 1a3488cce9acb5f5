/**
 * Helpers for the SDK's tests: an HTTP requester that loses answers (the
 * request reached the real server and took effect; the client hears a
 * timeout), and reading a typed error's code.
 */
import { HttpClient, HttpClientError, type HttpRequest, type HttpRequester, type HttpResponse } from '../../lib/http-client.js';
import { CoordinatorError, WorkError } from '../../client/index.js';

/** What to do with an answer that came back: hand it over, or lose it. */
export type AnswerFate = 'keep' | 'lose';

/**
 * A real HttpClient that may lose answers after the server sent them: the
 * seam where an answer lost on the way back (a reset, a proxy timeout)
 * happens, with every server real.
 */
export class LosingRequester implements HttpRequester {
  private readonly inner = new HttpClient();
  /** Requests whose answer was lost. */
  readonly lost: HttpRequest[] = [];

  constructor(private readonly fate: (r: HttpRequest, res: HttpResponse) => AnswerFate | Promise<AnswerFate>) {}

  async request(r: HttpRequest): Promise<HttpResponse> {
    const res = await this.inner.request(r);
    if ((await this.fate(r, res)) === 'keep') return res;
    this.lost.push(r);
    throw new HttpClientError('timeout', `${r.method} ${r.url}: answer lost on purpose`);
  }

  close(): void {
    this.inner.close();
  }
}

export const isCommit = (r: HttpRequest): boolean => r.method === 'POST' && r.url.endsWith('/commit');

/** The code and status a call failed with; throws if it did not fail with a typed error. */
export async function failure(p: Promise<unknown>): Promise<{ code: string; status: number; retryable: boolean }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CoordinatorError || e instanceof WorkError) return { code: e.code, status: e.status, retryable: e.retryable };
    throw e;
  }
  throw new Error('the call succeeded; a typed error was expected');
}

export function failureSync(f: () => unknown): { code: string; status: number } {
  try {
    f();
  } catch (e) {
    if (e instanceof CoordinatorError) return { code: e.code, status: e.status };
    throw e;
  }
  throw new Error('the call succeeded; a typed error was expected');
}
