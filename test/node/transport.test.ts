// Goal: the peer transport's framing and flow control. Frames are cut from a
// byte stream correctly whatever the chunk boundaries, and joined in linear
// time (the chaos runner found a follower stuck for minutes when every chunk
// re-copied the frame so far). A batch goes out in frames of bounded size. A
// peer that stops reading makes the sender hold at most maxUnsentBytes in its
// socket and drop past its queue bound, instead of buffering without limit.
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SeededRandom } from '../../lib/random.js';
import type { Message } from '../../store/raft/index.js';
import { FrameAssembler, Transport, defaultTransportLimits } from '../../store/node/transport.js';
import { waitFor } from '../store/support/poll.js';

function framed(payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length, 0);
  return Buffer.concat([header, payload]);
}

function drain(a: FrameAssembler): Buffer[] {
  const out: Buffer[] = [];
  for (;;) {
    const len = a.peekLength();
    if (len === undefined) return out;
    const f = a.take(len);
    if (f === undefined) return out;
    out.push(f);
  }
}

function app(i: number, dataBytes: number): Message {
  return { type: 'app', from: 'a', to: 'b', term: 1, prevIndex: i, prevTerm: 1, commit: i, entries: [{ index: i + 1, term: 1, type: 'normal', data: 'x'.repeat(dataBytes) }] } as Message;
}

describe('FrameAssembler', () => {
  it('cuts frames correctly at any chunk boundary (seeded random chunking)', () => {
    const seed = 20261126;
    const rnd = new SeededRandom(seed);
    const payloads = Array.from({ length: 200 }, (_, i) => Buffer.from(`frame-${i}-${'y'.repeat(rnd.int(3000))}`));
    const stream = Buffer.concat(payloads.map(framed));
    const a = new FrameAssembler();
    const got: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = Math.min(stream.length - at, 1 + rnd.int(5000));
      a.push(stream.subarray(at, at + n));
      at += n;
      got.push(...drain(a));
    }
    expect(got.map((b) => b.toString()), `seed ${seed}`).toEqual(payloads.map((b) => b.toString()));
  });

  it('joins a 16 MiB frame arriving in 64 KiB chunks with linear copying, not quadratic', () => {
    const payload = Buffer.alloc(16 << 20, 7);
    const stream = framed(payload);
    const a = new FrameAssembler();
    const concat = vi.spyOn(Buffer, 'concat');
    let copied = 0;
    concat.mockImplementation(((list: readonly Uint8Array[], total?: number) => {
      const len = total ?? list.reduce((n, b) => n + b.length, 0);
      copied += len;
      const out = Buffer.allocUnsafe(len);
      let at = 0;
      for (const b of list) {
        out.set(b.subarray(0, Math.min(b.length, len - at)), at);
        at += b.length;
        if (at >= len) break;
      }
      return out;
    }) as typeof Buffer.concat);
    try {
      const frames: Buffer[] = [];
      for (let at = 0; at < stream.length; at += 64 << 10) {
        a.push(stream.subarray(at, at + (64 << 10)));
        frames.push(...drain(a));
      }
      expect(frames.length).toBe(1);
      expect(frames[0]?.equals(payload)).toBe(true);
      // One join of the whole frame; the old code copied about 2 GiB here.
      expect(copied).toBeLessThanOrEqual(2 * stream.length);
    } finally {
      concat.mockRestore();
    }
  });
});

describe('Transport over loopback', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  it('a large batch arrives whole and in order, in frames of about frameTargetBytes', async () => {
    const received: Message[] = [];
    let frames = 0;
    const b = new Transport('b', { onMessages: (ms) => { frames++; received.push(...ms); }, onUnreachable: () => undefined });
    closers.push(() => b.close());
    const port = await b.listen('127.0.0.1', 0);
    const a = new Transport('a', { onMessages: () => undefined, onUnreachable: () => undefined }, { ...defaultTransportLimits, frameTargetBytes: 64 << 10 });
    closers.push(() => a.close());
    a.setPeer('b', { host: '127.0.0.1', port });
    // The first send connects; wait for the connection before the big batch.
    a.send([app(0, 10)]);
    await waitFor('the first message', 10_000, () => received.length === 1);
    const batch = Array.from({ length: 3000 }, (_, i) => app(i + 1, 1000));
    a.send(batch);
    await waitFor('3000 more messages', 20_000, () => received.length === 3001);
    expect(received.map((m) => (m.type === 'app' ? m.prevIndex : -1))).toEqual(Array.from({ length: 3001 }, (_, i) => i));
    // About 3 MB in 64 KiB frames: dozens of frames, not one.
    expect(frames).toBeGreaterThan(30);
  });

  it('a peer that stops reading: the sender keeps at most maxUnsentBytes (plus one flush) in its socket and drops past its queue bound', async () => {
    const silent = net.createServer((s) => s.pause());
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    closers.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); silent.close(() => r()); }));
    const port = await new Promise<number>((r) => silent.listen(0, '127.0.0.1', () => r((silent.address() as net.AddressInfo).port)));
    const limits = { ...defaultTransportLimits, maxUnsentBytes: 256 << 10, maxQueuedMessages: 200, frameTargetBytes: 32 << 10 };
    const a = new Transport('a', { onMessages: () => undefined, onUnreachable: () => undefined }, limits);
    closers.push(() => a.close());
    a.setPeer('b', { host: '127.0.0.1', port });
    const msgBytes = 1100;
    // 64 MB offered over many turns: far more than the kernel's socket buffers take.
    for (let turn = 0; turn < 300 && a.droppedMessages() === 0; turn++) {
      a.send(Array.from({ length: 200 }, (_, i) => app(turn * 200 + i, 1000)));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(a.droppedMessages()).toBeGreaterThan(0);
    expect(a.unsentBytes()).toBeLessThanOrEqual(limits.maxUnsentBytes + limits.maxQueuedMessages * (msgBytes + 200));
  });
});
