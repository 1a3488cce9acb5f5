/**
 * Watches as server-sent events: `GET /v1/watch?prefix=P|key=K&fromRevision=R`.
 * Events come from the applied KV history, so a watcher on a follower sees a
 * change only once it is committed and applied. Each event carries its
 * revision; the SSE `id` is set on the last event of every revision, so a
 * client that reconnects with `Last-Event-ID` (or fromRevision = id + 1), to
 * this or any other node, resumes exactly after what it saw: no gaps, no
 * duplicates. A watcher whose connection cannot keep up is cancelled with a
 * `cancelled` event once its unsent bytes pass a cap, not the node's memory.
 */
import type { ServerResponse } from 'node:http';
import { AppError } from '../../lib/errors.js';
import type { RouteContext } from '../../lib/http.js';
import type { KvEvent, WatchFilter } from '../kv/index.js';
import type { StoreNode } from '../node/node.js';
import { kvFailureToError } from './errors.js';

export interface WatchLimits {
  /** Open watchers per node, past which new ones get 503. */
  readonly maxWatchers: number;
  /** Unsent bytes buffered for one watcher before it is cancelled as too slow. */
  readonly maxBufferedBytes: number;
  /** Events read from history per pass, so one watcher cannot hog the loop. */
  readonly eventsPerPass: number;
  /** A comment line this often keeps idle connections (and proxies) alive. */
  readonly keepAliveMs: number;
}

export const defaultWatchLimits: WatchLimits = {
  maxWatchers: 10_000,
  maxBufferedBytes: 8 << 20,
  eventsPerPass: 1_000,
  keepAliveMs: 15_000,
};

interface Watcher {
  readonly filter: WatchFilter;
  readonly res: ServerResponse;
  readonly prevValue: boolean;
  next: number;
}

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly node: StoreNode,
    private readonly limits: WatchLimits = defaultWatchLimits,
  ) {
    this.keepAlive = setInterval(() => {
      for (const w of this.watchers) w.res.write(': keepalive\n\n');
    }, limits.keepAliveMs);
    this.keepAlive.unref();
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Called after every applied batch that changed keys. */
  pump(): void {
    for (const w of this.watchers) this.deliver(w);
  }

  close(): void {
    clearInterval(this.keepAlive);
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  handle = (ctx: RouteContext): undefined => {
    const { query, req, res } = ctx;
    const prefix = query.get('prefix');
    const key = query.get('key');
    if ((prefix === null) === (key === null)) throw new AppError('invalid_request', 400, 'give exactly one of prefix or key');
    const filter: WatchFilter = key !== null ? { key } : { prefix: prefix as string };
    const next = startRevision(query.get('fromRevision'), req.headers['last-event-id'], this.node.kvState.revision);
    if (this.watchers.size >= this.limits.maxWatchers) {
      throw new AppError('too_many_watchers', 503, `this node serves at most ${this.limits.maxWatchers} watchers`, { retryAfterSeconds: 1 });
    }
    // Check the start revision before committing to a stream, so a compacted
    // start is a plain 410 with the oldest revision still available.
    const probe = this.node.kvState.eventsSince(next, filter, 1);
    if (!probe.ok) throw kvFailureToError(probe);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(`: watching from revision ${next}\n\n`);
    const w: Watcher = { filter, res, next, prevValue: query.get('prevValue') === 'true' };
    this.watchers.add(w);
    const drop = (): void => {
      this.watchers.delete(w);
    };
    req.on('close', drop);
    res.on('error', drop);
    this.deliver(w);
    return undefined;
  };

  private deliver(w: Watcher): void {
    for (;;) {
      const r = this.node.kvState.eventsSince(w.next, w.filter, this.limits.eventsPerPass);
      if (!r.ok) {
        // History moved past this watcher (it fell too far behind).
        this.cancel(w, 'compacted', r.error);
        return;
      }
      if (r.events.length > 0) w.res.write(formatEvents(r.events, w.prevValue));
      w.next = r.nextRevision;
      if (w.res.writableLength > this.limits.maxBufferedBytes) {
        this.cancel(w, 'slow_watcher', { message: `more than ${this.limits.maxBufferedBytes} bytes unsent; reconnect from revision ${w.next}`, nextRevision: w.next });
        return;
      }
      if (!r.more) return;
    }
  }

  private cancel(w: Watcher, reason: string, details: unknown): void {
    this.watchers.delete(w);
    w.res.end(`event: cancelled\ndata: ${JSON.stringify({ reason, details })}\n\n`);
  }
}

function startRevision(fromRevision: string | null, lastEventId: string | string[] | undefined, current: number): number {
  if (fromRevision !== null) {
    const n = Number(fromRevision);
    if (!/^\d+$/.test(fromRevision) || !Number.isSafeInteger(n) || n < 1) throw new AppError('invalid_revision', 400, 'fromRevision must be a positive integer');
    return n;
  }
  if (typeof lastEventId === 'string' && /^\d+$/.test(lastEventId)) return Number(lastEventId) + 1;
  return current + 1;
}

/** One SSE message per event; `id` marks the end of each revision (the resume point). */
export function formatEvents(events: readonly KvEvent[], prevValue: boolean): string {
  let out = '';
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as KvEvent;
    const last = i === events.length - 1 || (events[i + 1] as KvEvent).revision !== e.revision;
    const data = prevValue ? e : { type: e.type, key: e.key, value: e.value, revision: e.revision };
    out += `${last ? `id: ${e.revision}\n` : ''}event: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`;
  }
  return out;
}
