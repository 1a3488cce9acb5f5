/**
 * The watch history: the most recent events in revision order, so a watcher
 * that reconnects (possibly to a new leader) resumes from its next revision
 * with no gap and no duplicate. Bounded by watchHistoryEvents and
 * watchHistoryBytes; the oldest revisions go first, always whole, so a
 * revision is either fully kept or reported as compacted.
 */
import { assert } from '../../lib/assert.js';
import { fail } from './failure.js';
import { utf8ByteLength } from './utf8.js';
import type { EventsResult, KvEvent, KvFailure, WatchFilter } from './types.js';

export class WatchHistory {
  /** A queue: live events are events[head..]; the slots before head are dropped. */
  private events: (KvEvent | undefined)[] = [];
  /** Byte size of each event in `events`, same indexes. */
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  /** Every event with revision <= this is gone (0: nothing dropped yet). */
  private droppedThrough = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.events.length - this.head;
  }

  /** The smallest fromRevision that can still be answered without a gap. */
  get oldestRevision(): number {
    return this.droppedThrough + 1;
  }

  /** Appends the events of one applied entry, then trims to the limits. */
  append(events: readonly KvEvent[], sizes: readonly number[]): void {
    assert(events.length === sizes.length, 'one size per event');
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as KvEvent;
      const last = this.events[this.events.length - 1];
      assert(
        last === undefined || last.revision <= event.revision,
        'history events out of revision order',
      );
      this.events.push(event);
      this.sizes.push(sizes[i] as number);
      this.bytes += sizes[i] as number;
    }
    this.trim();
  }

  /**
   * Events with revision >= fromRevision that match `filter`, at most
   * `limit` of them unless a single revision alone has more (a page never
   * splits a revision, since a watcher resumes at a revision boundary).
   */
  since(
    fromRevision: number,
    filter: WatchFilter,
    limit: number,
    currentRevision: number,
  ): EventsResult | KvFailure {
    const bad = checkArguments(fromRevision, filter, limit);
    if (bad !== undefined) return bad;
    if (fromRevision < this.oldestRevision) {
      return fail('compacted', `revision ${fromRevision} is older than the kept watch history`, {
        oldestRevision: this.oldestRevision,
        currentRevision,
      });
    }
    const matches = matcher(filter);
    const out: KvEvent[] = [];
    let i = this.firstAtOrAfter(fromRevision);
    while (i < this.events.length) {
      const revision = (this.events[i] as KvEvent).revision;
      const group: KvEvent[] = [];
      for (; i < this.events.length && (this.events[i] as KvEvent).revision === revision; i++) {
        const event = this.events[i] as KvEvent;
        if (matches(event.key)) group.push(event);
      }
      if (out.length > 0 && out.length + group.length > limit) {
        return { ok: true, events: out, nextRevision: revision, more: true };
      }
      out.push(...group);
      if (out.length >= limit && i < this.events.length) {
        return { ok: true, events: out, nextRevision: revision + 1, more: true };
      }
    }
    return {
      ok: true,
      events: out,
      nextRevision: Math.max(fromRevision, currentRevision + 1),
      more: false,
    };
  }

  /** Key, value and previous value UTF-8 bytes of the kept events (what watchHistoryBytes limits). */
  get byteSize(): number {
    return this.bytes;
  }

  /** Every event at or below this revision is dropped (0: none). */
  get dropped(): number {
    return this.droppedThrough;
  }

  /** Kept events with revision > `revision`, oldest first. */
  eventsAfter(revision: number): KvEvent[] {
    return this.events.slice(this.firstAtOrAfter(revision + 1)) as KvEvent[];
  }

  /** Kept events, oldest first, and the revision through which history was dropped (for snapshots). */
  save(): { droppedThrough: number; events: KvEvent[] } {
    return { droppedThrough: this.droppedThrough, events: this.events.slice(this.head) as KvEvent[] };
  }

  load(droppedThrough: number, events: readonly KvEvent[], sizes: readonly number[]): void {
    assert(this.length === 0 && this.droppedThrough === 0, 'load into a used history');
    assert(Number.isSafeInteger(droppedThrough) && droppedThrough >= 0, 'bad droppedThrough');
    assert(
      events.every((e) => e.revision > droppedThrough),
      'snapshot history holds a dropped revision',
    );
    this.droppedThrough = droppedThrough;
    this.append(events, sizes);
    assert(this.droppedThrough === droppedThrough, 'snapshot history exceeds the history limits');
  }

  private trim(): void {
    while (this.length > this.maxEvents || this.bytes > this.maxBytes) this.dropOldestRevision();
    // Reclaim the dropped slots once they are at least half of the array: amortized O(1).
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  private dropOldestRevision(): void {
    const oldest = this.events[this.head];
    assert(oldest !== undefined, 'trim of an empty history');
    while (this.head < this.events.length && this.events[this.head]?.revision === oldest.revision) {
      this.bytes -= this.sizes[this.head] as number;
      this.events[this.head] = undefined;
      this.head++;
    }
    this.droppedThrough = oldest.revision;
  }

  /** Index of the first kept event with revision >= `revision` (binary search). */
  private firstAtOrAfter(revision: number): number {
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.events[mid] as KvEvent).revision < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function checkArguments(
  fromRevision: number,
  filter: WatchFilter,
  limit: number,
): KvFailure | undefined {
  if (!Number.isSafeInteger(fromRevision) || fromRevision < 1) {
    return fail('invalid_argument', 'fromRevision must be a positive integer');
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    return fail('invalid_argument', 'limit must be a positive integer');
  }
  const f = filter as { key?: unknown; prefix?: unknown } | null;
  const keyOk = typeof f?.key === 'string' && f.prefix === undefined;
  const prefixOk = typeof f?.prefix === 'string' && f.key === undefined;
  if (!keyOk && !prefixOk) {
    return fail('invalid_argument', 'filter must be {key} or {prefix} with a string');
  }
  return undefined;
}

function matcher(filter: WatchFilter): (key: string) => boolean {
  if ('key' in filter) {
    const wanted = filter.key;
    return (key) => key === wanted;
  }
  const prefix = filter.prefix;
  return (key) => key.startsWith(prefix);
}

/** The history size of an event, as the engine counts it when the event is made. */
export function eventBytes(event: KvEvent): number {
  const valueBytes = event.value === null ? 0 : utf8ByteLength(event.value);
  const prevBytes = event.prevValue === null ? 0 : utf8ByteLength(event.prevValue);
  return utf8ByteLength(event.key) + valueBytes + prevBytes;
}
