/**
 * The calls between simulated processes, standing for the REST contract of
 * shared/DESIGN.md: the client's calls to a coordinator (begin, enlist,
 * commit, abort) and to a participant (its work), and the coordinator's hints
 * to participants (prepare, decision). Store requests are in store-node.ts.
 */
import type { CoordinatorReply } from '../../coordinator/core/machine.js';
import type { Decision, JsonValue, Participant, VoteValue } from '../../coordinator/protocol/kernel.js';

export type CoordinatorCall =
  /** Begin with a client-chosen id (the Idempotency-Key's role); the coordinator stamps the times. */
  | { readonly kind: 'coord'; readonly op: 'begin'; readonly txId: string; readonly participants: readonly Participant[]; readonly timeoutMs: number }
  | { readonly kind: 'coord'; readonly op: 'enlist'; readonly txId: string; readonly participant: Participant }
  | { readonly kind: 'coord'; readonly op: 'commit'; readonly txId: string }
  | { readonly kind: 'coord'; readonly op: 'abort'; readonly txId: string; readonly reason?: string };

/** A machine's reply, or an error the runtime answers by itself (503 store_unavailable, 504 timeout, 409 tx_collected). */
export type CoordinatorAnswer = { readonly ok: true; readonly reply: CoordinatorReply } | { readonly ok: false; readonly code: string };

export type ParticipantCall =
  | { readonly kind: 'work'; readonly txId: string; readonly work: JsonValue }
  | { readonly kind: 'prepare'; readonly txId: string; readonly deadline: number }
  | { readonly kind: 'decision'; readonly txId: string; readonly decision: Decision };

export type ParticipantAnswer = { readonly ok: true; readonly vote?: VoteValue } | { readonly ok: false; readonly code: string };

/** A participant's URL in the frozen list; the simulation routes it to the process of that name. */
export function participantUrl(name: string): string {
  return `http://${name}.sim:7100`;
}

export function participantAddress(url: string): string {
  return new URL(url).hostname.replace(/\.sim$/, '');
}
