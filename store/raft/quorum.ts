/** Majority arithmetic over a voter set (§5.2 elections, §5.3/§5.4 commitment). */
import type { NodeId } from './types.js';

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest value that a majority of voters has reached: for match indexes,
 * the highest index replicated on a majority. Empty voter sets have no quorum.
 */
export function majorityValue(voters: Iterable<NodeId>, valueOf: (id: NodeId) => number): number {
  const values: number[] = [];
  for (const id of voters) values.push(valueOf(id));
  if (values.length === 0) return 0;
  values.sort((a, b) => b - a);
  return values[quorumSize(values.length) - 1] ?? 0;
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

export function voteOutcome(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = quorumSize(voters.size);
  if (granted >= q) return 'won';
  if (voters.size - rejected < q) return 'lost';
  return 'pending';
}
