/**
 * What one Ready makes durable before the driver acknowledges it (node.ts's
 * loop): the snapshot, then the entries with the hard state. A hard state
 * that changes only `commit` needs no fsync of its own (etcd's MustSync):
 * the commit index is volatile in Raft, a restart clamps it to the snapshot
 * (RaftLog), and it is written with the next save. This takes one fsync off
 * every write's path on the leader and on each follower.
 */
import type { HardState, Ready } from '../raft/index.js';
import type { NodeIo, RaftLogStore } from './io.js';

export class ReadyPersister {
  /** The hard state last made durable by this process (undefined: not known yet). */
  private saved: HardState | undefined;
  /** A commit-only hard state change not yet written; rides along with the next save. */
  private deferred: HardState | undefined;

  constructor(
    private readonly log: RaftLogStore,
    private readonly snapshots: NodeIo['snapshots'],
    /** crash() was called: stop between the writes. */
    private readonly halted: () => boolean,
  ) {}

  async persist(rd: Ready): Promise<void> {
    if (rd.snapshot) {
      await this.snapshots.save(rd.snapshot);
      if (this.halted()) return;
      await this.log.markSnapshot({ index: rd.snapshot.meta.index, term: rd.snapshot.meta.term });
      if (this.halted()) return;
    }
    let hs = rd.hardState;
    if (hs && rd.entries.length === 0 && !this.changesTermOrVote(hs)) {
      this.deferred = hs;
      hs = undefined;
    }
    if (rd.entries.length > 0 || hs) {
      const toSave = hs ?? this.deferred;
      await this.log.save(rd.entries, toSave);
      if (toSave) {
        this.saved = toSave;
        this.deferred = undefined;
      }
    }
  }

  /** Whether `hs` must be durable before anything of its Ready is sent. */
  changesTermOrVote(hs: HardState | undefined): boolean {
    if (!hs) return false;
    const saved = this.saved;
    return saved === undefined || saved.term !== hs.term || saved.vote !== hs.vote;
  }
}

/** Every committed entry of the Ready was persisted by an earlier Ready, and none is a conf change. */
export function committedAreStable(rd: Ready): boolean {
  const committed = rd.committedEntries;
  const last = committed[committed.length - 1];
  if (last === undefined || rd.snapshot) return false;
  const firstNew = rd.entries[0];
  if (firstNew !== undefined && firstNew.index <= last.index) return false;
  return committed.every((e) => e.type !== 'conf');
}
