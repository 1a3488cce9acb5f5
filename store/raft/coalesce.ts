/**
 * Fewer, larger messages per Ready. Under load a leader steps one proposal at
 * a time, and each step sends every follower an append of its own; each
 * acknowledgement that moves the commit index sends every follower another,
 * empty one. A follower answers each append. Measured at 64 clients
 * (bench:store, set): about 4.5 messages to each follower per socket flush
 * (about one flush per Ready), half of them empty commit updates, and five
 * acknowledgements back per flush, each encoded, parsed and stepped on its
 * own.
 *
 * Merging is delivery of the same messages together: two appends to one peer
 * where the second continues the first are one append whose entries are
 * both's and whose commit is the later one's; two successful
 * acknowledgements from one peer in one term say no more than the later one
 * (the leader's progress moves on the highest index). Only neighbours in a
 * peer's own order merge, so nothing is reordered; a merged append stays
 * within the per-message caps.
 */
import type { AppendRequest, Message } from './messages.js';
import { entryBytes } from './log.js';
import type { Entry } from './types.js';

export interface CoalesceLimits {
  readonly maxMsgEntries: number;
  readonly maxMsgBytes: number;
}

/** The messages with each peer's neighbouring appends (and acknowledgements) merged; order per peer kept. */
export function coalesceMessages(messages: readonly Message[], limits: CoalesceLimits): Message[] {
  if (messages.length < 2) return messages as Message[];
  const out: Message[] = [];
  // Index in `out` of the last message to each peer: only that one may absorb the next.
  const lastTo = new Map<string, number>();
  // Entry arrays built here, which later merges may extend in place (linear, not quadratic).
  const owned = new WeakSet<readonly Entry[]>();
  for (const m of messages) {
    const at = lastTo.get(m.to);
    const merged = at === undefined ? undefined : merge(out[at] as Message, m, limits, owned);
    if (merged !== undefined && at !== undefined) {
      out[at] = merged;
      continue;
    }
    lastTo.set(m.to, out.length);
    out.push(m);
  }
  return out;
}

function merge(a: Message, b: Message, limits: CoalesceLimits, owned: WeakSet<readonly Entry[]>): Message | undefined {
  if (a.from !== b.from || a.term !== b.term) return undefined;
  if (a.type === 'app' && b.type === 'app') return mergeAppends(a, b, limits, owned);
  if (a.type === 'appResp' && b.type === 'appResp' && !a.reject && !b.reject && b.index >= a.index) return b;
  return undefined;
}

/** `b` continues `a` when it starts where `a`'s entries end, at the same term. */
function mergeAppends(a: AppendRequest, b: AppendRequest, limits: CoalesceLimits, owned: WeakSet<readonly Entry[]>): AppendRequest | undefined {
  const last = a.entries[a.entries.length - 1];
  const endIndex = a.prevIndex + a.entries.length;
  const endTerm = last === undefined ? a.prevTerm : last.term;
  if (b.prevIndex !== endIndex || b.prevTerm !== endTerm) return undefined;
  if (b.entries.length === 0) return { ...a, commit: Math.max(a.commit, b.commit) };
  if (a.entries.length === 0) return { ...b, commit: Math.max(a.commit, b.commit) };
  if (a.entries.length + b.entries.length > limits.maxMsgEntries) return undefined;
  if (bytesOf(a) + bytesOf(b) > limits.maxMsgBytes) return undefined;
  let entries = a.entries as Entry[];
  if (owned.has(entries)) entries.push(...b.entries);
  else {
    entries = [...a.entries, ...b.entries];
    owned.add(entries);
  }
  return { ...a, entries, commit: Math.max(a.commit, b.commit) };
}

function bytesOf(m: AppendRequest): number {
  let bytes = 0;
  for (const e of m.entries) bytes += entryBytes(e);
  return bytes;
}
