/**
 * A participant's durable local log in the simulation, with the semantics
 * of participant/log.ts (same records, same refusals, same assertions) and
 * an explicit disk:
 *
 * - a write changes what the process sees at once (lowdb's `db.data`), and
 *   reaches the disk only when its fsync completes, `fsyncMs` later; writes
 *   complete in the order they were made (one temp file, renamed in turn);
 * - the caller hears of a write (its `logged` event) only once it is on disk;
 * - a crash loses every write whose fsync had not completed, and the
 *   restarted process reads back exactly the disk.
 */
import { assert } from '../../lib/assert.js';
import type { Decision, JsonValue, VoteValue } from '../../coordinator/protocol/kernel.js';
import type { LogRecord, LoggedVote } from '../../participant/log.js';
import type { Proc } from './world.js';

export type LogWrite =
  | { readonly type: 'work'; readonly work: JsonValue }
  | { readonly type: 'vote'; readonly vote: VoteValue; readonly reason?: string }
  | { readonly type: 'applied'; readonly decision: Decision }
  | { readonly type: 'acked' };

/** A refused write (participant/log.ts answers these with a ParticipantLogError and writes nothing). */
export interface LogRefusal {
  readonly refused: 'tx_not_active' | 'work_conflict';
}

export class SimLog {
  private readonly disk = new Map<string, LogRecord>();
  private memory = new Map<string, LogRecord>();
  /** When the last write in flight reaches the disk (writes complete in order). */
  private lastDurableAtMs = 0;

  /** At process start: what the process sees is what the disk holds. */
  reopen(): void {
    this.memory = new Map(this.disk);
    this.lastDurableAtMs = 0;
  }

  get(txId: string): LogRecord | undefined {
    return this.memory.get(txId);
  }

  /** The disk, for the checker (what a crash right now would leave). */
  durable(txId: string): LogRecord | undefined {
    return this.disk.get(txId);
  }

  /** Every record, oldest first (participant/log.ts `list`). */
  list(): LogRecord[] {
    return [...this.memory.values()].sort((a, b) => a.receivedAt - b.receivedAt || (a.txId < b.txId ? -1 : 1));
  }

  unfinished(): LogRecord[] {
    return this.list().filter((r) => r.ackedAt === undefined);
  }

  /**
   * Applies `w` to the record of `txId` in memory, then calls `done` with the
   * record once it is durable (or at once, on the next event, when nothing
   * changed). A refusal is answered at once and writes nothing.
   */
  write(proc: Proc, txId: string, w: LogWrite, nowMs: number, fsyncMs: number, done: (r: LogRecord | LogRefusal) => void): void {
    const next = this.next(txId, w, nowMs);
    if ('refused' in next || next === this.memory.get(txId)) {
      proc.after(0, () => done(next));
      return;
    }
    this.memory.set(txId, next);
    const now = proc.simMs;
    this.lastDurableAtMs = Math.max(now, this.lastDurableAtMs) + fsyncMs;
    // Tied to the incarnation: a crash before the fsync completes loses the write.
    proc.after(this.lastDurableAtMs - now, () => {
      this.disk.set(txId, next);
      done(next);
    });
  }

  /** The record after `w`, with participant/log.ts's checks; the same object when nothing changes. */
  private next(txId: string, w: LogWrite, nowMs: number): LogRecord | LogRefusal {
    const old = this.memory.get(txId);
    switch (w.type) {
      case 'work': {
        if (old === undefined) return { txId, work: w.work, receivedAt: nowMs };
        if (old.vote !== undefined || old.applied !== undefined) return { refused: 'tx_not_active' };
        if (JSON.stringify(old.work) !== JSON.stringify(w.work)) return { refused: 'work_conflict' };
        return old;
      }
      case 'vote': {
        const base = old ?? { txId, work: null, receivedAt: nowMs };
        if (base.vote !== undefined) {
          assert(base.vote.vote === w.vote, `tx ${txId}: logged vote ${base.vote.vote} cannot become ${w.vote}`);
          return base;
        }
        assert(w.vote === 'no' || base.work !== null, `tx ${txId}: a yes vote needs work`);
        const vote: LoggedVote = w.reason === undefined ? { vote: w.vote, at: nowMs } : { vote: w.vote, reason: w.reason, at: nowMs };
        return { ...base, vote };
      }
      case 'applied': {
        const base = old ?? { txId, work: null, receivedAt: nowMs };
        if (base.applied !== undefined) {
          assert(base.applied.decision === w.decision, `tx ${txId}: applied ${base.applied.decision} cannot become ${w.decision}`);
          return base;
        }
        assert(w.decision === 'abort' || base.vote?.vote === 'yes', `tx ${txId}: commit applied without a logged yes`);
        return { ...base, applied: { decision: w.decision, at: nowMs } };
      }
      case 'acked': {
        assert(old?.applied !== undefined, `tx ${txId}: ack recorded before the decision was applied`);
        return old.ackedAt !== undefined ? old : { ...old, ackedAt: nowMs };
      }
    }
  }
}
