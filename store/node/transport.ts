/**
 * Peer transport: one outbound TCP connection per peer, each with a bounded
 * queue; messages queued in the same event-loop turn go out as one frame.
 * Frames are [u32 length][JSON array of messages]. Raft tolerates loss, so a
 * full queue or a broken connection drops messages (counted) and tells Raft
 * the peer is unreachable, rather than growing memory without bound.
 */
import net from 'node:net';
import type { Message, NodeId } from '../raft/index.js';

export interface TransportLimits {
  /** Messages waiting for one peer, past which new ones are dropped. */
  readonly maxQueuedMessages: number;
  /** Largest frame accepted or sent (snapshots travel whole). */
  readonly maxFrameBytes: number;
  /** Delay before reconnecting to a peer that refused or dropped us. */
  readonly reconnectDelayMs: number;
}

export const defaultTransportLimits: TransportLimits = {
  maxQueuedMessages: 10_000,
  maxFrameBytes: 256 << 20,
  reconnectDelayMs: 100,
};

export interface TransportHandlers {
  onMessages(messages: Message[]): void;
  onUnreachable(peer: NodeId): void;
}

/** A fault layer the chaos runner and tests control: drop traffic to or from chosen peers. */
export interface FaultFilter {
  blocked(from: NodeId, to: NodeId): boolean;
}

class PeerConnection {
  private socket: net.Socket | undefined;
  private connecting = false;
  private queue: Message[] = [];
  private flushScheduled = false;
  private closed = false;
  dropped = 0;

  constructor(
    readonly peer: NodeId,
    public address: { host: string; port: number },
    private readonly limits: TransportLimits,
    private readonly handlers: TransportHandlers,
  ) {}

  enqueue(m: Message): void {
    if (this.queue.length >= this.limits.maxQueuedMessages) {
      this.dropped++;
      return;
    }
    this.queue.push(m);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const socket = this.socket;
    if (!socket) {
      this.connect();
      return;
    }
    const batch = this.queue;
    this.queue = [];
    const payload = Buffer.from(JSON.stringify(batch), 'utf8');
    if (payload.length > this.limits.maxFrameBytes) {
      this.dropped += batch.length;
      this.handlers.onUnreachable(this.peer);
      return;
    }
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(payload.length, 0);
    socket.cork();
    socket.write(header);
    socket.write(payload);
    socket.uncork();
  }

  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const socket = net.connect({ host: this.address.host, port: this.address.port });
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.connecting = false;
      this.socket = socket;
      this.flush();
    });
    socket.on('data', () => {
      // Peers never answer on this connection; responses travel on their own.
    });
    const fail = (): void => {
      const wasConnected = this.socket === socket;
      this.connecting = false;
      if (wasConnected) this.socket = undefined;
      socket.destroy();
      this.dropped += this.queue.length;
      this.queue = [];
      this.handlers.onUnreachable(this.peer);
      if (!this.closed) setTimeout(() => this.connect(), this.limits.reconnectDelayMs).unref();
    };
    socket.on('error', fail);
    socket.on('close', () => {
      if (this.socket === socket || this.connecting) fail();
    });
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.socket?.destroy();
    this.socket = undefined;
  }
}

export class Transport {
  private server: net.Server | undefined;
  private readonly peers = new Map<NodeId, PeerConnection>();
  private readonly inbound = new Set<net.Socket>();
  fault: FaultFilter | undefined;

  constructor(
    readonly self: NodeId,
    private readonly handlers: TransportHandlers,
    private readonly limits: TransportLimits = defaultTransportLimits,
  ) {}

  listen(host: string, port: number): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    this.inbound.add(socket);
    socket.setNoDelay(true);
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4) {
        const len = buffered.readUInt32BE(0);
        if (len > this.limits.maxFrameBytes) {
          socket.destroy();
          return;
        }
        if (buffered.length < 4 + len) break;
        const frame = buffered.subarray(4, 4 + len);
        buffered = buffered.subarray(4 + len);
        let messages: Message[];
        try {
          messages = JSON.parse(frame.toString('utf8')) as Message[];
        } catch {
          socket.destroy();
          return;
        }
        const fault = this.fault;
        this.handlers.onMessages(fault ? messages.filter((m) => !fault.blocked(m.from, m.to)) : messages);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.inbound.delete(socket));
  }

  setPeer(id: NodeId, address: { host: string; port: number }): void {
    if (id === this.self) return;
    const existing = this.peers.get(id);
    if (existing && existing.address.host === address.host && existing.address.port === address.port) return;
    existing?.close();
    this.peers.set(id, new PeerConnection(id, address, this.limits, this.handlers));
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.fault?.blocked(m.from, m.to)) continue;
      this.peers.get(m.to)?.enqueue(m);
    }
  }

  droppedMessages(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.dropped;
    return n;
  }

  async close(): Promise<void> {
    for (const p of this.peers.values()) p.close();
    for (const s of this.inbound) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
