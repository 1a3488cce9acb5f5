/**
 * The snapshot format: the whole replicated state as one JSON string.
 *
 * Everything that decides a future command's outcome is in it (keys,
 * revision, leases, sessions with their cached results, the session clock,
 * the watch history and what was dropped from it), and every list is in the
 * order the state keeps it, so a restored machine answers every later
 * command exactly like the original. Derived data (the lease -> keys index,
 * byte sizes) is rebuilt on restore instead of stored.
 *
 * A snapshot is trusted data (the node checksums it); decoding still checks
 * its shape and asserts, so a corrupt or foreign one fails loudly instead of
 * diverging quietly.
 */
import { assert } from '../../lib/assert.js';
import { decodeAlarms, type NoSpaceAlarm } from './alarm.js';
import { decodeAuthImage, type AuthImage } from './auth.js';
import type { Session } from './sessions.js';
import type { KeyValue, KvEvent, KvOkResult, LeaseId } from './types.js';
import { compareKeys } from './utf8.js';

const FORMAT = 'raft2pc.kv.snapshot';
const FORMAT_VERSION = 1;

export interface SnapshotImage {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly clockMs: number;
  /** Live keys in key order. */
  readonly keys: readonly KeyValue[];
  /** Leases in grant order. */
  readonly leases: readonly { readonly id: LeaseId; readonly ttlMs: number }[];
  /** Sessions least recently used first. */
  readonly sessions: readonly Session[];
  readonly history: { readonly droppedThrough: number; readonly events: readonly KvEvent[] };
  /** Raised alarms (alarm.ts); absent when none is. */
  readonly alarms?: readonly NoSpaceAlarm[];
  /** Users, roles and permissions (auth.ts); absent while none was ever made. */
  readonly auth?: AuthImage;
}

export function encodeSnapshot(image: SnapshotImage): string {
  return JSON.stringify({ format: FORMAT, version: FORMAT_VERSION, ...image });
}

export function decodeSnapshot(data: string): SnapshotImage {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch (e) {
    assert(false, `KV snapshot is not JSON: ${String(e)}`);
  }
  const root = object(raw, 'snapshot');
  assert(root['format'] === FORMAT, `not a KV snapshot (format ${String(root['format'])})`);
  assert(root['version'] === FORMAT_VERSION, `unsupported KV snapshot version ${String(root['version'])}`);
  const revision = int(root['revision'], 'revision', 1);
  const keys = array(root['keys'], 'keys').map((k) => keyValue(k, revision));
  for (let i = 1; i < keys.length; i++) {
    const [before, key] = [keys[i - 1] as KeyValue, keys[i] as KeyValue];
    assert(compareKeys(before.key, key.key) < 0, 'snapshot keys out of order');
  }
  const clockMs = int(root['clockMs'], 'clockMs', 0);
  const sessions = array(root['sessions'], 'sessions').map(session);
  assert(sessions.every((s) => s.lastSeenMs <= clockMs), 'snapshot session used after the clock');
  const history = object(root['history'], 'history');
  const droppedThrough = int(history['droppedThrough'], 'history.droppedThrough', 0);
  assert(droppedThrough <= revision, 'snapshot history dropped revisions after the snapshot');
  const alarms = decodeAlarms(root['alarms']);
  return {
    ...(alarms.length === 0 ? {} : { alarms }),
    ...(root['auth'] === undefined ? {} : { auth: decodeAuthImage(root['auth']) }),
    appliedIndex: int(root['appliedIndex'], 'appliedIndex', 0),
    revision,
    clockMs,
    keys,
    leases: array(root['leases'], 'leases').map(lease),
    sessions,
    history: {
      droppedThrough,
      events: array(history['events'], 'history.events').map((e) => event(e, revision)),
    },
  };
}

function keyValue(raw: unknown, revision: number): KeyValue {
  const o = object(raw, 'key');
  const modRevision = int(o['modRevision'], 'modRevision', 2);
  const createRevision = int(o['createRevision'], 'createRevision', 2);
  assert(createRevision <= modRevision && modRevision <= revision, 'snapshot key revisions out of range');
  const kv = {
    key: str(o['key'], 'key'),
    value: str(o['value'], 'value'),
    version: int(o['version'], 'version', 1),
    createRevision,
    modRevision,
  };
  return o['lease'] === undefined ? kv : { ...kv, lease: int(o['lease'], 'lease', 1) };
}

function lease(raw: unknown): { id: LeaseId; ttlMs: number } {
  const o = object(raw, 'lease');
  return { id: int(o['id'], 'lease.id', 1), ttlMs: int(o['ttlMs'], 'lease.ttlMs', 1) };
}

function session(raw: unknown): Session {
  const o = object(raw, 'session');
  const result = object(o['result'], 'session.result');
  assert(result['ok'] === true && result['duplicate'] === undefined, 'snapshot session caches a bad result');
  return {
    clientId: str(o['clientId'], 'session.clientId'),
    seq: int(o['seq'], 'session.seq', 1),
    lastSeenMs: int(o['lastSeenMs'], 'session.lastSeenMs', 0),
    // The cached result is opaque data returned as it was; only its tag is checked.
    result: result as unknown as KvOkResult,
  };
}

function event(raw: unknown, revision: number): KvEvent {
  const o = object(raw, 'event');
  const type = o['type'];
  assert(type === 'put' || type === 'delete', 'snapshot event type');
  const value = o['value'];
  const prevValue = o['prevValue'];
  assert(type === 'put' ? typeof value === 'string' : value === null, 'snapshot event value');
  assert(prevValue === null || typeof prevValue === 'string', 'snapshot event prevValue');
  const eventRevision = int(o['revision'], 'event.revision', 2);
  assert(eventRevision <= revision, 'snapshot event after the snapshot revision');
  return {
    type,
    key: str(o['key'], 'event.key'),
    value: value as string | null,
    prevValue: prevValue as string | null,
    revision: eventRevision,
  };
}

function object(raw: unknown, what: string): Record<string, unknown> {
  assert(typeof raw === 'object' && raw !== null && !Array.isArray(raw), `snapshot ${what} is not an object`);
  return raw as Record<string, unknown>;
}

function array(raw: unknown, what: string): unknown[] {
  assert(Array.isArray(raw), `snapshot ${what} is not an array`);
  return raw;
}

function str(raw: unknown, what: string): string {
  assert(typeof raw === 'string', `snapshot ${what} is not a string`);
  return raw;
}

function int(raw: unknown, what: string, min: number): number {
  assert(Number.isSafeInteger(raw) && (raw as number) >= min, `snapshot ${what} is not an integer >= ${min}`);
  return raw as number;
}
