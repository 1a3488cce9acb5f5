/**
 * The coordinator's calls to participants: prepare and decision. They are
 * hints that save latency; correctness never depends on them, because
 * participants watch the store for frozen records and decisions. So a call
 * has a timeout, the number in flight is capped (past the cap a hint is
 * skipped, not queued), and failures are counted, not reported.
 *
 * The runtime depends on `HintSender` only: the process sends over HTTP
 * (http-hints.ts), a simulation over its simulated network.
 */
import type { Decision } from '../protocol/index.js';

export interface HintResult {
  readonly ok: boolean;
  /** The participant's status (HTTP status over HTTP), when it answered. */
  readonly status?: number;
  readonly body?: unknown;
  readonly error?: string;
  /** Not sent: too many in flight (the participant's watch stands in for it). */
  readonly skipped?: boolean;
}

/** One call to one participant; never rejects (a failure is a result with `ok: false`). */
export interface HintSender {
  /** Asks the participant at `url` to prepare `txId` (`POST {url}/2pc/prepare`). */
  prepare(url: string, txId: string, deadline: number): Promise<HintResult>;
  /** Tells the participant at `url` the decision (`POST {url}/2pc/decision`). */
  decision(url: string, txId: string, decision: Decision): Promise<HintResult>;
}

/**
 * Caps the hints in flight through any sender: past `maxInflight` a hint is
 * skipped at once (participants also watch the store, so queueing would only
 * add load when participants are slow).
 */
export class CappedHintSender implements HintSender {
  private inflight = 0;
  /** Hints skipped because too many were in flight. */
  skipped = 0;

  constructor(
    private readonly inner: HintSender,
    private readonly maxInflight: number,
  ) {}

  prepare(url: string, txId: string, deadline: number): Promise<HintResult> {
    return this.capped(() => this.inner.prepare(url, txId, deadline));
  }

  decision(url: string, txId: string, decision: Decision): Promise<HintResult> {
    return this.capped(() => this.inner.decision(url, txId, decision));
  }

  private async capped(call: () => Promise<HintResult>): Promise<HintResult> {
    if (this.inflight >= this.maxInflight) {
      this.skipped++;
      return { ok: false, skipped: true, error: 'too many hints in flight' };
    }
    this.inflight++;
    try {
      return await call();
    } catch (e) {
      return { ok: false, error: String(e) }; // a sender that breaks its promise still never fails a caller
    } finally {
      this.inflight--;
    }
  }
}
