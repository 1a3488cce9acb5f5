/**
 * HTTP over the simulated network, for the real store client and store API,
 * with the method, path, headers and JSON text they exchange: a request and
 * its answer are two packets (either may be lost), a watch is a stream of
 * numbered chunks that breaks at the first gap or when either end dies.
 */
import { HttpClientError, type HttpRequest, type HttpResponse } from '../../lib/http-client.js';
import { encodeReply, errorReply } from '../../lib/http.js';
import type { Net, Packet } from './net.js';
import { RpcClient } from './net.js';
import type { Proc } from './world.js';

/** An HTTP request as it crosses the simulated network. */
export interface SimHttpRequest {
  readonly kind: 'http';
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Opens a stream: the server answers with chunk 0 (the status line), then data chunks. */
export interface SimStreamOpen {
  readonly kind: 'http-stream';
  readonly sid: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** One chunk of a stream; `text` null ends it. Chunk 0 carries the status (and the whole body of an error). */
export interface SimStreamChunk {
  readonly kind: 'stream-chunk';
  readonly sid: string;
  readonly seq: number;
  readonly status?: number;
  readonly text: string | null;
}

/** The host part of a simulated URL (`http://n1` is process n1). */
export function hostOf(url: string): string {
  return new URL(url).hostname;
}

/** Simulated ms a stream open waits for its status chunk. */
const streamOpenTimeoutMs = 300;

/** The client end: lib/http-client.ts's requester, and the store client's stream opener. */
export class SimHttpClient {
  private readonly streams = new Map<string, ClientStream>();
  private nextStream = 0;

  constructor(
    private readonly proc: Proc,
    private readonly net: Net,
    private readonly rpc: RpcClient,
    /** How long a request waits for its answer when it names no timeout. */
    private readonly requestTimeoutMs: number,
  ) {}

  async request(r: HttpRequest): Promise<HttpResponse> {
    const body: SimHttpRequest = { kind: 'http', method: r.method, url: r.url, headers: { ...(r.headers ?? {}) }, ...(r.body === undefined ? {} : { body: r.body }) };
    const timeoutMs = r.timeoutMs ?? this.requestTimeoutMs;
    const reply = (await this.rpc.call(hostOf(r.url), body, timeoutMs)) as HttpResponse | undefined;
    if (reply === undefined) throw new HttpClientError('timeout', `${r.method} ${r.url}: no answer within ${timeoutMs} ms`);
    return { status: reply.status, headers: reply.headers, text: reply.text };
  }

  close(): void {}

  /** Opens a stream; resolves with its status, and the body as chunks of bytes for the real SSE parser. */
  openStream(url: string, headers: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<StreamOpened> {
    if (!this.proc.alive) return new Promise<StreamOpened>(() => undefined);
    const sid = `${this.proc.name}.${this.proc.incarnation}.s${++this.nextStream}`;
    const host = hostOf(url);
    const onAbort = (): void => stream.end();
    const stream = new ClientStream(() => {
      signal?.removeEventListener('abort', onAbort);
      // Leaving a stream closes the connection: the server stops writing to it.
      if (this.streams.delete(sid) && this.proc.alive) this.net.send(this.proc.name, host, { kind: 'req', rid: `${sid}.close`, body: { kind: 'stream-close', sid } });
    });
    this.streams.set(sid, stream);
    signal?.addEventListener('abort', onAbort, { once: true });
    const open: SimStreamOpen = { kind: 'http-stream', sid, url, headers };
    this.net.send(this.proc.name, host, { kind: 'req', rid: sid, body: open });
    this.proc.after(streamOpenTimeoutMs, () => stream.failOpen());
    return stream.opened;
  }

  /** A chunk of one of this incarnation's streams arrived. */
  onChunk(c: SimStreamChunk): void {
    this.streams.get(c.sid)?.push(c);
  }

  /** The process died: its streams are gone with it (never resolved: the dead code never runs again). */
  clear(): void {
    this.streams.clear();
  }
}

/** A stream's answer: an error with its body, or the body as bytes. */
export type StreamOpened = { readonly status: number; readonly text: string } | { readonly status: 200; readonly body: AsyncIterable<Uint8Array> };

/** A stream's receiving end: chunks in order, or the end at the first gap. */
class ClientStream {
  private next = 0;
  private readonly queue: Uint8Array[] = [];
  private waiting: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  private ended = false;
  /** Resolves `opened`; undefined once it did. */
  private settle: ((v: StreamOpened) => void) | undefined;
  readonly opened = new Promise<StreamOpened>((resolve) => (this.settle = resolve));

  constructor(private readonly onEnd: () => void) {}

  push(c: SimStreamChunk): void {
    if (this.ended) return;
    if (c.seq !== this.next) return this.end(); // a lost or late chunk: the connection is broken
    this.next++;
    if (c.seq === 0) return this.settleOpen(c);
    if (c.text === null) return this.end();
    this.deliver(new TextEncoder().encode(c.text));
  }

  private settleOpen(c: SimStreamChunk): void {
    const status = c.status ?? 500;
    if (status !== 200) return this.fail(status, c.text ?? '');
    const iterator: AsyncIterator<Uint8Array> = { next: () => this.take(), return: () => this.leave() };
    this.settle?.({ status: 200, body: { [Symbol.asyncIterator]: () => iterator } });
    this.settle = undefined;
  }

  /** No status chunk in time: answered as a store that did not answer (the client retries elsewhere). */
  failOpen(): void {
    if (this.settle !== undefined) this.fail(503, JSON.stringify({ error: { code: 'unavailable', message: 'the watch stream did not open in time' } }));
  }

  private fail(status: number, text: string): void {
    this.settle?.({ status, text });
    this.settle = undefined;
    this.end();
  }

  private deliver(bytes: Uint8Array): void {
    const w = this.waiting;
    if (w !== undefined) {
      this.waiting = undefined;
      w({ value: bytes, done: false });
    } else {
      this.queue.push(bytes);
    }
  }

  private take(): Promise<IteratorResult<Uint8Array>> {
    const v = this.queue.shift();
    if (v !== undefined) return Promise.resolve({ value: v, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private leave(): Promise<IteratorResult<Uint8Array>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }
}

/** The server end of one stream: numbered chunks to the client, over the lossy network. */
export class ServerStream {
  private seq = 0;
  private opened = false;
  private closed = false;
  private readonly closeHandlers: (() => void)[] = [];

  constructor(
    private readonly proc: Proc,
    private readonly net: Net,
    readonly client: string,
    readonly sid: string,
  ) {}

  /** The request was refused before the stream began: its status and error body, then the end. */
  refuse(e: unknown): void {
    const reply = encodeReply(errorReply(e));
    this.opened = true;
    this.chunk({ status: reply.status, text: reply.text });
    this.close();
  }

  /** 200 and the stream's start, if nothing was written yet. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.chunk({ status: 200, text: '' });
  }

  write(text: string): boolean {
    if (this.closed) return false;
    this.open();
    this.chunk({ text });
    return true;
  }

  end(): void {
    if (this.closed) return;
    this.open();
    this.chunk({ text: null });
    this.close();
  }

  onClose(fn: () => void): void {
    this.closeHandlers.push(fn);
  }

  /** The connection is gone (the client left, or the server ended it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.closeHandlers) fn();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The server process died: its kernel resets the connection (a chunk out of sequence ends it at the client). */
  reset(): void {
    this.closed = true;
    this.send({ kind: 'stream-chunk', sid: this.sid, seq: -1, text: null });
  }

  private chunk(c: { status?: number; text: string | null }): void {
    if (this.proc.alive) this.send({ kind: 'stream-chunk', sid: this.sid, seq: this.seq++, text: c.text, ...(c.status === undefined ? {} : { status: c.status }) });
  }

  private send(body: SimStreamChunk): void {
    this.net.send(this.proc.name, this.client, { kind: 'resp', rid: this.sid, body });
  }
}

/** True when a packet carries a stream chunk (client side routing). */
export function isStreamChunk(p: Packet): boolean {
  return p.payload.kind === 'resp' && (p.payload.body as { kind?: string } | undefined)?.kind === 'stream-chunk';
}
