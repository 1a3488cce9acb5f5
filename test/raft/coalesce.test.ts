// Goal: a Ready's messages coalesced (coalesce.ts) say exactly what the
// messages said one by one: a peer's neighbouring appends that continue each
// other become one append with both's entries and the later commit; its
// successful acknowledgements in one term become the highest one; anything
// else (a gap, another term, a rejection, a message in between, the caps)
// stays as it was, in each peer's order.
import { describe, expect, it } from 'vitest';
import { coalesceMessages } from '../../store/raft/coalesce.js';
import type { AppendRequest, AppendResponse, Message } from '../../store/raft/messages.js';
import type { Entry } from '../../store/raft/types.js';

const limits = { maxMsgEntries: 512, maxMsgBytes: 1 << 20 };

function entries(from: number, to: number, term = 2, data = 'x'): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: 'normal', data });
  return out;
}

function app(to: string, prevIndex: number, prevTerm: number, es: Entry[], commit: number, term = 2): AppendRequest {
  return { type: 'app', from: '1', to, term, prevIndex, prevTerm, entries: es, commit };
}

function ack(from: string, index: number, reject = false, term = 2): AppendResponse {
  return { type: 'appResp', from, to: '1', term, index, reject, hintIndex: 0, hintTerm: 0 };
}

describe('coalesceMessages', () => {
  it('merges a peer\'s appends that continue each other, entries in order and the later commit', () => {
    const out = coalesceMessages([app('2', 4, 2, entries(5, 6), 4), app('2', 6, 2, entries(7, 7), 5), app('2', 7, 2, [], 6)], limits);
    expect(out).toEqual([app('2', 4, 2, entries(5, 7), 6)]);
  });

  it('folds an empty append into the next one that starts at the same point', () => {
    expect(coalesceMessages([app('2', 6, 2, [], 4), app('2', 6, 2, entries(7, 8), 5)], limits)).toEqual([app('2', 6, 2, entries(7, 8), 5)]);
  });

  it('merges per peer and keeps each peer\'s order', () => {
    const msgs = [app('2', 4, 2, entries(5, 5), 4), app('3', 4, 2, entries(5, 5), 4), app('2', 5, 2, entries(6, 6), 4), app('3', 5, 2, entries(6, 6), 4)];
    expect(coalesceMessages(msgs, limits)).toEqual([app('2', 4, 2, entries(5, 6), 4), app('3', 4, 2, entries(5, 6), 4)]);
  });

  it('leaves appends apart that do not continue each other, or belong to another term', () => {
    const gap = [app('2', 4, 2, entries(5, 5), 4), app('2', 2, 1, entries(3, 5), 4)]; // a probe after a rejection
    expect(coalesceMessages(gap, limits)).toEqual(gap);
    const otherTerm = [app('2', 4, 2, entries(5, 5), 4), app('2', 5, 2, entries(6, 6, 3), 4, 3)];
    expect(coalesceMessages(otherTerm, limits)).toEqual(otherTerm);
    const prevTermDiffers = [app('2', 4, 2, entries(5, 5), 4), app('2', 5, 1, entries(6, 6), 4)];
    expect(coalesceMessages(prevTermDiffers, limits)).toEqual(prevTermDiffers);
  });

  it('does not merge across another message to the same peer', () => {
    const hb: Message = { type: 'heartbeat', from: '1', to: '2', term: 2, commit: 4, readSeq: 1 };
    const msgs = [app('2', 4, 2, entries(5, 5), 4), hb, app('2', 5, 2, entries(6, 6), 4)];
    expect(coalesceMessages(msgs, limits)).toEqual(msgs);
  });

  it('keeps a merged append within the per-message caps', () => {
    const msgs = [app('2', 4, 2, entries(5, 7), 4), app('2', 7, 2, entries(8, 9), 4)];
    expect(coalesceMessages(msgs, { maxMsgEntries: 4, maxMsgBytes: 1 << 20 })).toEqual(msgs);
    const bytes = 4 * (1 + 24); // four entries of one byte (entryBytes: data length + 24)
    expect(coalesceMessages(msgs.slice(0, 1).concat([app('2', 7, 2, entries(8, 8), 4)]), { maxMsgEntries: 512, maxMsgBytes: bytes })).toEqual([app('2', 4, 2, entries(5, 8), 4)]);
    expect(coalesceMessages(msgs, { maxMsgEntries: 512, maxMsgBytes: bytes })).toEqual(msgs);
  });

  it('does not change the messages it was given', () => {
    const a = app('2', 4, 2, entries(5, 5), 4);
    const b = app('2', 5, 2, entries(6, 6), 4);
    const c = app('2', 6, 2, entries(7, 7), 4);
    coalesceMessages([a, b, c], limits);
    expect(a.entries.map((e) => e.index)).toEqual([5]);
    expect(b.entries.map((e) => e.index)).toEqual([6]);
  });

  it('keeps the highest of a follower\'s successful acknowledgements, and every rejection', () => {
    expect(coalesceMessages([ack('2', 5), ack('2', 7), ack('2', 9)], limits)).toEqual([ack('2', 9)]);
    const withReject = [ack('2', 5), ack('2', 3, true), ack('2', 7)];
    expect(coalesceMessages(withReject, limits)).toEqual(withReject);
    const older = [ack('2', 7), ack('2', 5)]; // a duplicate answered late says less: both go
    expect(coalesceMessages(older, limits)).toEqual(older);
    const terms = [ack('2', 5), ack('2', 7, false, 3)];
    expect(coalesceMessages(terms, limits)).toEqual(terms);
  });
});
