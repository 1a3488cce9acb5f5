/**
 * The leader's view of one follower's replication (etcd-io/raft's Progress):
 * probe sends one append at a time until the match point is found; replicate
 * streams appends up to a window of in-flight messages; snapshot waits for an
 * InstallSnapshot to land.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight append messages, by the last index each carried. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  /** Entry bytes of each message in flight, same positions as lastIndexes. */
  private readonly sizes: number[] = [];
  private bytes = 0;
  constructor(
    private readonly capacity: number,
    /** Entry bytes in flight past which the window is full (etcd's MaxInflightBytes). */
    private readonly capacityBytes: number = Number.MAX_SAFE_INTEGER,
  ) {}

  add(lastIndex: number, bytes = 0): void {
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message acknowledged by a response matching up to `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && (this.lastIndexes[n] as number) <= index) n++;
    if (n === 0) return;
    this.lastIndexes.splice(0, n);
    for (const size of this.sizes.splice(0, n)) this.bytes -= size;
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity || this.bytes >= this.capacityBytes;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

export class Progress {
  /** Invariant: match < next. */
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe: an append is out and we wait for its answer or a heartbeat response. */
  probeSent = false;
  /** Snapshot: the index of the snapshot in flight. */
  pendingSnapshot = 0;
  /** Heard from within the current CheckQuorum window. */
  recentActive = true;
  /** Highest ReadIndex round this follower acknowledged. */
  readAck = 0;
  /** Leader ticks while behind with no advance of match; detects a stalled pipeline after lost messages. */
  ticksSinceProgress = 0;
  readonly inflights: Inflights;

  constructor(
    next: number,
    public isLearner: boolean,
    maxInflight: number,
    maxInflightBytes?: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  /** An accepted append response; false if it is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      this.ticksSinceProgress = 0;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** A rejected append; false if the rejection is stale (it answers an older message). */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    // A follower that rejects the entry at its own match point has lost entries
    // it acknowledged (its WAL's tail was torn off after a disk lied about an
    // fsync). Probe below the old match, or it would be asked for that entry
    // forever and never replicate again. Lowering match commits nothing new.
    if (rejected === this.match && hint < this.match) this.match = hint;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  becomeProbe(): void {
    this.next = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.ticksSinceProgress = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.ticksSinceProgress = 0;
    this.inflights.reset();
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.ticksSinceProgress = 0;
    this.inflights.reset();
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** Record that an append carrying `count` entries ending at `lastIndex` went out. */
  sentEntries(count: number, lastIndex: number, bytes = 0): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }
}
