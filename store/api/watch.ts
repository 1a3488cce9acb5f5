/**
 * Watches as server-sent events: `GET /v1/watch?prefix=P|key=K&fromRevision=R`.
 * Events come from the applied KV history, so a watcher on a follower sees a
 * change only once it is committed and applied. Each event carries its
 * revision; the SSE `id` is set on the last event of every revision, so a
 * client that reconnects with `Last-Event-ID` (or fromRevision = id + 1), to
 * this or any other node, resumes exactly after what it saw: no gaps, no
 * duplicates. A watcher whose connection cannot keep up is cancelled with a
 * `cancelled` event once its unsent bytes pass a cap, not the node's memory.
 *
 * `match` (repeatable, at most MAX_WATCH_PATTERNS) narrows a watch to keys
 * matching any of these patterns (store/kv/key-pattern.ts: `*` is one path
 * segment): a 2PC participant watching `tx/` needs the records and the
 * decisions, not every vote and ack of every transaction. When a pass holds
 * events but none that match, or the last match is not the pass's last
 * revision, a `progress` event carries the `id` alone, so a resume starts
 * after what was skipped instead of scanning it again.
 */
import { AppError } from '../../lib/errors.js';
import type { StreamReply, StreamSink } from '../../lib/http.js';
import type { Cancel, Timers } from '../../lib/timers.js';
import type { KvEvent, KvStateMachine, WatchFilter } from '../kv/index.js';
import { keyPatternProblem, keyPatternsRegExp } from '../kv/key-pattern.js';
import { kvFailureToError } from './errors.js';

/** `match` patterns per watch at most, and bytes per pattern. */
export const MAX_WATCH_PATTERNS = 16;
const MAX_WATCH_PATTERN_BYTES = 1_024;

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

/** What a client told a watch: `prefix` or `key`, `fromRevision`, `prevValue`, and the `last-event-id` header. */
export interface WatchRequest {
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | undefined>>;
}

/** Where watch events come from: the node's applied KV state. */
export interface WatchSource {
  readonly kvState: Pick<KvStateMachine, 'revision' | 'eventsSince'>;
}

/** The stream a watcher reads: SSE text, `write` false once its unsent bytes pass the cap. */
export type WatchSink = StreamSink;

/** A checked watch request, not yet attached to a stream. */
export interface WatchStart {
  readonly filter: WatchFilter;
  /** Keys must also match this (`match`), when given. */
  readonly match: RegExp | undefined;
  readonly next: number;
  readonly prevValue: boolean;
}

interface Watcher {
  readonly filter: WatchFilter;
  readonly match: RegExp | undefined;
  readonly sink: WatchSink;
  readonly prevValue: boolean;
  next: number;
}

const SSE_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };
const KEEPALIVE_TEXT = ': keepalive\n\n';

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private readonly stopKeepAlive: Cancel;

  constructor(
    private readonly source: WatchSource,
    timers: Timers,
    private readonly limits: WatchLimits = defaultWatchLimits,
  ) {
    this.stopKeepAlive = timers.every(limits.keepAliveMs, () => {
      for (const w of this.watchers) w.sink.write(KEEPALIVE_TEXT);
    });
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Called after every applied batch that changed keys. */
  pump(): void {
    for (const w of this.watchers) this.deliver(w);
  }

  close(): void {
    this.stopKeepAlive();
    const all = [...this.watchers];
    this.watchers.clear();
    for (const w of all) w.sink.end();
  }

  /**
   * Checks a watch request: 400 for a bad filter or start, 503 past the
   * watcher cap, 410 `compacted` (with the oldest revision kept) for a start
   * older than the history. Nothing is written anywhere yet.
   */
  check(req: WatchRequest): WatchStart {
    const { query } = req;
    const prefix = query.get('prefix');
    const key = query.get('key');
    if ((prefix === null) === (key === null)) throw new AppError('invalid_request', 400, 'give exactly one of prefix or key');
    const filter: WatchFilter = key !== null ? { key } : { prefix: prefix as string };
    const match = matchOf(query.getAll('match'));
    const next = startRevision(query.get('fromRevision'), req.headers['last-event-id'], this.source.kvState.revision);
    if (this.watchers.size >= this.limits.maxWatchers) {
      throw new AppError('too_many_watchers', 503, `this node serves at most ${this.limits.maxWatchers} watchers`, { retryAfterSeconds: 1 });
    }
    // Check the start revision before committing to a stream, so a compacted
    // start is a plain 410 with the oldest revision still available.
    const probe = this.source.kvState.eventsSince(next, filter, 1);
    if (!probe.ok) throw kvFailureToError(probe);
    return { filter, match, next, prevValue: query.get('prevValue') === 'true' };
  }

  /** Streams a checked watch into `sink`: a comment line, then the events from `start.next` on, then each new batch. */
  attach(start: WatchStart, sink: WatchSink): void {
    sink.write(`: watching from revision ${start.next}\n\n`);
    const w: Watcher = { ...start, sink };
    this.watchers.add(w);
    sink.onClose(() => this.watchers.delete(w));
    this.deliver(w);
  }

  /** `check` then `attach`: throws (AppError) before touching `sink` when the request is refused. */
  open(req: WatchRequest, sink: WatchSink): void {
    this.attach(this.check(req), sink);
  }

  /** The answer of `GET /v1/watch` for a router: checked now, streamed once the transport has a sink. */
  reply(req: WatchRequest): StreamReply {
    const start = this.check(req);
    return { status: 200, headers: SSE_HEADERS, maxBufferedBytes: this.limits.maxBufferedBytes, stream: (sink) => this.attach(start, sink) };
  }

  private deliver(w: Watcher): void {
    for (;;) {
      const r = this.source.kvState.eventsSince(w.next, w.filter, this.limits.eventsPerPass);
      if (!r.ok) {
        // History moved past this watcher (it fell too far behind).
        this.cancel(w, 'compacted', r.error);
        return;
      }
      const within = r.events.length === 0 || w.sink.write(w.match === undefined ? formatEvents(r.events, w.prevValue) : formatMatching(r.events, w.match, w.prevValue));
      w.next = r.nextRevision;
      if (!within) {
        this.cancel(w, 'slow_watcher', { message: `more than ${this.limits.maxBufferedBytes} bytes unsent; reconnect from revision ${w.next}`, nextRevision: w.next });
        return;
      }
      if (!r.more) return;
    }
  }

  private cancel(w: Watcher, reason: string, details: unknown): void {
    this.watchers.delete(w);
    w.sink.write(`event: cancelled\ndata: ${JSON.stringify({ reason, details })}\n\n`);
    w.sink.end();
  }
}

/** The `match` patterns as one expression; 400 for too many or a malformed one. */
function matchOf(patterns: readonly string[]): RegExp | undefined {
  if (patterns.length === 0) return undefined;
  if (patterns.length > MAX_WATCH_PATTERNS) throw new AppError('invalid_request', 400, `at most ${MAX_WATCH_PATTERNS} match patterns`);
  for (const p of patterns) {
    const problem = keyPatternProblem(p, MAX_WATCH_PATTERN_BYTES);
    if (problem !== undefined) throw new AppError('invalid_request', 400, `match ${JSON.stringify(p)}: ${problem}`);
  }
  return keyPatternsRegExp(patterns);
}

/** The events whose key matches, and a `progress` id when the pass's last revision is not among them. */
function formatMatching(events: readonly KvEvent[], match: RegExp, prevValue: boolean): string {
  const kept = events.filter((e) => match.test(e.key));
  const last = (events[events.length - 1] as KvEvent).revision;
  const out = formatEvents(kept, prevValue);
  return kept.length > 0 && (kept[kept.length - 1] as KvEvent).revision === last ? out : `${out}id: ${last}\nevent: progress\ndata: {}\n\n`;
}

function startRevision(fromRevision: string | null, lastEventId: string | undefined, current: number): number {
  if (fromRevision !== null) {
    const n = Number(fromRevision);
    if (!/^\d+$/.test(fromRevision) || !Number.isSafeInteger(n) || n < 1) throw new AppError('invalid_revision', 400, 'fromRevision must be a positive integer');
    return n;
  }
  if (lastEventId !== undefined && /^\d+$/.test(lastEventId)) return Number(lastEventId) + 1;
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
