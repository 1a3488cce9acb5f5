/**
 * Who runs the recovery sweep (issue 18): with `sweepElection` configured,
 * every coordinator campaigns in one recipes/ `Election` on its own session
 * lease, and only the leader sweeps (recovery.ts asks `leadershipSignal`).
 *
 * - The leader's term and fencing token are its candidate key's create
 *   revision: strictly larger for each new leader.
 * - A leader that loses its session (not renewed within the TTL, or gone in
 *   the store) learns it at once through the hold's signal, so its sweep
 *   stops; it then opens a new session and queues again, behind the others.
 * - A leader that dies stops renewing; the store expires its lease after the
 *   TTL, deletes its key, and the next candidate in line leads.
 * - `stop()` closes the session (the lease is revoked): the next candidate
 *   leads at once rather than one TTL later.
 *
 * The election decides who does the work, not what is safe: every decisive
 * 2PC write is a CAS, so two sweepers (a paused leader that has not yet
 * noticed its loss, and its successor) cost duplicated reads, never a wrong
 * outcome.
 */
import type { Logger } from '../../lib/logger.js';
import type { Random } from '../../lib/random.js';
import type { Timers } from '../../lib/timers.js';
import { currentLeader, Election, Session, type LeaderInfo, type Leadership } from '../../recipes/index.js';
import type { TxStore } from '../txstore/index.js';
import type { SweepElectionConfig } from './config.js';

export interface SweepLeader {
  /** The leading coordinator's id (its campaign value). */
  readonly id: string;
  /** Its term: the create revision of its candidate key. */
  readonly term: number;
  /** Its fencing token: in this recipe the same revision as the term. */
  readonly token: number;
}

export type SweepElectionState = 'stopped' | 'opening' | 'campaigning' | 'leading';

/** What the status route and the page show. */
export interface SweepElectionStatus {
  readonly name: string;
  readonly state: SweepElectionState;
  /** Whether this coordinator leads now (and so runs the sweep). */
  readonly leading: boolean;
  /** The leader as last seen: this coordinator while it leads, else the store's (polled); null if none seen. */
  readonly leader: SweepLeader | null;
  /** Times this coordinator was elected since it started. */
  readonly elections: number;
  /** Times it lost a leadership other than by stopping. */
  readonly losses: number;
  readonly ttlMs: number;
}

export interface SweepElectionDeps {
  readonly store: TxStore;
  /** This coordinator's id: the value it campaigns with. */
  readonly candidateId: string;
  readonly config: SweepElectionConfig;
  readonly timers: Timers;
  readonly random: Random;
  readonly log: Logger;
  /** Called each time this coordinator is elected (recovery.ts sweeps at once). */
  readonly onElected: () => void;
}

/** Pause between one lost or failed campaign and the next (jittered up to twice this). */
const RETRY_PAUSE_MS = 500;
/** Most often the store is asked who leads, for a follower's status. */
const MIN_OBSERVE_EVERY_MS = 200;
const MAX_OBSERVE_EVERY_MS = 1_000;
/** Longest `stop` waits for the lease to be revoked. */
const STOP_WAIT_MS = 2_000;
/** Campaign values longer than this are shown truncated (another program may share the name). */
const MAX_SHOWN_ID_CHARS = 64;

export class SweepElection {
  private readonly stopper = new AbortController();
  private readonly stopped: Promise<void>;
  private hold: Leadership | undefined;
  private state: SweepElectionState = 'stopped';
  private seen: SweepLeader | null = null;
  private loops: Promise<void>[] = [];
  elections = 0;
  losses = 0;

  constructor(private readonly deps: SweepElectionDeps) {
    this.stopped = new Promise((resolve) => this.stopper.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  /** Campaigns (and keeps campaigning after each loss) and follows the leader, until `stop`. Once. */
  start(): void {
    if (this.loops.length > 0 || this.isStopped) return;
    this.state = 'opening';
    this.loops = [this.campaignLoop(), this.observeLoop()];
  }

  /**
   * Stops campaigning; a leader gives the leadership up at once (its lease is
   * revoked). Waits (at most STOP_WAIT_MS) for the campaign to end, not for a
   * status read in flight (it ends by itself, and only sets a field).
   */
  async stop(): Promise<void> {
    this.stopper.abort();
    // Bounded: with the store unreachable the revoke cannot land, and the lease then expires by itself.
    await Promise.race([this.loops[0], this.deps.timers.sleep(STOP_WAIT_MS)]);
    this.state = 'stopped';
  }

  get leading(): boolean {
    return this.hold?.held === true;
  }

  /** While this coordinator leads: aborted the moment that leadership ends. Undefined when it does not lead. */
  get leadershipSignal(): AbortSignal | undefined {
    const h = this.hold;
    return h !== undefined && h.held ? h.signal : undefined;
  }

  status(): SweepElectionStatus {
    const c = this.deps.config;
    const mine = this.hold;
    const leader = mine !== undefined && mine.held ? { id: this.deps.candidateId, term: mine.token, token: mine.token } : this.seen;
    return { name: c.name, state: this.state, leading: this.leading, leader, elections: this.elections, losses: this.losses, ttlMs: c.ttlMs };
  }

  private get isStopped(): boolean {
    return this.stopper.signal.aborted;
  }

  private async campaignLoop(): Promise<void> {
    while (!this.isStopped) {
      try {
        await this.oneTerm();
      } catch (e) {
        if (!this.isStopped) this.deps.log('warn', 'sweep election: campaign failed; trying again', { election: this.deps.config.name, error: e });
      }
      if (this.isStopped) break;
      this.state = 'opening';
      await this.deps.timers.sleep(RETRY_PAUSE_MS * (1 + this.deps.random.float()), this.stopper.signal);
    }
  }

  /** One session: campaign, lead until the session ends or `stop`, then close it. */
  private async oneTerm(): Promise<void> {
    const { store, config, timers, random, log } = this.deps;
    const session = await Session.open({ store, ttlMs: config.ttlMs, timers, random });
    try {
      if (this.isStopped) return;
      this.state = 'campaigning';
      const hold = await new Election(session, config.name).campaign(JSON.stringify({ id: this.deps.candidateId }), { signal: this.stopper.signal });
      this.hold = hold;
      this.elections++;
      this.state = 'leading';
      this.seen = { id: this.deps.candidateId, term: hold.token, token: hold.token };
      log('info', 'elected to run the recovery sweep', { election: config.name, term: hold.token, token: hold.token, leaseId: session.leaseId });
      this.deps.onElected();
      const why = await Promise.race([hold.lost, this.stopped.then(() => null)]);
      if (why !== null) {
        this.losses++;
        log('warn', 'lost the recovery sweep leadership; the sweep stops', { election: config.name, token: hold.token, reason: why.message });
      }
    } finally {
      this.hold = undefined;
      this.state = this.isStopped ? 'stopped' : 'opening';
      await this.endSession(session);
    }
  }

  /**
   * Revokes the session's lease, so the next candidate need not wait out the
   * TTL: also after a loss this process declared on its own (a keepalive
   * unanswered for a TTL), when the store may still hold the lease.
   */
  private async endSession(session: Session): Promise<void> {
    const wasLost = session.isLost;
    await session.close();
    if (!wasLost) return;
    try {
      await this.deps.store.revokeLease(session.leaseId);
    } catch {
      // Gone already, or the store is unreachable: the lease expires on its own.
    }
  }

  /** A follower's view of the leader: the store's, asked every quarter TTL (bounded), for status only. */
  private async observeLoop(): Promise<void> {
    const c = this.deps.config;
    const everyMs = Math.min(MAX_OBSERVE_EVERY_MS, Math.max(MIN_OBSERVE_EVERY_MS, Math.floor(c.ttlMs / 4)));
    while (!this.isStopped) {
      try {
        // The leader itself needs no read: its hold says who leads.
        if (!this.leading) {
          const info = await currentLeader(this.deps.store, c.name);
          if (!this.leading) this.seen = info === null ? null : leaderOf(info);
        }
      } catch {
        // The store is unreachable: keep the last view; the campaign loop logs what matters.
      }
      await this.deps.timers.sleep(everyMs, this.stopper.signal);
    }
  }
}

/** The leader a candidate key stands for; a value that is not ours shows as itself. */
function leaderOf(info: LeaderInfo): SweepLeader {
  let id = info.value;
  try {
    const v = JSON.parse(info.value) as unknown;
    if (typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string') id = (v as { id: string }).id;
  } catch {
    // not JSON: shown as is
  }
  return { id: id.slice(0, MAX_SHOWN_ID_CHARS), term: info.revision, token: info.revision };
}
