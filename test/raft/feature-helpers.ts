/**
 * Helpers the Raft feature tests share (features.test.ts,
 * features-log.test.ts): ticking a Cluster with a message filter, waiting on
 * a condition within a tick bound, partitions, a cluster with a leader.
 */
import { expect } from 'vitest';
import type { Message, NodeId, RaftConfig } from '../../store/raft/index.js';
import { Cluster } from './harness.js';

export const T = 10;

/** Tick every live peer `ticks` times, delivering what `filter` lets through after each tick. */
export function run(c: Cluster, ticks: number, filter: (m: Message) => boolean = () => true): void {
  for (let i = 0; i < ticks; i++) {
    c.tickAll(1);
    c.stabilize(10_000, filter);
  }
}

/** Tick and deliver until `done` holds (at most `max` ticks). */
export function runUntil(c: Cluster, done: () => boolean, max = 20 * T, filter: (m: Message) => boolean = () => true): void {
  for (let i = 0; i < max && !done(); i++) {
    c.tickAll(1);
    c.stabilize(10_000, filter);
  }
  expect(done()).toBe(true);
}

export const isolate =
  (...ids: NodeId[]) =>
  (m: Message): boolean =>
    ids.includes(m.from) === ids.includes(m.to);

/** A three-node cluster with `a` as leader and every entry applied everywhere. */
export function led(cfg: Partial<RaftConfig>, ids: NodeId[] = ['a', 'b', 'c'], observer = {}): Cluster {
  const c = new Cluster(ids, cfg, 1, observer);
  c.node(ids[0] as NodeId).campaign();
  c.stabilize();
  expect(c.leader()).toBe(ids[0]);
  return c;
}
