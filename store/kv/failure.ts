/**
 * Builds failure results. Bad user input is answered with a value, never a
 * throw: the same failure must come out of every replica, and a throw inside
 * apply would stop the node's apply loop.
 */
import type { KvErrorCode, KvFailure } from './types.js';

export type FailureDetails = Readonly<Record<string, string | number | null>>;

export function fail(code: KvErrorCode, message: string, details: FailureDetails = {}): KvFailure {
  return { ok: false, error: { code, message, ...details } };
}

export function isFailure(value: unknown): value is KvFailure {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { ok?: unknown }).ok === false
  );
}
