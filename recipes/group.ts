/**
 * Group membership / a service registry: each member is one key
 * `{prefix}{id}` under its session's lease, so a member whose process dies
 * leaves the group within one TTL, with nobody cleaning up. `watch` yields
 * the whole membership after every change (joins, leaves, updates), starting
 * with the membership now.
 */
import type { TxStore } from '../coordinator/txstore/index.js';
import { systemTimers, type Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';
import { checkName, recipeKey } from './keys.js';
import { readLine } from './ordered.js';
import type { Session } from './session.js';
import { followPrefix, type PrefixSnapshot } from './watching.js';

export interface Member {
  readonly id: string;
  readonly value: string;
  /** When it joined (its key's create revision). */
  readonly revision: number;
}

/** One member's place in the group, for as long as its session lives. */
export class Membership {
  constructor(
    readonly group: Group,
    readonly session: Session,
    readonly id: string,
  ) {}

  get key(): string {
    return `${this.group.prefix}${this.id}`;
  }

  /** Publishes a new value (an address, a load figure). */
  async update(value: string): Promise<void> {
    this.session.check();
    await this.session.store.put(this.key, value, { lease: this.session.leaseId });
  }

  async leave(): Promise<void> {
    await this.session.store.delete(this.key);
  }
}

export class Group {
  readonly prefix: string;

  constructor(
    readonly store: TxStore,
    readonly name: string,
    readonly timers: Timers = systemTimers,
  ) {
    this.prefix = recipeKey('group', name);
  }

  /** Joins as `id`; refused (`locked`) while another live session is member `id`. */
  async join(session: Session, id: string, value: string): Promise<Membership> {
    session.check();
    const key = `${this.prefix}${checkName(id)}`;
    const r = await session.store.casCreate(key, value, { lease: session.leaseId });
    if (!r.succeeded) {
      const kv = await session.store.get(key);
      if (kv?.lease !== session.leaseId) throw new RecipeError('locked', `member ${id} of ${this.name} is taken by another session`, { id });
      await session.store.put(key, value, { lease: session.leaseId });
    }
    return new Membership(this, session, id);
  }

  async members(): Promise<Member[]> {
    const line = await readLine(this.store, this.prefix);
    return line.kvs.map((kv) => ({ id: kv.key.slice(this.prefix.length), value: kv.value, revision: kv.createRevision })).sort((a, b) => a.revision - b.revision);
  }

  /** The membership now, then after every change, until `signal` aborts. */
  async *watch(signal?: AbortSignal): AsyncGenerator<Member[]> {
    for await (const snap of followPrefix(this.store, this.prefix, this.timers, signal)) yield this.toMembers(snap);
  }

  private toMembers(snap: PrefixSnapshot): Member[] {
    return [...snap.entries].map(([key, e]) => ({ id: key.slice(this.prefix.length), value: e.value, revision: e.createRevision })).sort((a, b) => a.revision - b.revision);
  }
}
