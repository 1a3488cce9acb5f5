/**
 * A store cluster with no sockets: real StoreNodes (StoreNode.create) on
 * in-memory storage, Raft messages passed in memory, each node's real
 * StoreApi reached through an in-memory HttpRequester and stream opener.
 * What the deterministic simulation (test/sim2pc) does on simulated time,
 * here on the system's timers, to check that the API and the client need
 * nothing of node:http.
 */
import { AppError } from '../../../lib/errors.js';
import { HttpClientError, type HttpRequest, type HttpRequester, type HttpResponse } from '../../../lib/http-client.js';
import { encodeReply, errorReply, type StreamSink } from '../../../lib/http.js';
import { SeededRandom } from '../../../lib/random.js';
import { systemTimers } from '../../../lib/timers.js';
import { StoreApi } from '../../../store/api/api.js';
import type { OpenStream, StreamResponse } from '../../../store/client/client.js';
import { parseSse } from '../../../store/client/sse.js';
import { defaultNodeConfig, type MemberAddress, type NodeConfig } from '../../../store/node/config.js';
import type { NodeIo, PeerTransport } from '../../../store/node/io.js';
import { StoreNode } from '../../../store/node/node.js';
import { NONE, type Message } from '../../../store/raft/index.js';

/** Raft ticks this fast, so a test elects a leader in a few hundred ms. */
const TICK_MS = 10;

/** The server end of an in-memory stream: text chunks to an async iterable; `cap` bytes of unread text at most. */
export class MemorySink implements StreamSink {
  readonly chunks: string[] = [];
  private readonly closeFns: (() => void)[] = [];
  private waiting: ((r: IteratorResult<string>) => void) | undefined;
  private unread = 0;
  /** Chunks the client has taken. */
  private read = 0;
  ended = false;

  constructor(private readonly capBytes = Number.POSITIVE_INFINITY) {}

  write(text: string): boolean {
    if (this.ended) return true;
    this.chunks.push(text);
    this.unread += text.length;
    this.wake();
    return this.unread <= this.capBytes;
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  onClose(fn: () => void): void {
    this.closeFns.push(fn);
  }

  /** The client end went away. */
  close(): void {
    this.end();
    for (const fn of this.closeFns.splice(0)) fn();
  }

  get text(): string {
    return this.chunks.join('');
  }

  private wake(): void {
    const w = this.waiting;
    if (w === undefined) return;
    this.waiting = undefined;
    void this.next().then(w);
  }

  next(): Promise<IteratorResult<string>> {
    const chunk = this.chunks[this.read];
    if (chunk !== undefined) {
      this.read++;
      this.unread -= chunk.length;
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** The chunks as the client reads them; leaving early closes the stream. */
  iterable(): AsyncIterable<string> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => this.next(),
        return: async () => {
          this.close();
          return { value: undefined, done: true };
        },
      }),
    };
  }
}

function memoryLog(): NodeIo['log'] {
  return { save: async () => {}, markSnapshot: async () => {}, releaseTo: async () => 0, close: async () => {} };
}

export class MemoryCluster {
  readonly nodes = new Map<string, StoreNode<PeerTransport>>();
  readonly apis = new Map<string, StoreApi>();
  /** Requests each node's API was sent, by node id: a follower's forwards show up at the leader. */
  readonly served = new Map<string, HttpRequest[]>();
  readonly members: readonly MemberAddress[];

  private constructor(readonly ids: readonly string[]) {
    this.members = ids.map((id) => ({ id, clientUrl: `http://${id}`, peerAddress: `${id}:1` }));
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  static async start(size: number, overrides: Partial<NodeConfig> = {}): Promise<MemoryCluster> {
    const c = new MemoryCluster(Array.from({ length: size }, (_, i) => `n${i + 1}`));
    for (const [i, id] of c.ids.entries()) {
      const cfg: NodeConfig = { ...defaultNodeConfig, id, dataDir: '', clientPort: 0, peerPort: 0, initialCluster: c.members, tickMs: TICK_MS, ...overrides };
      const io: NodeIo = {
        log: memoryLog(),
        snapshots: { save: async () => {} },
        transport: c.transport(),
        timers: systemTimers,
        random: new SeededRandom(i + 1),
        fatal: (e) => console.error(`[${id}] fatal`, e),
      };
      const node = await StoreNode.create(cfg, io, { hardState: { term: 0, vote: NONE, commit: 0 }, entries: [] });
      c.nodes.set(id, node);
      c.apis.set(id, new StoreApi({ node, forwarder: c.requester(), random: new SeededRandom(100 + i) }));
      c.served.set(id, []);
    }
    return c;
  }

  private transport(): PeerTransport {
    return {
      send: (msgs: readonly Message[]) => {
        for (const m of msgs) systemTimers.soon(() => this.nodes.get(m.to)?.receive([m]));
      },
      setPeer: () => {},
      removePeer: () => {},
      close: async () => {},
    };
  }

  private api(url: string): { id: string; api: StoreApi } {
    const id = new URL(url).hostname;
    const api = this.apis.get(id);
    if (!api) throw new HttpClientError('connection', `no node at ${url}`);
    return { id, api };
  }

  /** An HttpRequester whose requests go straight to the addressed node's StoreApi.serve. */
  requester(): HttpRequester {
    let closed = false;
    return {
      request: async (r: HttpRequest): Promise<HttpResponse> => {
        if (closed) throw new HttpClientError('closed', 'closed');
        const { id, api } = this.api(r.url);
        this.served.get(id)?.push(r);
        const u = new URL(r.url);
        return api.serve({ method: r.method, target: u.pathname + u.search, ...(r.headers ? { headers: r.headers } : {}), ...(r.body === undefined ? {} : { body: r.body }) });
      },
      close: () => {
        closed = true;
      },
    };
  }

  /** A StoreClient stream opener whose watches go into the addressed node's StoreApi.openWatch. */
  readonly openStream: OpenStream = async (url, signal): Promise<StreamResponse> => {
    const { api } = this.api(url);
    const sink = new MemorySink();
    try {
      api.openWatch({ query: new URL(url).searchParams, headers: {} }, sink);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      const w = encodeReply(errorReply(e));
      return { status: w.status, text: w.text };
    }
    signal?.addEventListener('abort', () => sink.close(), { once: true });
    return { status: 200, messages: parseSse(sink.iterable()) };
  };

  async leader(timeoutMs = 5_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const [id, n] of this.nodes) if (n.isLeader()) return id;
      if (Date.now() > until) throw new Error('no leader');
      await systemTimers.sleep(TICK_MS);
    }
  }

  /** Waits until every node knows the leader and serves linearizable reads (the leader committed in its term). */
  async ready(timeoutMs = 5_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.leader(timeoutMs);
      const answers = await Promise.all([...this.apis.values()].map((api) => api.serve({ method: 'GET', target: '/v1/kv/ready-probe' })));
      if (answers.every((a) => a.status === 404)) return leader;
      if (Date.now() > until) throw new Error(`cluster not ready: ${answers.map((a) => a.text).join(' ')}`);
      await systemTimers.sleep(TICK_MS);
    }
  }

  async stop(): Promise<void> {
    for (const api of this.apis.values()) api.close();
    for (const n of this.nodes.values()) await n.stop();
  }
}
