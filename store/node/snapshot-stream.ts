/**
 * The node's part in snapshot streams (snapshot-offers.ts has the protocol):
 * on the leader, a Raft snapshot message leaving for a follower is rewritten
 * to name an offer of the on-disk state; on the follower, such a message
 * starts a pull into a side store and is held back from Raft until the pull
 * is complete, so Raft installs the snapshot only once the state is there.
 * One pull at a time; messages naming the offer being pulled are dropped
 * (the leader repeats them while it waits), a failed pull is forgotten.
 */
import type { Logger } from '../../lib/logger.js';
import type { Timers } from '../../lib/timers.js';
import type { KvStateMachine } from '../kv/index.js';
import type { KeyStore } from '../kv/keystore.js';
import type { Message, NodeId, SnapshotRequest } from '../raft/index.js';
import type { MemberAddress } from './config.js';
import { decodeImage, encodeExternalImage } from './image.js';
import type { SideKeyStore, SnapshotStreamIo } from './io.js';
import { SnapshotOffers, type StreamDescriptor } from './snapshot-offers.js';
import { pullSnapshot } from './snapshot-pull.js';
import { MEMBERS_AUX } from './startup.js';

export interface StreamHost {
  readonly id: NodeId;
  kv(): KvStateMachine;
  keys(): KeyStore;
  members(): readonly MemberAddress[];
}

/** A pulled state, ready for the node to swap in. */
export interface PulledState {
  readonly side: SideKeyStore;
  readonly message: SnapshotRequest;
  readonly appliedIndex: number;
}

export class SnapshotStreamer {
  readonly offers: SnapshotOffers;
  private pulling: { readonly id: string; readonly abort: AbortController } | undefined;
  private pulled: PulledState | undefined;
  /** Pulls completed and failed (metrics). */
  readonly counts = { pulled: 0, failed: 0 };

  constructor(
    private readonly io: SnapshotStreamIo,
    private readonly timers: Timers,
    private readonly host: StreamHost,
    private readonly log: Logger,
    /** Called when a pull completes: the node installs it at its next safe point. */
    private readonly onPulled: () => void,
  ) {
    this.offers = new SnapshotOffers(timers);
  }

  /** Leader: a snapshot message names an offer of the on-disk state; undefined drops it (too many offers; Raft asks again). */
  outgoing(m: Message): Message | undefined {
    if (m.type !== 'snap') return m;
    const members = this.host.members();
    const self = members.find((x) => x.id === this.host.id);
    if (self === undefined) return undefined;
    const stream = this.offers.offer(m.to, self.clientUrl, () => {
      const kv = this.host.kv();
      const view = this.host.keys().openView?.();
      if (view === undefined) throw new Error('snapshot streams need a key store with read views');
      return { appliedIndex: kv.appliedIndex, state: kv.stateImage({ [MEMBERS_AUX]: JSON.stringify(members) }), view };
    });
    if (stream === undefined) return undefined;
    return { ...m, snapshot: { meta: m.snapshot.meta, data: encodeExternalImage(members, stream) } };
  }

  /** Follower: true when the message was taken here (a pull started, or one is running). */
  incoming(m: Message): boolean {
    if (m.type !== 'snap') return false;
    const stream = decodeImage(m.snapshot.data).stream;
    if (stream === undefined) return false;
    // The state here already covers the snapshot (a pull from an earlier leader, or the log): Raft installs it
    // as it is, and the entries after it that this node holds are skipped. Pulling again would chase every
    // new leader's newer offer.
    if (m.snapshot.meta.index <= this.host.kv().appliedIndex) return false;
    if (this.pulling !== undefined || this.pulled !== undefined) return true;
    const abort = new AbortController();
    this.pulling = { id: stream.id, abort };
    void this.pull(stream, m, abort.signal);
    return true;
  }

  get hasPulled(): boolean {
    return this.pulled !== undefined;
  }

  /** The completed pull, once: the node swaps it in. */
  take(): PulledState | undefined {
    const p = this.pulled;
    this.pulled = undefined;
    return p;
  }

  async stop(): Promise<void> {
    this.pulling?.abort.abort();
    this.offers.closeAll();
    this.io.http.close();
    await this.take()?.side.discard();
  }

  private async pull(stream: StreamDescriptor, message: SnapshotRequest, signal: AbortSignal): Promise<void> {
    const startedMs = this.timers.monotonicMs();
    let side: SideKeyStore | undefined;
    try {
      side = await this.io.openSide();
      const { keys, pages } = await pullSnapshot(stream, side.keys, { http: this.io.http, timers: this.timers, signal });
      this.log('info', 'snapshot stream pulled', { from: message.from, appliedIndex: stream.appliedIndex, keys, pages, ms: Math.round(this.timers.monotonicMs() - startedMs) });
      this.pulled = { side, message, appliedIndex: stream.appliedIndex };
      this.counts.pulled++;
      this.onPulled();
    } catch (e) {
      this.counts.failed++;
      this.log('warn', 'snapshot stream pull failed; the next snapshot message starts again', { from: message.from, error: e });
      await side?.discard().catch(() => undefined);
    } finally {
      this.pulling = undefined;
    }
  }
}
