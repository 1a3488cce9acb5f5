/**
 * What the page shows, composed from the monitor (processes), the feed
 * (transactions), the load runner and the audits; and the auditor, which
 * runs one audit at a time (from the button, the CLI, or every few seconds).
 *
 * Two totals, on purpose: the live sum of polled balances is read bank by
 * bank at slightly different moments, so it can be off by the transfers in
 * flight between two reads; the audited total is read under read locks in
 * every bank at once, so it is exact. Conservation is checked on the latter.
 */
import type { FeedCounts, FeedTx, TxFeed } from './feed.js';
import type { LoadRunner, LoadStats } from './load.js';
import type { Monitor, SystemView } from './monitor.js';
import type { AuditOutcome, TransferService } from './transfers.js';

export class Auditor {
  private running: Promise<AuditOutcome> | undefined;
  last: AuditOutcome | null = null;
  /** Error of the last audit that got no outcome at all. */
  lastError: string | null = null;

  constructor(private readonly transfers: TransferService) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Runs an audit, or joins the one running. */
  run(maxAttempts: number): Promise<AuditOutcome> {
    if (this.running !== undefined) return this.running;
    const p = this.transfers.audit(maxAttempts).then(
      (o) => {
        this.last = o;
        this.lastError = null;
        return o;
      },
      (e: unknown) => {
        this.lastError = e instanceof Error ? e.message : String(e);
        throw e;
      },
    );
    this.running = p;
    void p.catch(() => undefined).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    return p;
  }
}

export interface PageState extends SystemView {
  /** Sum of every bank's opening balances: the total that must never change (null until every bank answered once). */
  readonly expectedTotal: number | null;
  /** Sum of the balances as polled (null while a bank does not answer). */
  readonly liveTotal: number | null;
  /** Prepared transfers holding accounts now, over the banks that answered. */
  readonly holds: number;
  readonly audit: AuditOutcome | null;
  readonly auditRunning: boolean;
  readonly auditError: string | null;
  readonly transactions: readonly FeedTx[];
  readonly txCounts: FeedCounts;
  /** In-doubt transactions: in the feed, at the banks (voted yes, not applied), and per a coordinator's listing. */
  readonly inDoubt: { readonly feed: number; readonly banks: number; readonly coordinators: number | null };
  readonly load: LoadStats;
  /** Whether the kill and restart buttons can work (the app has the supervisor's control API). */
  readonly controllable: boolean;
}

export function pageState(parts: { monitor: Monitor; feed: TxFeed; load: LoadRunner; auditor: Auditor; controllable: boolean }): PageState {
  const sys = parts.monitor.latest;
  const now = Date.now();
  const transactions = parts.feed.view(now);
  const opening = sys.banks.map((b) => b.openingTotal);
  const totals = sys.banks.map((b) => b.total);
  return {
    ...sys,
    expectedTotal: opening.length > 0 && opening.every((t) => t !== null) ? (opening as number[]).reduce((a, b) => a + b, 0) : null,
    liveTotal: totals.length > 0 && totals.every((t) => t !== null) ? (totals as number[]).reduce((a, b) => a + b, 0) : null,
    holds: sys.banks.reduce((s, b) => s + (b.holds ?? 0), 0),
    audit: parts.auditor.last,
    auditRunning: parts.auditor.busy,
    auditError: parts.auditor.lastError,
    transactions,
    txCounts: parts.feed.totals,
    inDoubt: {
      feed: transactions.filter((t) => t.inDoubt).length,
      banks: sys.banks.reduce((s, b) => s + (b.inDoubt ?? 0), 0),
      coordinators: sys.coordinatorInDoubt,
    },
    load: parts.load.stats(),
    controllable: parts.controllable,
  };
}
