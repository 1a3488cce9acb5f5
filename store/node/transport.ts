/**
 * Peer transport: one outbound TCP connection per peer, each with a bounded
 * queue; messages queued in the same event-loop turn go out as one frame.
 * Frames are [u32 length][JSON array of messages]. Raft tolerates loss, so a
 * full queue or a broken connection drops messages (counted) and tells Raft
 * the peer is unreachable, rather than growing memory without bound.
 *
 * With peer TLS (--peer-cert-file ...; docs/SECURITY.md) both directions are
 * TLS: a member checks the certificate of the peer it dials against the
 * cluster's CA, and under --peer-client-cert-auth refuses an inbound
 * connection without a certificate from it before reading a single byte.
 * The certificate and CA reload on SIGHUP or a file change (lib/tls.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../lib/logger.js';
import { reloadCertificatesOnChange, secureContextOptions, type ServerTlsFiles } from '../../lib/tls.js';
import type { Message, NodeId } from '../raft/index.js';
import type { PeerTransport } from './io.js';

export interface TransportLimits {
  /** Messages waiting for one peer, past which new ones are dropped. */
  readonly maxQueuedMessages: number;
  /** Largest frame accepted or sent (snapshots travel whole). */
  readonly maxFrameBytes: number;
  /** Delay before reconnecting to a peer that refused or dropped us. */
  readonly reconnectDelayMs: number;
  /**
   * Target size of one frame: a turn's queue goes out in frames of about this
   * size (a single larger message, a snapshot, goes alone), so a receiver
   * parses and a sender copies in bounded steps.
   */
  readonly frameTargetBytes: number;
  /**
   * Bytes the kernel has not taken yet, past which the sender stops writing
   * and waits for 'drain'; meanwhile messages wait in the bounded queue (and
   * past it are dropped, which Raft tolerates). Without this a slow receiver
   * made the sender buffer without bound.
   */
  readonly maxUnsentBytes: number;
}

export const defaultTransportLimits: TransportLimits = {
  maxQueuedMessages: 10_000,
  maxFrameBytes: 256 << 20,
  reconnectDelayMs: 100,
  frameTargetBytes: 1 << 20,
  maxUnsentBytes: 8 << 20,
};

export interface TransportHandlers {
  onMessages(messages: Message[]): void;
  onUnreachable(peer: NodeId): void;
}

export interface TransportOptions {
  /** TLS on both directions of every peer link; undefined: plain TCP. */
  readonly tls?: ServerTlsFiles;
  /** Where refused peers and certificate reloads are reported. */
  readonly log?: Logger;
}

/**
 * The client side of peer TLS: the current secure context (swapped by a
 * reload) and where failed handshakes are reported.
 */
interface PeerDialer {
  context(): tls.SecureContext;
  handshakeFailed(peer: NodeId, error: Error): void;
}

/** Log the 1st, 2nd, 4th, 8th... refusal: a peer (or an attacker) retrying forever cannot flood the log. */
function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
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
    readonly address: PeerSocketAddress,
    private readonly limits: TransportLimits,
    private readonly handlers: TransportHandlers,
    private readonly dialer: PeerDialer | undefined,
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
    // Backpressure: the peer is not reading fast enough; 'drain' calls us again.
    if (socket.writableLength > this.limits.maxUnsentBytes) return;
    const batch = this.queue;
    this.queue = [];
    socket.cork();
    for (const frame of this.frames(batch)) {
      if (frame.payload.length > this.limits.maxFrameBytes) {
        this.dropped += frame.count;
        this.handlers.onUnreachable(this.peer);
        continue;
      }
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(frame.payload.length, 0);
      socket.write(header);
      socket.write(frame.payload);
    }
    socket.uncork();
  }

  /** Splits a batch into frames of about `frameTargetBytes` (JSON arrays of messages). */
  private *frames(batch: readonly Message[]): Generator<{ payload: Buffer; count: number }> {
    let parts: string[] = [];
    let bytes = 0;
    for (const m of batch) {
      const json = JSON.stringify(m);
      if (parts.length > 0 && bytes + json.length > this.limits.frameTargetBytes) {
        yield { payload: Buffer.from(`[${parts.join(',')}]`, 'utf8'), count: parts.length };
        parts = [];
        bytes = 0;
      }
      parts.push(json);
      bytes += json.length + 1;
    }
    if (parts.length > 0) yield { payload: Buffer.from(`[${parts.join(',')}]`, 'utf8'), count: parts.length };
  }

  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const { host, port } = this.address;
    const dialer = this.dialer;
    // The peer's certificate is checked against the CA and the address (rejectUnauthorized is tls.connect's default).
    const socket = dialer === undefined ? net.connect({ host, port }) : tls.connect({ host, port, secureContext: dialer.context(), ...(net.isIP(host) === 0 ? { servername: host } : {}) });
    socket.setNoDelay(true);
    let tcpUp = false;
    socket.on('connect', () => {
      tcpUp = true;
    });
    socket.on(dialer === undefined ? 'connect' : 'secureConnect', () => {
      this.connecting = false;
      this.socket = socket;
      this.flush();
    });
    socket.on('data', () => {
      // Peers never answer on this connection; responses travel on their own.
    });
    socket.on('drain', () => this.flush());
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
    socket.on('error', (e) => {
      // Connected but no secure channel: the handshake failed (a certificate the other side or we refused).
      // (Under TLS 1.3 the server checks our certificate after our side is done: its alert arrives as an ERR_SSL_ error.)
      const sslAlert = (e as NodeJS.ErrnoException).code?.startsWith('ERR_SSL') === true;
      if (dialer !== undefined && tcpUp && (this.socket !== socket || sslAlert)) dialer.handshakeFailed(this.peer, e);
      fail();
    });
    socket.on('close', () => {
      if (this.socket === socket || this.connecting) fail();
    });
  }

  /** Bytes written to the socket that the kernel has not taken yet. */
  unsentBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** Bytes received on one connection, cut into [u32 length][payload] frames. */
export class FrameAssembler {
  private chunks: Buffer[] = [];
  private total = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The next frame's payload length, once its 4-byte header has arrived. */
  peekLength(): number | undefined {
    if (this.total < 4) return undefined;
    const first = this.chunks[0] as Buffer;
    if (first.length < 4) this.compact(4);
    return (this.chunks[0] as Buffer).readUInt32BE(0);
  }

  /** The next frame's payload if all of it has arrived (consumed), else undefined. */
  take(len: number): Buffer | undefined {
    if (this.total < 4 + len) return undefined;
    this.compact(4 + len);
    const head = this.chunks[0] as Buffer;
    const frame = head.subarray(4, 4 + len);
    const rest = head.subarray(4 + len);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.total -= 4 + len;
    return frame;
  }

  /** Join chunks until the first holds at least `bytes` (all of them when undefined). */
  private compact(bytes = this.total): void {
    const first = this.chunks[0];
    if (first === undefined || first.length >= bytes) return;
    let n = 0;
    let have = 0;
    while (have < bytes && n < this.chunks.length) have += (this.chunks[n++] as Buffer).length;
    this.chunks.splice(0, n, Buffer.concat(this.chunks.slice(0, n), have));
  }
}

export interface PeerSocketAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port` (a MemberAddress's peerAddress) as a socket address. */
export function parsePeerAddress(peerAddress: string): PeerSocketAddress {
  const colon = peerAddress.lastIndexOf(':');
  const host = colon > 0 ? peerAddress.slice(0, colon) : '127.0.0.1';
  return { host, port: Number(peerAddress.slice(colon + 1)) };
}

export class Transport implements PeerTransport {
  private server: net.Server | undefined;
  private readonly peers = new Map<NodeId, PeerConnection>();
  private readonly inbound = new Set<net.Socket>();
  fault: FaultFilter | undefined;
  /** Inbound connections whose TLS handshake failed (no certificate, another CA, not TLS at all). */
  refusedConnections = 0;
  /** Outbound handshakes that failed, by peer; logged when the reason changes. */
  private readonly dialFailures = new Map<NodeId, string>();
  private clientContext: tls.SecureContext | undefined;
  private stopReload: (() => void) | undefined;
  private readonly dialer: PeerDialer | undefined;
  private readonly log: Logger;

  constructor(
    readonly self: NodeId,
    private readonly handlers: TransportHandlers,
    private readonly limits: TransportLimits = defaultTransportLimits,
    private readonly options: TransportOptions = {},
  ) {
    this.log = options.log ?? (() => undefined);
    if (options.tls === undefined) return;
    this.clientContext = tls.createSecureContext(secureContextOptions(options.tls));
    this.dialer = {
      context: () => this.clientContext as tls.SecureContext,
      handshakeFailed: (peer, e) => {
        if (this.dialFailures.get(peer) === e.message) return;
        this.dialFailures.set(peer, e.message);
        this.log('warn', 'peer TLS handshake failed', { peer, error: e.message });
      },
    };
  }

  /** A reload (lib/tls.ts): new connections, both ways, use the new certificate and CA. */
  setSecureContext(options: tls.SecureContextOptions): void {
    this.clientContext = tls.createSecureContext(options);
    if (this.server instanceof tls.Server) this.server.setSecureContext(options);
    this.dialFailures.clear();
  }

  listen(host: string, port: number): Promise<number> {
    const files = this.options.tls;
    const server = files === undefined ? net.createServer((socket) => this.accept(socket)) : this.tlsServer(files);
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private tlsServer(files: ServerTlsFiles): tls.Server {
    if (!files.clientCertAuth) this.log('warn', 'peer TLS without --peer-client-cert-auth: any TLS client can take part in the Raft conversation');
    const server = tls.createServer(secureContextOptions(files), (socket) => this.accept(socket));
    server.on('tlsClientError', (e, socket) => {
      this.refusedConnections++;
      if (isPowerOfTwo(this.refusedConnections)) this.log('warn', 'peer connection refused: TLS handshake failed', { remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, error: e.message, refusedConnections: this.refusedConnections });
      socket.destroy();
    });
    this.stopReload = reloadCertificatesOnChange(this, files, this.log);
    return server;
  }

  private accept(socket: net.Socket): void {
    this.inbound.add(socket);
    socket.setNoDelay(true);
    // Chunks are kept in a list and joined once a whole frame is there:
    // joining on every chunk made a large frame cost the square of its size
    // (a 16 MB snapshot frame took 90 s to arrive, found by the chaos runner).
    const chunks = new FrameAssembler();
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      for (;;) {
        const len = chunks.peekLength();
        if (len === undefined) break;
        if (len > this.limits.maxFrameBytes) {
          socket.destroy();
          return;
        }
        const frame = chunks.take(len);
        if (frame === undefined) break;
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

  setPeer(id: NodeId, peerAddress: string | PeerSocketAddress): void {
    if (id === this.self) return;
    const address = typeof peerAddress === 'string' ? parsePeerAddress(peerAddress) : peerAddress;
    const existing = this.peers.get(id);
    if (existing && existing.address.host === address.host && existing.address.port === address.port) return;
    existing?.close();
    this.peers.set(id, new PeerConnection(id, address, this.limits, this.handlers, this.dialer));
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

  /** Bytes waiting in outbound sockets, over every peer (bounded by maxUnsentBytes each, plus one flush). */
  unsentBytes(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.unsentBytes();
    return n;
  }

  droppedMessages(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.dropped;
    return n;
  }

  async close(): Promise<void> {
    this.stopReload?.();
    this.stopReload = undefined;
    for (const p of this.peers.values()) p.close();
    for (const s of this.inbound) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
