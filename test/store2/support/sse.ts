/**
 * A raw reader of the store's watch stream (GET /v1/watch), independent of
 * StoreClient's watch (only its SSE parser is shared), to check what one
 * node sends for a given start point.
 */
import { parseSse } from '../../../store/client/client.js';

export interface RawEvent {
  readonly type: string;
  readonly key: string;
  readonly value: string | null;
  readonly revision: number;
  /** The SSE `id` line of this message, when it had one (the end of a revision). */
  readonly id?: string;
}

/**
 * Opens a watch on `url` (a full /v1/watch URL) and collects events until
 * `until` says stop or `timeoutMs` passes; throws on a non-200 answer.
 */
export async function collectWatch(
  url: string,
  headers: Record<string, string>,
  until: (events: readonly RawEvent[]) => boolean,
  timeoutMs: number,
): Promise<RawEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const events: RawEvent[] = [];
  try {
    const res = await fetch(url, { headers, signal: ac.signal });
    if (res.status !== 200 || !res.body) throw new Error(`watch ${url} answered ${res.status}: ${await res.text()}`);
    for await (const msg of parseSse(res.body)) {
      if (msg.event === 'cancelled') throw new Error(`watch cancelled: ${msg.data}`);
      if (msg.event !== 'put' && msg.event !== 'delete') continue;
      const parsed = JSON.parse(msg.data) as Omit<RawEvent, 'id'>;
      events.push(msg.id === undefined ? parsed : { ...parsed, id: msg.id });
      if (until(events)) break;
    }
    return events;
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`watch ${url} gave ${events.length} events in ${timeoutMs} ms without reaching the goal`);
    throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}
