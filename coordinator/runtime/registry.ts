/**
 * Participants registered by name (issue 16, SSRF): with a registry
 * (`--participant NAME=URL`, config `participantRegistry`), the coordinator
 * calls only the URLs an operator gave it. A client names a participant; a
 * URL it sends must be the registered one, and a name that is not
 * registered is refused, so no client can point the coordinator's prepare
 * and decision calls at an address of its choosing. Without a registry
 * (the default, for a trusted network) a client names the URL, as before.
 */
import { AppError } from '../../lib/errors.js';
import { participantProblem, toParticipant, type Participant } from '../protocol/index.js';

export type ParticipantRegistry = Readonly<Record<string, string>>;

/** `NAME=URL` entries as a registry; throws with every problem found. */
export function parseRegistry(entries: readonly string[]): ParticipantRegistry {
  const out: Record<string, string> = {};
  const problems: string[] = [];
  for (const entry of entries) {
    const at = entry.indexOf('=');
    const name = at < 0 ? entry : entry.slice(0, at);
    const url = at < 0 ? '' : entry.slice(at + 1);
    if (name in out) problems.push(`participant ${name} is registered twice`);
    const problem = participantProblem({ name, url });
    if (problem !== null) problems.push(`--participant ${entry}: ${problem} (want NAME=http(s)://host:port)`);
    else out[name] = url;
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return Object.freeze(out);
}

/** Why `registry` is not one, or null. */
export function registryProblem(registry: unknown): string | null {
  if (registry === null) return null;
  if (typeof registry !== 'object' || Array.isArray(registry)) return 'participantRegistry must be null or an object {name: url}';
  for (const [name, url] of Object.entries(registry)) {
    const problem = participantProblem({ name, url });
    if (problem !== null) return `participantRegistry ${name}: ${problem}`;
  }
  return null;
}

/** A participant from a client's request, checked against the registry when there is one (400 otherwise). */
export function requestedParticipant(p: unknown, registry: ParticipantRegistry | null): Participant {
  if (registry === null) return toParticipant(p);
  const raw = typeof p === 'object' && p !== null ? (p as Record<string, unknown>)['name'] : undefined;
  const name = typeof raw === 'string' ? raw : '';
  const url = Object.hasOwn(registry, name) ? registry[name] : undefined;
  if (url === undefined) throw new AppError('unregistered_participant', 400, `no participant ${JSON.stringify(raw ?? null)} is registered with this coordinator (participants are registered by name: --participant NAME=URL)`, { name: typeof raw === 'string' ? raw : null });
  const given = (p as Record<string, unknown>)['url'];
  if (given !== undefined && given !== url) {
    throw new AppError('unregistered_participant', 400, `participant ${name} is registered at another URL; name it without a url, the coordinator calls only the registered one`, { name });
  }
  return { name, url };
}
