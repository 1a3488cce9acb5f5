/**
 * The coordinator's calls to participants: `POST {url}/2pc/prepare` and
 * `POST {url}/2pc/decision`. They are hints that save latency; correctness
 * never depends on them, because participants watch the store for frozen
 * records and decisions. So a call has a timeout, the number in flight is
 * capped (past the cap a hint is skipped, not queued), and failures are
 * counted, not reported.
 */
import { HttpClient } from '../../lib/http-client.js';
import type { Decision } from '../protocol/index.js';

export interface HintClientOptions {
  readonly timeoutMs: number;
  readonly maxInflight: number;
}

export interface HintResult {
  readonly ok: boolean;
  /** The HTTP status, when the participant answered. */
  readonly status?: number;
  readonly body?: unknown;
  readonly error?: string;
}

export class HintClient {
  private inflight = 0;
  sent = 0;
  failed = 0;
  skipped = 0;
  /**
   * Fault injection (chaos runs, RAFT2PC_FAULTS=1): participant base URLs this
   * coordinator cannot reach. A blocked call fails after the hint timeout, as
   * a call into a partition does.
   */
  readonly blockedUrls = new Set<string>();
  /** Keep-alive connections to the participants (lib/http-client.ts says why not fetch). */
  private readonly http: HttpClient;

  constructor(private readonly opts: HintClientOptions) {
    this.http = new HttpClient({ requestTimeoutMs: opts.timeoutMs });
  }

  /** Closes the pooled connections; later hints fail (and are counted as failed). */
  close(): void {
    this.http.close();
  }

  prepare(url: string, txId: string, deadline: number): Promise<HintResult> {
    return this.post(`${trimSlash(url)}/2pc/prepare`, { txId, deadline });
  }

  decision(url: string, txId: string, decision: Decision): Promise<HintResult> {
    return this.post(`${trimSlash(url)}/2pc/decision`, { txId, decision });
  }

  private isBlocked(url: string): boolean {
    for (const base of this.blockedUrls) if (url.startsWith(base)) return true;
    return false;
  }

  private async post(url: string, body: unknown): Promise<HintResult> {
    if (this.inflight >= this.opts.maxInflight) {
      this.skipped++;
      return { ok: false, error: 'too many hints in flight' };
    }
    this.inflight++;
    this.sent++;
    try {
      if (this.isBlocked(url)) {
        await new Promise((resolve) => setTimeout(resolve, this.opts.timeoutMs));
        this.failed++;
        return { ok: false, error: 'blocked by fault injection' };
      }
      const res = await this.http.request({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      let parsed: unknown = res.text;
      try {
        parsed = JSON.parse(res.text);
      } catch {
        // keep the text
      }
      if (res.status >= 400) this.failed++;
      return { ok: res.status < 400, status: res.status, body: parsed };
    } catch (e) {
      this.failed++;
      return { ok: false, error: String(e) };
    } finally {
      this.inflight--;
    }
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
