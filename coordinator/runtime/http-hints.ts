/**
 * Hints over HTTP: `POST {url}/2pc/prepare` and `POST {url}/2pc/decision`
 * on keep-alive connections (lib/http-client.ts says why not fetch), each
 * call bounded by the hint timeout. The cap on calls in flight is the
 * runtime's (hints.ts `CappedHintSender`), so it holds for any sender.
 */
import type { HttpClient } from '../../lib/http-client.js';
import { tlsHttpClient, type ClientTls } from '../../lib/tls.js';
import type { Timers } from '../../lib/timers.js';
import type { Decision } from '../protocol/index.js';
import type { HintResult, HintSender } from './hints.js';

export interface HttpHintSenderOptions {
  /** Timeout of one call, from connect to the whole answer. */
  readonly timeoutMs: number;
  /** The wait of a call blocked by fault injection. */
  readonly timers: Pick<Timers, 'sleep'>;
  /** For https participants: the CA to trust and the certificate to show; default: the process's (lib/tls.ts). */
  readonly tls?: ClientTls;
}

export class HttpHintSender implements HintSender {
  sent = 0;
  failed = 0;
  /**
   * Fault injection (chaos runs, RAFT2PC_FAULTS=1): participant base URLs this
   * coordinator cannot reach. A blocked call fails after the hint timeout, as
   * a call into a partition does.
   */
  readonly blockedUrls = new Set<string>();
  private readonly http: HttpClient;

  constructor(private readonly opts: HttpHintSenderOptions) {
    this.http = tlsHttpClient({ requestTimeoutMs: opts.timeoutMs }, opts.tls);
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
    this.sent++;
    try {
      if (this.isBlocked(url)) {
        await this.opts.timers.sleep(this.opts.timeoutMs);
        this.failed++;
        return { ok: false, error: 'blocked by fault injection' };
      }
      const res = await this.http.request({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status >= 400) this.failed++;
      return { ok: res.status < 400, status: res.status, body: parseOrText(res.text) };
    } catch (e) {
      this.failed++;
      return { ok: false, error: String(e) };
    }
  }
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text; // not JSON: keep the text
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
