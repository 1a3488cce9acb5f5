/**
 * The cluster's members as this node knows them: their addresses, kept in
 * step with the transport's peers, changed by applied membership entries
 * and replaced by an installed snapshot. An on-disk state machine keeps them
 * with its state (the aux entry MEMBERS_AUX), so a node reopened at its
 * applied index knows the members of that index.
 */
import type { KvStateMachine } from '../kv/index.js';
import type { ConfChange, Entry, NodeId } from '../raft/index.js';
import type { MemberAddress } from './config.js';
import type { PeerTransport } from './io.js';
import { MEMBERS_AUX } from './startup.js';

export class Members {
  private readonly byId = new Map<NodeId, MemberAddress>();

  constructor(private readonly transport: Pick<PeerTransport, 'setPeer' | 'removePeer'>) {}

  get(id: NodeId): MemberAddress | undefined {
    return this.byId.get(id);
  }

  list(): MemberAddress[] {
    return [...this.byId.values()];
  }

  /** Replaces the whole table (a snapshot, a reopened or pulled state). */
  replace(members: readonly MemberAddress[]): void {
    this.byId.clear();
    for (const m of members) this.set(m);
  }

  /** An applied membership entry (idempotent: applying it again changes nothing). */
  apply(e: Entry): void {
    const cc = JSON.parse(e.data) as ConfChange;
    if (cc.op === 'remove') {
      this.byId.delete(cc.id);
      this.transport.removePeer(cc.id);
    } else if (cc.context !== undefined) {
      this.set(JSON.parse(cc.context) as MemberAddress);
    }
  }

  /** Inside a KV batch: an on-disk store keeps the members with the state they belong to. */
  record(kv: KvStateMachine): void {
    kv.setAux(MEMBERS_AUX, JSON.stringify(this.list()));
  }

  /** The members an on-disk state machine kept, if it was reopened with some. */
  static fromAux(kv: KvStateMachine): MemberAddress[] | undefined {
    const text = kv.reopenedAux[MEMBERS_AUX];
    return text === undefined ? undefined : (JSON.parse(text) as MemberAddress[]);
  }

  private set(m: MemberAddress): void {
    this.byId.set(m.id, m);
    this.transport.setPeer(m.id, m.peerAddress);
  }
}
