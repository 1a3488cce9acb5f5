/**
 * The services the security tests attack, each in process on a real
 * guarded server (the very builders the processes use: listenStoreApi,
 * CoordinatorServer, listenGuarded over the participant, bank and demo
 * apps), with short slow-client timeouts so a slow writer is cut in
 * seconds. Each says which routes it has (from its OpenAPI document or its
 * express router, so a new route is attacked without a test edit) and
 * gives a fingerprint of everything a write could change.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type express from 'express';
import { listenGuarded, PLAIN_HTTP, type HttpGuardLimits } from '../../lib/http-guard.js';
import { makeDevCertificates } from '../../lib/certs.js';
import { tlsHttpClient, tlsSettingsFrom, type ClientTls, type TlsSettings } from '../../lib/tls.js';
import { silentLogger } from '../../lib/logger.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/index.js';
import { coordinatorOpenApi } from '../../coordinator/service/openapi.js';
import { CoordinatorServer } from '../../coordinator/service/server.js';
import { MemoryTxStore } from '../../coordinator/txstore/index.js';
import { bankApp } from '../../demo/bank/app.js';
import { Bank } from '../../demo/bank/bank.js';
import { transferApp, type AppParts } from '../../demo/app/server.js';
import { ParticipantNode, participantApp, participantOpenApi } from '../../participant/index.js';
import { storeOpenApi } from '../../store/api/openapi.js';
import { listenStoreApi } from '../../store/api/server.js';
import { defaultNodeConfig } from '../../store/node/config.js';
import type { StoreNode } from '../../store/node/node.js';
import { expressRoutes } from '../openapi/support.js';
import { storeContents } from '../routes/support.js';
import { MemoryCluster } from '../store2/support/memory-cluster.js';
import { RecordingService } from '../twopc/support/inprocess.js';
import { waitFor } from '../support/wait.js';

/** Short, so a slow writer is cut within a few seconds (the defaults are 20 s and 60 s). */
export const TEST_LIMITS: Partial<HttpGuardLimits> = { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 5_000, timeoutCheckIntervalMs: 200 };

/** How a fixture is served: plain HTTP, or HTTPS with the dev certificates (FixtureTls.make). */
export interface FixtureTls {
  readonly server: TlsSettings;
  /** What the test's clients trust and show. */
  readonly client: ClientTls;
}

export const PLAIN: FixtureTls = { server: PLAIN_HTTP, client: {} };

/** HTTPS with fresh dev certificates in `dir` (`raft2pc certs`), clients trusting their CA. */
export async function httpsFixture(dir: string): Promise<FixtureTls> {
  const f = await makeDevCertificates({ dir });
  const server = tlsSettingsFrom({ 'cert-file': f.serverCertFile, 'key-file': f.serverKeyFile, 'trusted-ca-file': f.caFile, 'client-cert-auth': false, insecure: false });
  return { server, client: { ca: readFileSync(f.caFile, 'utf8') } };
}

export interface RouteUnderTest {
  readonly method: string;
  /** A concrete path: parameters filled with values that name nothing. */
  readonly path: string;
  /** Answers with a stream that does not end by itself (watches, the page's events). */
  readonly stream: boolean;
}

export interface ServiceUnderTest {
  readonly name: string;
  readonly url: string;
  /** What a client must trust (and show) to reach it. */
  readonly clientTls: ClientTls;
  readonly routes: readonly RouteUnderTest[];
  /** The largest body a route reads. */
  readonly maxBodyBytes: number;
  /** Everything a write could change; equal before and after means nothing was written. */
  fingerprint(): Promise<unknown>;
  stop(): Promise<void>;
}

const PARAM_VALUE = 'fuzz-none';

export function isStateChangingMethod(method: string): boolean {
  return ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method);
}

/** Every operation of a document, parameters filled. */
export function documentRoutes(doc: OpenApiDocument): RouteUnderTest[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path: path.replace(/\{[^}]+\}/g, PARAM_VALUE),
      stream: Object.values(op.responses).some((r) => Object.keys(r.content ?? {}).includes('text/event-stream')),
    })),
  );
}

/** Every route an express app registers, parameters filled. */
function appRoutes(app: express.Express, streams: readonly string[]): RouteUnderTest[] {
  return expressRoutes(app).map((key) => {
    const [method = '', path = ''] = key.split(' ');
    return { method, path: path.replace(/:[A-Za-z]+/g, PARAM_VALUE), stream: streams.includes(path) };
  });
}

function urlOf(server: Server, tls: FixtureTls): string {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('not listening');
  return `${tls.server.server === undefined ? 'http' : 'https'}://127.0.0.1:${a.port}`;
}

/** A GET through the package's own client, so https works with the fixture's CA. */
export async function getText(url: string, tls: ClientTls): Promise<{ status: number; text: string }> {
  const http = tlsHttpClient({ requestTimeoutMs: 5_000 }, tls);
  try {
    const res = await http.request({ method: 'GET', url });
    return { status: res.status, text: res.text };
  } finally {
    http.close();
  }
}

/** A range of ports a fixture may take: `first` up to `first + count - 1`. */
export interface PortBlock {
  readonly first: number;
  readonly count: number;
}

/**
 * Runs `listen` on the block's ports in turn until one is free: a client's
 * outgoing connection may hold any port of the ephemeral range, this
 * block's included where the machine's range covers it.
 */
export async function inBlock<T>(block: PortBlock, listen: (port: number) => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await listen(block.first + i);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || i + 1 >= block.count) throw e;
    }
  }
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export async function storeService(ports: PortBlock, tls: FixtureTls = PLAIN): Promise<ServiceUnderTest> {
  const cluster = await MemoryCluster.start(1);
  await cluster.ready();
  const node = cluster.nodes.get('n1');
  if (node === undefined) throw new Error('no node n1');
  // The process's adapter over an in-memory node: its transport serves only the fault routes (off here) and a metric.
  Object.assign(node.transport, { fault: undefined, droppedMessages: () => 0 });
  const server = await inBlock(ports, (port) => listenStoreApi(node as unknown as StoreNode, '127.0.0.1', port, { tls: tls.server, log: silentLogger, limits: TEST_LIMITS }));
  const url = urlOf(server, tls);
  return {
    name: 'store',
    url,
    clientTls: tls.client,
    routes: documentRoutes(storeOpenApi({ maxBodyBytes: defaultNodeConfig.maxBodyBytes, faultRoutes: false })),
    maxBodyBytes: defaultNodeConfig.maxBodyBytes,
    async fingerprint() {
      const status = JSON.parse((await getText(`${url}/v1/status`, tls.client)).text) as { revision: number };
      const keys = (await getText(`${url}/v1/kv?prefix=`, tls.client)).text;
      return { revision: status.revision, keys };
    },
    async stop() {
      await close(server);
      await cluster.stop();
    },
  };
}

export async function coordinatorService(ports: PortBlock, tls: FixtureTls = PLAIN): Promise<ServiceUnderTest> {
  const store = new MemoryTxStore();
  const config = makeCoordinatorConfig({ id: 'c-sec' });
  const c = await inBlock(ports, async (port) => {
    const server = new CoordinatorServer({ config, store, log: silentLogger, faultInjection: false, limits: TEST_LIMITS, tls: tls.server });
    await server.start({ port });
    return server;
  });
  return {
    name: 'coordinator',
    url: urlOf(c.httpServer as Server, tls),
    clientTls: tls.client,
    routes: documentRoutes(coordinatorOpenApi(config, { faultRoutes: false })),
    maxBodyBytes: config.maxBodyBytes,
    fingerprint: () => storeContents(store),
    stop: () => c.stop(),
  };
}

interface NodeParts {
  readonly dir: string;
  readonly store: MemoryTxStore;
  readonly node: ParticipantNode;
}

/** What a participant node could change: the store, and its durable log. */
async function nodeFingerprint(p: NodeParts, files: readonly string[]): Promise<unknown> {
  const read = (f: string): string => {
    try {
      return readFileSync(join(p.dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  return { store: await storeContents(p.store), files: files.map(read), log: p.node.transactions({ limit: 1_000 }).length };
}

async function serve(app: express.Express, ports: PortBlock, tls: FixtureTls): Promise<Server> {
  return inBlock(ports, (port) => listenGuarded(app, '127.0.0.1', port, { tls: tls.server, log: silentLogger, limits: TEST_LIMITS }));
}

export async function participantService(ports: PortBlock, tls: FixtureTls = PLAIN): Promise<ServiceUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'sec-participant-'));
  const store = new MemoryTxStore();
  const node = await ParticipantNode.open({ name: 'a', store, logPath: join(dir, 'log.json'), service: new RecordingService(), logger: silentLogger, onFatal: () => undefined });
  await node.start();
  const server = await serve(participantApp(node), ports, tls);
  return {
    name: 'participant',
    url: urlOf(server, tls),
    clientTls: tls.client,
    routes: documentRoutes(participantOpenApi(node.config)),
    maxBodyBytes: node.config.maxBodyBytes,
    fingerprint: () => nodeFingerprint({ dir, store, node }, ['log.json']),
    async stop() {
      await close(server);
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function bankService(ports: PortBlock, tls: FixtureTls = PLAIN): Promise<ServiceUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'sec-bank-'));
  const store = new MemoryTxStore();
  const bank = await Bank.open({ name: 'bank-a', dataDir: dir, openingBalances: { alice: 100, bob: 100 }, auditWaitMs: 100, onFatal: (e) => { throw e; } });
  const node = await ParticipantNode.open({ name: 'bank-a', store, logPath: join(dir, 'participant-log.json'), service: bank, logger: silentLogger, onFatal: () => undefined });
  await node.start();
  const app = bankApp({ name: 'bank-a', bank, node, log: silentLogger });
  const server = await serve(app, ports, tls);
  return {
    name: 'bank',
    url: urlOf(server, tls),
    clientTls: tls.client,
    routes: appRoutes(app, []),
    maxBodyBytes: node.config.maxBodyBytes,
    fingerprint: async () => ({ accounts: bank.accounts(), node: await nodeFingerprint({ dir, store, node }, ['bank.json', 'participant-log.json']) }),
    async stop() {
      await close(server);
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The demo's transfer app over parts that record any use: a refused
 * request must never reach them. Only the state-changing routes are
 * attacked (its reads render the parts, which these stand-ins do not have).
 */
export async function demoAppService(ports: PortBlock, tls: FixtureTls = PLAIN): Promise<ServiceUnderTest> {
  const used: string[] = [];
  // Any method of any part, called, is recorded and fails; but the load's stats, a read that HEAD /v1/load reaches.
  const stub = (name: string): unknown =>
    new Proxy(
      {},
      {
        get: (_t, prop) => () => {
          if (name === 'load' && prop === 'stats') return {};
          used.push(`${name}.${String(prop)}`);
          throw new Error(`${name}.${String(prop)} called by a refused request`);
        },
      },
    );
  const parts = { monitor: stub('monitor'), feed: stub('feed'), transfers: stub('transfers'), load: stub('load'), auditor: stub('auditor'), banks: new Map([['bank-a', 'http://127.0.0.1:1']]) } as unknown as AppParts;
  const web = transferApp(parts);
  const server = await serve(web.app, ports, tls);
  return {
    name: 'demo-app',
    url: urlOf(server, tls),
    clientTls: tls.client,
    routes: appRoutes(web.app, ['/v1/events']).filter((r) => isStateChangingMethod(r.method)),
    maxBodyBytes: 64 * 1024,
    fingerprint: async () => [...used],
    async stop() {
      web.closeStreams();
      await close(server);
    },
  };
}

export type ServiceFactory = (ports: PortBlock, tls?: FixtureTls) => Promise<ServiceUnderTest>;

/** Every HTTP service of the package, by name. */
export const SERVICES: readonly (readonly [string, ServiceFactory])[] = [
  ['store', storeService],
  ['coordinator', coordinatorService],
  ['participant', participantService],
  ['bank', bankService],
  ['demo-app', demoAppService],
];

/** No stack frames, no file paths: what an error body must never carry. */
export function leaksInternals(text: string): boolean {
  return /\bat [\w.<>]+ \(|\.ts:\d+|\.js:\d+|node:internal|(?:^|[\s"'(])\/(?:work|home|tmp|usr|root|opt|srv)\/[\w.-]+\/|Error: .*\n\s+at /.test(text);
}

/** The service still answers its cheapest route. */
export async function stillServing(s: ServiceUnderTest): Promise<void> {
  const probe = s.routes.find((r) => r.method === 'GET' && !r.stream)?.path ?? '/openapi.json';
  await waitFor(`${s.name} answers ${probe}`, 5_000, async () => (await getText(`${s.url}${probe}`, s.clientTls)).status < 500);
}
