/**
 * One etcd watch stream (a gRPC bidi stream carrying one watcher), turned
 * into awaited batches: each batch is the events of one WatchResponse, which
 * etcd never splits inside a revision (fragmenting is off). The etcd3
 * client's own Watcher is not used: it moves its resume revision to the
 * response header's revision, which during catch-up is the cluster's current
 * revision, not the last event's, so a stream lost mid-catch-up would resume
 * past events never delivered; and it drops the compact revision.
 */
import { EtcdError, type IEvent, type IWatchCreateRequest, type IWatchResponse, type WatchClient } from 'etcd3';
import { TxStoreError, type TxWatchEvent } from '../txstore.js';

/** etcd3 types the stream narrowly; at run time it is grpc-js's ClientDuplexStream, a Node Duplex. */
export type EtcdWatchDuplex = Awaited<ReturnType<WatchClient['watch']>> & { pause(): void; resume(): void };

/** A watch cancelled by etcd: history compacted past the start (410), or another reason (mapped by the caller). */
function cancelError(r: IWatchResponse): Error {
  const compacted = Number(r.compact_revision);
  if (compacted > 0) {
    return new TxStoreError('compacted', 410, `etcd compacted its history up to revision ${compacted}; watch from there or later`, { oldestRevision: compacted });
  }
  return new EtcdError(`etcd cancelled the watch: ${r.cancel_reason === '' ? 'no reason given' : r.cancel_reason}`);
}

function toEvent(ev: IEvent): TxWatchEvent {
  // The loader decodes enums as their proto names ('PUT', 'DELETE').
  const isDelete = String(ev.type).toUpperCase() === 'DELETE';
  const revision = Number(ev.kv.mod_revision);
  if (!Number.isSafeInteger(revision)) throw new TxStoreError('revision_out_of_range', 500, `etcd revision ${ev.kv.mod_revision} is beyond 2^53`);
  return { type: isDelete ? 'delete' : 'put', key: ev.kv.key.toString('utf8'), value: isDelete ? null : ev.kv.value.toString('utf8'), revision };
}

export class EtcdWatchStream {
  /** Responses and errors in arrival order. Invariant: at most `maxQueued` + one HTTP/2 window of responses, as the stream is paused at `maxQueued`. */
  private readonly inbox: (IWatchResponse | Error)[] = [];
  private wake: (() => void) | undefined;
  private paused = false;
  /** etcd acknowledged the watch (it was valid, and the member had a leader). */
  established = false;

  constructor(
    private readonly duplex: EtcdWatchDuplex,
    private readonly maxQueued: number,
  ) {
    duplex.on('data', (r: IWatchResponse) => {
      this.push(r);
      if (this.inbox.length >= this.maxQueued && !this.paused) {
        this.paused = true;
        duplex.pause();
      }
    });
    duplex.on('error', (e: Error) => this.push(e));
    duplex.on('end', () => this.push(new TxStoreError('unavailable', 503, 'etcd ended the watch stream')));
  }

  create(request: IWatchCreateRequest): void {
    this.duplex.write({ create_request: request });
  }

  /** The events of the next response that carries any; null once `signal` aborted. Throws what the stream failed with. */
  async nextEvents(signal: AbortSignal): Promise<TxWatchEvent[] | null> {
    for (;;) {
      const r = await this.next(signal);
      if (r === null) return null;
      if (r.canceled) throw cancelError(r);
      if (r.created) this.established = true;
      // The creation acknowledgement and progress notifications carry no events.
      if (r.events.length > 0) return r.events.map(toEvent);
    }
  }

  close(): void {
    closeDuplex(this.duplex);
  }

  private push(item: IWatchResponse | Error): void {
    this.inbox.push(item);
    this.wake?.();
  }

  private async next(signal: AbortSignal): Promise<IWatchResponse | null> {
    for (;;) {
      if (signal.aborted) return null;
      const item = this.inbox.shift();
      if (item !== undefined) {
        if (this.paused && this.inbox.length <= this.maxQueued / 2) {
          this.paused = false;
          this.duplex.resume();
        }
        if (item instanceof Error) throw item;
        return item;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}

/**
 * Half-closes, then cancels. Half-closing first matters: the etcd3 client
 * marks a member failed (and resets its connections) on any error of a
 * stream that is still writable, and our own cancel surfaces as one.
 */
export function closeDuplex(stream: { end(): void; cancel(): void; on(event: 'error', f: () => void): unknown }): void {
  stream.on('error', () => undefined); // the cancel's own error event; nobody waits for it
  stream.end();
  stream.cancel();
}
