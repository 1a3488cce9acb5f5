// Goal: the majority arithmetic every Raft decision rests on (§5.2 elections,
// §5.3/§5.4 commitment): quorum sizes, the index a majority has reached, and
// the outcome of a vote count, including even-sized clusters and empty sets.
import { describe, expect, it } from 'vitest';
import { majorityValue, quorumSize, voteOutcome } from '../../store/raft/quorum.js';

describe('quorum', () => {
  it('a quorum is a strict majority of the voters', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorumSize)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  const values: { match: number[]; want: number }[] = [
    { match: [], want: 0 },
    { match: [5], want: 5 },
    { match: [1, 2], want: 1 },
    { match: [1, 2, 3], want: 2 },
    { match: [3, 1, 2], want: 2 },
    { match: [1, 2, 3, 4], want: 2 }, // 3 of 4 needed
    { match: [4, 4, 1, 1], want: 1 },
    { match: [5, 5, 5, 0, 0], want: 5 },
    { match: [5, 5, 0, 0, 0], want: 0 },
    { match: [9, 8, 7, 6, 5], want: 7 },
  ];
  for (const tc of values) {
    it(`the highest index on a majority of [${tc.match.join(' ')}] is ${tc.want}`, () => {
      const voters = tc.match.map((_, i) => `n${i}`);
      expect(majorityValue(voters, (id) => tc.match[Number(id.slice(1))] ?? -1)).toBe(tc.want);
    });
  }

  const outcomes: { voters: number; yes: number; no: number; want: string }[] = [
    { voters: 1, yes: 1, no: 0, want: 'won' },
    { voters: 1, yes: 0, no: 1, want: 'lost' },
    { voters: 3, yes: 1, no: 0, want: 'pending' },
    { voters: 3, yes: 2, no: 0, want: 'won' },
    { voters: 3, yes: 1, no: 1, want: 'pending' },
    { voters: 3, yes: 1, no: 2, want: 'lost' },
    { voters: 4, yes: 2, no: 0, want: 'pending' },
    { voters: 4, yes: 2, no: 2, want: 'lost' }, // a tie in an even cluster loses
    { voters: 4, yes: 3, no: 1, want: 'won' },
    { voters: 5, yes: 2, no: 2, want: 'pending' },
    { voters: 5, yes: 3, no: 2, want: 'won' },
    { voters: 5, yes: 2, no: 3, want: 'lost' },
  ];
  for (const tc of outcomes) {
    it(`${tc.voters} voters, ${tc.yes} yes and ${tc.no} no: ${tc.want}`, () => {
      const voters = new Set(Array.from({ length: tc.voters }, (_, i) => `n${i}`));
      const votes = new Map<string, boolean>();
      for (let i = 0; i < tc.yes; i++) votes.set(`n${i}`, true);
      for (let i = tc.yes; i < tc.yes + tc.no; i++) votes.set(`n${i}`, false);
      expect(voteOutcome(voters, votes)).toBe(tc.want);
    });
  }

  it('votes from non-voters (learners, removed members) do not count', () => {
    const voters = new Set(['a', 'b', 'c']);
    const votes = new Map([
      ['a', true],
      ['learner', true],
      ['gone', true],
    ]);
    expect(voteOutcome(voters, votes)).toBe('pending');
    votes.set('b', true);
    expect(voteOutcome(voters, votes)).toBe('won');
    const rejects = new Map([
      ['x', false],
      ['y', false],
      ['a', true],
    ]);
    expect(voteOutcome(voters, rejects)).toBe('pending');
  });
});
