// Goal: the smallest end-to-end check of the Raft core through the harness —
// a three-node cluster elects one leader, commits proposals on every peer,
// and a single-node cluster commits on its own.
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.js';

describe('raft smoke', () => {
  it('elects a leader and replicates proposals to all peers', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.node('a').campaign();
    c.stabilize();
    expect(c.leader()).toBe('a');
    // The cheap getters a store node reads per request agree with the full status.
    for (const id of ['a', 'b', 'c']) {
      const st = c.node(id).status();
      expect([c.node(id).role, c.node(id).leaderId]).toEqual([st.role, st.leaderId]);
    }
    expect(c.node('b').role).toBe('follower');
    expect(c.node('b').leaderId).toBe('a');
    for (let i = 0; i < 10; i++) expect(c.node('a').propose(`v${i}`).ok).toBe(true);
    c.stabilize();
    for (const id of ['a', 'b', 'c']) {
      expect(c.peer(id).app.count).toBe(10);
      expect(c.peer(id).app.digest).toBe(c.peer('a').app.digest);
    }
  });

  it('a single node elects itself and commits alone', () => {
    const c = new Cluster(['solo']);
    c.node('solo').campaign();
    c.stabilize();
    expect(c.leader()).toBe('solo');
    expect(c.node('solo').propose('x').ok).toBe(true);
    c.stabilize();
    expect(c.peer('solo').app.count).toBe(1);
  });
});
