/**
 * What a run records while it goes: every transfer and audit as the client
 * saw it, every fault with when it began and healed, and periodic progress.
 * Times are milliseconds since the run's start on the monotonic clock. These
 * series are the report's raw data (written as JSON beside the HTML page).
 */
import type { AccountRef, AuditRead, ClientOutcome } from './bank-client.js';
import type { FaultKind } from './options.js';
import type { Lane } from './schedule.js';

export interface TransferRecord {
  readonly n: number;
  readonly txId: string;
  readonly from: AccountRef;
  readonly to: AccountRef;
  readonly amount: number;
  /** When the client began it, and when it had its answer. */
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: ClientOutcome;
  readonly commitMs: number | null;
  readonly note?: string;
}

export interface AuditRecord {
  readonly n: number;
  readonly txId: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: ClientOutcome;
  /** Sum over every bank's read; null unless the audit committed and every read was fetched. */
  readonly total: number | null;
  readonly reads: readonly AuditRead[] | null;
}

export interface FaultRecord {
  readonly lane: Lane;
  readonly kind: FaultKind;
  /** The process it hit (the leader resolved to its name). */
  readonly target: string;
  readonly description: string;
  readonly startMs: number;
  /** When lifting began (restart, SIGCONT, partition cleared); null while in force. */
  endMs: number | null;
  /** When the lane saw the system whole again after it; null if it never did within the bound. */
  healedMs: number | null;
  note?: string;
}

export interface ProgressPoint {
  readonly t: number;
  readonly transfers: number;
  readonly committed: number;
  readonly aborted: number;
  readonly unknown: number;
  readonly audits: number;
  readonly faults: readonly string[];
}

export interface Violation {
  readonly check: string;
  readonly message: string;
  readonly txId?: string;
}

export class RunRecord {
  readonly transfers: TransferRecord[] = [];
  readonly audits: AuditRecord[] = [];
  readonly faults: FaultRecord[] = [];
  readonly progress: ProgressPoint[] = [];
  readonly violations: Violation[] = [];
  /** Faults in force now, for the progress line. */
  readonly active = new Set<FaultRecord>();
  private readonly t0 = performance.now();

  /** Milliseconds since the run started. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** Monotonic time of the run's start, for recorders that keep absolute monotonic times. */
  get startMonotonic(): number {
    return this.t0;
  }

  violation(v: Violation): void {
    this.violations.push(v);
  }

  faultBegan(f: Omit<FaultRecord, 'startMs' | 'endMs' | 'healedMs'>): FaultRecord {
    const rec: FaultRecord = { ...f, startMs: this.now(), endMs: null, healedMs: null };
    this.faults.push(rec);
    this.active.add(rec);
    return rec;
  }

  /** The fault is being lifted (restart begun, SIGCONT sent, partition cleared); it stays listed until healed. */
  faultLifted(f: FaultRecord): void {
    f.endMs ??= this.now();
  }

  faultHealed(f: FaultRecord): void {
    this.faultLifted(f);
    f.healedMs = this.now();
    this.active.delete(f);
  }

  /** At the end: a fault that never healed is no longer "in force" (the final heal took over). */
  clearActive(): void {
    for (const f of this.active) this.faultLifted(f);
    this.active.clear();
  }

  counts(): { transfers: number; committed: number; aborted: number; unknown: number; audits: number } {
    let committed = 0;
    let aborted = 0;
    for (const t of this.transfers) {
      if (t.outcome === 'committed') committed++;
      else if (t.outcome === 'aborted') aborted++;
    }
    return { transfers: this.transfers.length, committed, aborted, unknown: this.transfers.length - committed - aborted, audits: this.audits.filter((a) => a.total !== null).length };
  }

  snapshotProgress(): ProgressPoint {
    const p = { t: this.now(), ...this.counts(), faults: [...this.active].map((f) => (f.endMs === null ? f.description : `${f.description} (recovering)`)) };
    this.progress.push(p);
    return p;
  }

  faultsByKind(): Record<FaultKind, number> {
    const out: Record<FaultKind, number> = { kill: 0, pause: 0, partition: 0, disk: 0 };
    for (const f of this.faults) out[f.kind]++;
    return out;
  }
}
