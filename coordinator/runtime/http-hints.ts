/**
 * Hints over HTTP: `POST {url}/2pc/prepare` and `POST {url}/2pc/decision`
 * on keep-alive connections (lib/http-client.ts says why not fetch), each
 * call bounded by the hint timeout. The cap on calls in flight is the
 * runtime's (hints.ts `CappedHintSender`), so it holds for any sender.
 */
import type { HttpClient } from '../../lib/http-client.js';
import { tlsHttpClient, type ClientTls } from '../../lib/tls.js';
import type { Logger } from '../../lib/logger.js';
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
  /**
   * This coordinator's own token (`--call-token-file`), sent as
   * `Authorization: Bearer` on every call: participants with a token file
   * take prepare and decision only from the `coordinator` role. Read on each
   * call, so a reloaded file counts from the next one. Default: none.
   */
  readonly token?: () => string | undefined;
  /** Where a participant's refusal of our credentials (401, 403) is reported, once per participant and status. */
  readonly log?: Logger;
}

/** Participants whose refusals are remembered (so each is logged once); past it, no more are logged. */
const MAX_REFUSALS_LOGGED = 256;

export class HttpHintSender implements HintSender {
  sent = 0;
  failed = 0;
  /** Calls a participant answered 401 or 403: a missing, wrong or unauthorized call token. */
  refused = 0;
  private readonly refusalsLogged = new Set<string>();
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
      const token = this.opts.token?.();
      const headers: Record<string, string> = token === undefined ? { 'content-type': 'application/json' } : { 'content-type': 'application/json', authorization: `Bearer ${token}` };
      const res = await this.http.request({ method: 'POST', url, headers, body: JSON.stringify(body) });
      if (res.status >= 400) this.failed++;
      if (res.status === 401 || res.status === 403) this.noteRefusal(url, res.status, res.text);
      return { ok: res.status < 400, status: res.status, body: parseOrText(res.text) };
    } catch (e) {
      this.failed++;
      return { ok: false, error: String(e) };
    }
  }

  /** A refused hint is a misconfiguration (the participant still learns from the store): say so, once per participant and status. */
  private noteRefusal(url: string, status: number, text: string): void {
    this.refused++;
    const key = `${status} ${url.replace(/\/2pc\/\w+$/, '')}`;
    if (this.refusalsLogged.has(key) || this.refusalsLogged.size >= MAX_REFUSALS_LOGGED) return;
    this.refusalsLogged.add(key);
    const code = (parseOrText(text) as { error?: { code?: unknown } } | null)?.error?.code;
    this.opts.log?.('warn', 'a participant refused our hint: give this coordinator a token with the coordinator role (--call-token-file)', { url, status, code: typeof code === 'string' ? code : null });
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
