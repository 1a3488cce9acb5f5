/**
 * A raw reader of the store's watch stream (GET /v1/watch), independent of
 * StoreClient, to check what one node sends for a given start point.
 */
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
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = 'message';
        let data = '';
        let id: string | undefined;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data += value;
          else if (field === 'id') id = value;
        }
        if (event === 'cancelled') throw new Error(`watch cancelled: ${data}`);
        if (event !== 'put' && event !== 'delete') continue;
        const parsed = JSON.parse(data) as Omit<RawEvent, 'id'>;
        events.push(id === undefined ? parsed : { ...parsed, id });
      }
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
