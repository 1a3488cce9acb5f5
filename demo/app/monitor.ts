/**
 * Polls every process of the demo on a short interval, server-side, and
 * keeps the latest picture for the page: each store node's Raft status,
 * each coordinator's health (and, less often, how many transactions it
 * finds in doubt), each bank's accounts and locks, and the supervisor's
 * process list (pids, running or not), and which coordinator the others
 * elected to run the recovery sweep. One poll at a time; every request
 * has a short timeout, so a paused process shows as "not answering" instead
 * of stalling the page.
 */
import type { CoordinatorClient } from '../../client/index.js';
import { errorMessage, fetchJson } from '../common/http.js';
import type { AccountView } from '../bank/ledger.js';
import type { ControlClient } from '../supervisor/control.js';
import type { ProcessInfo } from '../supervisor/process.js';

export interface StoreNodeView {
  readonly name: string;
  readonly url: string;
  readonly up: boolean;
  readonly role: string | null;
  readonly term: number | null;
  readonly leaderId: string | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly error?: string;
}

/** A coordinator's view of the recovery sweep election (its /healthz `sweep`). */
export interface CoordinatorSweepView {
  readonly name: string;
  readonly state: string;
  readonly leading: boolean;
  readonly leader: SweepLeaderView | null;
  readonly elections: number;
}

export interface SweepLeaderView {
  readonly id: string;
  /** The election revision of the leader's candidate key. */
  readonly term: number;
  /** The same revision, as the fencing token its fenced writes would carry. */
  readonly token: number;
}

export interface CoordinatorView {
  readonly name: string;
  readonly url: string;
  readonly up: boolean;
  readonly liveTransactions: number | null;
  /** Null when down, or when it runs without --sweep-election. */
  readonly sweep: CoordinatorSweepView | null;
  readonly error?: string;
}

/** The page's recovery sweep panel: who the coordinators elected, and the leaders seen so far. */
export interface SweepPanelView {
  readonly election: string | null;
  readonly leader: SweepLeaderView | null;
  /** True when the leader itself answered and says it leads; false while only others' (possibly stale) word names it. */
  readonly confirmed: boolean;
  /** Leaders seen since the app started, oldest first (the last SWEEP_HISTORY_MAX). */
  readonly history: readonly (SweepLeaderView & { readonly at: number })[];
}

export interface BankView {
  readonly name: string;
  readonly url: string;
  readonly up: boolean;
  /** Last known accounts (kept while the bank is down, marked stale). */
  readonly accounts: readonly AccountView[];
  readonly stale: boolean;
  readonly total: number | null;
  readonly openingTotal: number | null;
  readonly holds: number | null;
  readonly readLocks: number | null;
  /** Transactions this bank voted "yes" on and has not applied yet. */
  readonly inDoubt: number | null;
  readonly error?: string;
}

export interface SystemView {
  readonly at: number;
  readonly store: readonly StoreNodeView[];
  readonly coordinators: readonly CoordinatorView[];
  readonly banks: readonly BankView[];
  /** Null when the app runs without the supervisor's control API. */
  readonly processes: readonly ProcessInfo[] | null;
  /** In-doubt transactions a coordinator's listing found (polled every few ticks); null if none answered. */
  readonly coordinatorInDoubt: number | null;
  readonly sweep: SweepPanelView;
}

export interface MonitorOptions {
  readonly storeEndpoints: readonly string[];
  readonly coordinators: readonly string[];
  /** The SDK client over the same coordinators, for the in-doubt listing. */
  readonly client: CoordinatorClient;
  readonly banks: ReadonlyMap<string, string>;
  readonly control?: ControlClient;
  readonly intervalMs?: number;
}

const REQUEST_TIMEOUT_MS = 800;
/** Sweep leaders kept for the panel. */
const SWEEP_HISTORY_MAX = 8;
/** The in-doubt listing scans the store: every few ticks is enough. */
const IN_DOUBT_EVERY_TICKS = 4;

export class Monitor {
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private ticks = 0;
  private readonly listeners = new Set<(v: SystemView) => void>();
  private readonly names = new Map<string, string>();
  private readonly lastBanks = new Map<string, BankView>();
  private inDoubt: number | null = null;
  private readonly sweepHistory: (SweepLeaderView & { at: number })[] = [];
  latest: SystemView;

  constructor(private readonly opts: MonitorOptions) {
    this.latest = { at: Date.now(), store: [], coordinators: [], banks: [], processes: null, coordinatorInDoubt: null, sweep: { election: null, leader: null, confirmed: false, history: [] } };
  }

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.opts.intervalMs ?? 500);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.listeners.clear();
  }

  onUpdate(listener: (v: SystemView) => void): void {
    this.listeners.add(listener);
  }

  /** The account ids of a bank as last seen; undefined if it never answered. */
  accountsOf(bank: string): readonly string[] | undefined {
    return this.lastBanks.get(bank)?.accounts.map((a) => a.id);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const listInDoubt = this.ticks++ % IN_DOUBT_EVERY_TICKS === 0;
      const [store, coordinators, banks, processes] = await Promise.all([
        Promise.all(this.opts.storeEndpoints.map((u, i) => this.storeNode(u, i))),
        Promise.all(this.opts.coordinators.map((u, i) => this.coordinator(u, i))),
        Promise.all([...this.opts.banks].map(([name, url]) => this.bank(name, url))),
        this.opts.control?.processes(REQUEST_TIMEOUT_MS).catch(() => null) ?? Promise.resolve(null),
      ]);
      if (listInDoubt) this.inDoubt = await this.coordinatorInDoubt();
      this.latest = { at: Date.now(), store, coordinators, banks, processes, coordinatorInDoubt: this.inDoubt, sweep: this.sweepPanel(coordinators) };
      for (const l of this.listeners) l(this.latest);
    } finally {
      this.polling = false;
    }
  }

  private async storeNode(url: string, i: number): Promise<StoreNodeView> {
    const a = await fetchJson(`${url}/v1/status`, { timeoutMs: REQUEST_TIMEOUT_MS });
    if (a.status !== 200) return { name: this.names.get(url) ?? `n${i + 1}`, url, up: false, role: null, term: null, leaderId: null, commitIndex: null, appliedIndex: null, error: errorMessage(a) };
    const s = a.body as { id: string; role: string; term: number; leaderId: string | null; commitIndex: number; appliedIndex: number };
    this.names.set(url, s.id);
    return { name: s.id, url, up: true, role: s.role, term: s.term, leaderId: s.leaderId, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex };
  }

  private async coordinator(url: string, i: number): Promise<CoordinatorView> {
    const a = await fetchJson(`${url}/healthz`, { timeoutMs: REQUEST_TIMEOUT_MS });
    if (a.status !== 200) return { name: this.names.get(url) ?? `c${i + 1}`, url, up: false, liveTransactions: null, sweep: null, error: errorMessage(a) };
    const h = a.body as { id: string; liveTransactions: number; sweep?: CoordinatorSweepView };
    this.names.set(url, h.id);
    const s = h.sweep;
    const sweep = s === undefined ? null : { name: s.name, state: s.state, leading: s.leading, leader: s.leader, elections: s.elections };
    return { name: h.id, url, up: true, liveTransactions: h.liveTransactions, sweep };
  }

  /**
   * The leader is the coordinator that says it leads (the newest token if,
   * for a moment, two do: a paused leader that has not noticed its loss);
   * with none, the newest leader any coordinator still reports, unconfirmed
   * (the leader was just killed and its lease has not expired yet).
   */
  private sweepPanel(coordinators: readonly CoordinatorView[]): SweepPanelView {
    const views = coordinators.flatMap((c) => (c.sweep === null ? [] : [c.sweep]));
    const newest = (ls: readonly (SweepLeaderView | null)[]): SweepLeaderView | null =>
      ls.reduce<SweepLeaderView | null>((best, l) => (l !== null && (best === null || l.token > best.token) ? l : best), null);
    const claimed = newest(views.filter((v) => v.leading).map((v) => v.leader));
    const leader = claimed ?? newest(views.map((v) => v.leader));
    const last = this.sweepHistory[this.sweepHistory.length - 1];
    if (leader !== null && claimed !== null && (last === undefined || last.token !== leader.token)) {
      this.sweepHistory.push({ ...leader, at: Date.now() });
      if (this.sweepHistory.length > SWEEP_HISTORY_MAX) this.sweepHistory.shift();
    }
    return { election: views[0]?.name ?? null, leader, confirmed: claimed !== null, history: [...this.sweepHistory] };
  }

  private async bank(name: string, url: string): Promise<BankView> {
    const a = await fetchJson(`${url}/v1/summary`, { timeoutMs: REQUEST_TIMEOUT_MS });
    if (a.status !== 200) {
      const last = this.lastBanks.get(name);
      return { name, url, up: false, accounts: last?.accounts ?? [], stale: true, total: null, openingTotal: last?.openingTotal ?? null, holds: null, readLocks: null, inDoubt: null, error: errorMessage(a) };
    }
    const s = a.body as { accounts: AccountView[]; total: number; openingTotal: number; holds: number; readLocks: number; inDoubt: number };
    const view: BankView = { name, url, up: true, accounts: s.accounts, stale: false, total: s.total, openingTotal: s.openingTotal, holds: s.holds, readLocks: s.readLocks, inDoubt: s.inDoubt };
    this.lastBanks.set(name, view);
    return view;
  }

  /** The in-doubt listing of the first coordinator that answers (the SDK fails over); null if none does. */
  private async coordinatorInDoubt(): Promise<number | null> {
    try {
      return (await this.opts.client.list({ state: 'in-doubt', limit: 100 }, { timeoutMs: REQUEST_TIMEOUT_MS, attempts: this.opts.coordinators.length })).transactions.length;
    } catch {
      return null;
    }
  }
}
