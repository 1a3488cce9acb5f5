/**
 * Snapshot streams, the follower's side (snapshot-offers.ts is the leader's):
 * pulls an offer page by page into a fresh on-disk key store beside the live
 * one, then writes the header's state with the stream's applied index in a
 * last batch and flushes. Only then may the node swap the store in; a pull
 * that fails leaves the live store untouched, and the next snapshot message
 * starts again. Every page is bounded by the leader (pageMaxKeys and
 * pageMaxBytes), every request by a timeout, the retries of a page by
 * PAGE_ATTEMPTS.
 */
import { AppError } from '../../lib/errors.js';
import type { HttpRequester } from '../../lib/http-client.js';
import type { Timers } from '../../lib/timers.js';
import { deltaOfImage } from '../kv/durable-state.js';
import type { KeyStore, StoredKey } from '../kv/keystore.js';
import type { KvEvent } from '../kv/types.js';
import { utf8ByteLength } from '../kv/utf8.js';
import type { StreamDescriptor, StreamHeader, StreamRow } from './snapshot-offers.js';

/** Attempts per request before the pull gives up (the next snapshot message starts a new one). */
const PAGE_ATTEMPTS = 5;
const PAGE_TIMEOUT_MS = 30_000;
const RETRY_DELAY_MS = 200;

export const SNAPSHOT_ROUTE_PREFIX = '/internal/v1/snapshots';

export interface PullDeps {
  readonly http: HttpRequester;
  readonly timers: Timers;
  readonly signal?: AbortSignal;
  /** Sent with every page request (the offer's key). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Fills the empty on-disk store `into` with the offered state; resolves once it is durable. */
export async function pullSnapshot(d: StreamDescriptor, into: KeyStore, deps: PullDeps): Promise<{ keys: number; pages: number }> {
  const state = into.state;
  if (state === undefined || into.size !== 0) throw new Error('a snapshot stream needs an empty on-disk key store');
  const base = `${d.url}${SNAPSHOT_ROUTE_PREFIX}/${encodeURIComponent(d.id)}`;
  // With auth on, the offer's key is this follower's credential for the pages (snapshot-offers.ts).
  const keyed: PullDeps = d.key === undefined ? deps : { ...deps, headers: { 'x-snapshot-key': d.key } };
  const header = (await getJson(`${base}/header`, keyed)) as StreamHeader;
  if (header.appliedIndex !== d.appliedIndex) throw new Error(`snapshot offer ${d.id} is at ${header.appliedIndex}, the message said ${d.appliedIndex}`);
  let pages = 0;
  let after: string | undefined;
  for (let more = true; more; pages++) {
    const query = after === undefined ? '' : `?after=${encodeURIComponent(after)}`;
    const page = (await getJson(`${base}/keys${query}`, keyed)) as { rows: StreamRow[]; more: boolean };
    into.batch(() => page.rows.forEach((r) => into.set(storedOf(r))), () => 0);
    after = page.rows.at(-1)?.[0] ?? after;
    more = page.more && page.rows.length > 0;
  }
  // The history comes in pages too; held here (at most watchHistoryBytes) and written with the header's state.
  const events: KvEvent[] = [];
  for (let more = header.historyEvents > 0; more; pages++) {
    const page = (await getJson(`${base}/history?from=${events.length}`, keyed)) as { events: KvEvent[]; more: boolean };
    events.push(...page.events);
    more = page.more && page.events.length > 0;
  }
  if (events.length !== header.historyEvents) throw new Error(`snapshot offer ${d.id}: ${events.length} history events, the header said ${header.historyEvents}`);
  const image = { ...header.state, history: { droppedThrough: header.state.history.droppedThrough, events } };
  into.batch(() => state.record(deltaOfImage(image)), () => header.appliedIndex);
  await into.flush();
  return { keys: into.size, pages };
}

async function getJson(url: string, deps: PullDeps): Promise<unknown> {
  let last: unknown;
  for (let attempt = 1; attempt <= PAGE_ATTEMPTS; attempt++) {
    if (deps.signal?.aborted === true) throw new AppError('aborted', 503, 'the snapshot pull was cancelled');
    try {
      const res = await deps.http.request({ method: 'GET', url, timeoutMs: PAGE_TIMEOUT_MS, ...(deps.headers === undefined ? {} : { headers: deps.headers }) });
      if (res.status === 200) return JSON.parse(res.text) as unknown;
      // The offer is gone (expired, or the leader restarted): retrying cannot help.
      if (res.status === 404) throw new AppError('snapshot_offer_gone', 404, `snapshot offer at ${url} is gone`);
      last = new Error(`GET ${url}: HTTP ${res.status}`);
    } catch (e) {
      if (e instanceof AppError) throw e;
      last = e;
    }
    await deps.timers.sleep(RETRY_DELAY_MS * attempt, deps.signal);
  }
  throw last instanceof Error ? last : new Error(String(last));
}

function storedOf([key, value, createRevision, modRevision, version, lease]: StreamRow): StoredKey {
  const kv = lease === 0 ? { key, value, createRevision, modRevision, version } : { key, value, createRevision, modRevision, version, lease };
  return { kv, keyBytes: utf8ByteLength(key), valueBytes: utf8ByteLength(value) };
}
