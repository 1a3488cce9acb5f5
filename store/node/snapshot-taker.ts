/**
 * When a node takes its own Raft snapshot, and how it makes it durable. The
 * Ready loop (node.ts) tells it what was applied and asks it after each
 * batch; it takes one every `snapshotEveryEntries` applied entries, or, when
 * the on-disk engine is the snapshot (streams), every `snapshotEveryBytes`
 * of entries. The image is captured synchronously (it must match the
 * applied index), but the file write, fsyncs and WAL release run beside the
 * Ready loop: awaiting them in the loop held back heartbeats long enough to
 * cost the cluster its leader.
 */
import { entryBytes, type Entry, type RawNode, type Snapshot } from '../raft/index.js';
import type { NodeConfig } from './config.js';
import type { RaftLogStore, SnapshotStore } from './io.js';

export interface SnapshotTakerHost {
  readonly cfg: NodeConfig;
  readonly raw: RawNode;
  readonly snapshots: SnapshotStore;
  readonly log: RaftLogStore;
  /** True when the on-disk engine is the snapshot (streams): no copy of the state is made. */
  readonly external: boolean;
  /** The snapshot's data now: the state's image, or only the members when external. */
  image(): string;
  /** Makes the engine's state durable before the log behind a snapshot goes (external only). */
  flushEngine(): Promise<void>;
  halted(): boolean;
  fatal(e: unknown): void;
  taken(): void;
}

export class SnapshotTaker {
  /** Entry bytes applied since the last snapshot (snapshotEveryBytes). */
  private bytesSince = 0;
  /** A snapshot is being written beside the Ready loop; the next waits for it. */
  private savingNow = false;

  constructor(
    private readonly host: SnapshotTakerHost,
    private lastIndex: number,
  ) {}

  get saving(): boolean {
    return this.savingNow;
  }

  applied(e: Entry): void {
    this.bytesSince += entryBytes(e);
  }

  /** A snapshot from the leader was installed at `index`. */
  installed(index: number): void {
    this.lastIndex = index;
  }

  maybeTake(appliedIndex: number): void {
    const { cfg, external } = this.host;
    if (this.savingNow) return;
    const byEntries = appliedIndex - this.lastIndex >= cfg.snapshotEveryEntries;
    if (!byEntries && !(external && this.bytesSince >= cfg.snapshotEveryBytes)) return;
    const snap = this.host.raw.compact(this.host.image(), cfg.snapshotKeepEntries, external ? cfg.snapshotEveryBytes : undefined);
    if (!snap) return;
    this.lastIndex = snap.meta.index;
    this.bytesSince = 0;
    this.savingNow = true;
    this.persist(snap)
      .catch((e: unknown) => this.host.fatal(e))
      .finally(() => {
        this.savingNow = false;
      });
  }

  private async persist(snap: Snapshot): Promise<void> {
    const { host } = this;
    // Order matters (§7): the snapshot (and the engine's state it refers to) must be durable before the log behind it goes.
    if (host.external) await host.flushEngine();
    await host.snapshots.save(snap);
    if (host.halted()) return;
    await host.log.markSnapshot({ index: snap.meta.index, term: snap.meta.term });
    if (host.halted()) return;
    await host.log.releaseTo(snap.meta.index);
    host.taken();
  }
}
