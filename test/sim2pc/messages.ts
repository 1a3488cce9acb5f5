/**
 * The calls between simulated processes, standing for the REST contract of
 * docs/API.md: the client's calls to a coordinator (begin, enlist, commit,
 * abort) and to a participant (its work), and the coordinator's hints to
 * participants (prepare, decision). Store traffic is HTTP (http.ts).
 */
import type { Decision, JsonValue, Participant, VoteValue } from '../../coordinator/protocol/index.js';

export type CoordinatorCall =
  /** Begin under an Idempotency-Key, so a retry at another coordinator names the same transaction. */
  | { readonly kind: 'coord'; readonly op: 'begin'; readonly key: string; readonly participants: readonly Participant[]; readonly timeoutMs: number }
  | { readonly kind: 'coord'; readonly op: 'enlist'; readonly txId: string; readonly participant: Participant }
  | { readonly kind: 'coord'; readonly op: 'commit'; readonly txId: string }
  | { readonly kind: 'coord'; readonly op: 'abort'; readonly txId: string; readonly reason?: string };

/** The service's answer, or the error code and status routes.ts would send. */
export type CoordinatorAnswer =
  | { readonly ok: true; readonly id: string; readonly outcome?: 'committed' | 'aborted' }
  | { readonly ok: false; readonly code: string; readonly status: number };

export type ParticipantCall =
  | { readonly kind: 'work'; readonly txId: string; readonly work: JsonValue }
  | { readonly kind: 'prepare'; readonly txId: string; readonly deadline: number }
  | { readonly kind: 'decision'; readonly txId: string; readonly decision: Decision };

export type ParticipantAnswer = { readonly ok: true; readonly vote?: VoteValue } | { readonly ok: false; readonly code: string; readonly status: number };

/** A participant's URL in the frozen list; the simulation routes it to the process of that name. */
export function participantUrl(name: string): string {
  return `http://${name}.sim:7100`;
}

export function participantAddress(url: string): string {
  return new URL(url).hostname.replace(/\.sim$/, '');
}
